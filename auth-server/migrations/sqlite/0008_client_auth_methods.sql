-- How each client authenticates (RFC 8705, RFC 7523): the registered method, and what the
-- method needs. Secret clients (the default, as every client before this migration) keep their
-- hashes in client_secrets.
--   tls_client_auth:             tls_subject (an RFC 4514 DN) or tls_san (a DNS name or URI)
--   self_signed_tls_client_auth: the certificates in client_certs
--   private_key_jwt:             jwks (a JWKS document of public keys) or jwks_uri
ALTER TABLE clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients ADD COLUMN tls_subject TEXT;
ALTER TABLE clients ADD COLUMN tls_san TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

-- A self-signed client's registered certificates, by their x5t#S256 thumbprint (base64url of the
-- SHA-256 of the DER). Two during a rotation.
CREATE TABLE client_certs (
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    thumbprint TEXT NOT NULL,
    subject    TEXT NOT NULL,
    not_after  INTEGER NOT NULL,
    cert_der   BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, thumbprint)
);

CREATE TRIGGER client_certs_inserted AFTER INSERT ON client_certs
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_certs_updated AFTER UPDATE ON client_certs
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_certs_deleted AFTER DELETE ON client_certs
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;

-- Spent private_key_jwt assertions: a (client, jti) pair is accepted once, on any instance, until
-- the assertion expires; housekeeping deletes the expired ones.
CREATE TABLE client_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
