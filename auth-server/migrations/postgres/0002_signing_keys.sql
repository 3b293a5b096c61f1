-- Signing keys with their lifecycle state. The private key is sealed with AES-256-GCM under the
-- master key (the kid is the associated data), so this table alone never yields a usable key.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    alg                TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
    public_jwk         TEXT NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    activated_at       BIGINT,
    retired_at         BIGINT
);
-- Exactly one key signs: the database refuses a second active key, whatever the caller does.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
