-- Partners' OAuth clients. Scopes and audiences are stored in their canonical text forms
-- (space-separated scopes, a JSON array of audiences) and parsed into types on read.
CREATE TABLE clients (
    client_id          TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    partner_id         TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    audiences          TEXT NOT NULL,
    access_token_ttl   INTEGER,
    refresh_enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    introspect_allowed BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at        INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX clients_partner ON clients (partner_id);

-- Only SHA-256 hashes of client secrets are kept. A client holds one secret, or two during a
-- rotation grace period (the old one then has expires_at set).
CREATE TABLE client_secrets (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX client_secrets_client ON client_secrets (client_id);
