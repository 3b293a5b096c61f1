-- Secret keys of keyed hashes (HMAC-SHA-256), each sealed under the master key like a signing
-- key, with its id as associated data. 'api-keys' hashes the API keys of api_key clients, whose
-- hashes live in client_secrets beside the secret clients' SHA-256 hashes (the client's
-- auth_method says which). Created on the first start; `keys rewrap` re-seals it; it is never
-- replaced, since every stored API-key hash depends on it.
CREATE TABLE hash_keys (
    id         TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

