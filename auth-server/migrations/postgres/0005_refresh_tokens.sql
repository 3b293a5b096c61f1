-- Refresh tokens, stored only as SHA-256 hashes. A family is every token descended from one
-- client-credentials grant; rotation spends a token (used_at) and adds its successor, and
-- presenting a spent token revokes the whole family. Rows are deleted once expired.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    audiences  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Access tokens revoked before their expiry (RFC 7009), kept until they would have expired, so
-- that introspection answers active=false for them.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
