-- A disabled client that authentication reads when the presented client id is unknown, so that
-- unknown and known ids cost the same query, row and hash comparison (no timing oracle on which
-- clients exist). Its id cannot be generated or parsed as a real client's, and its secret hash
-- (all zero bytes) is not the SHA-256 of any known input.
INSERT INTO clients (client_id, name, partner_id, scopes, audiences, access_token_ttl, refresh_enabled,
                     introspect_allowed, disabled_at, created_at, updated_at)
VALUES ('~decoy~', '(timing decoy)', 'decoy', 'decoy', '["decoy"]', NULL, FALSE, FALSE, 0, 0, 0);
INSERT INTO client_secrets (id, client_id, secret_hash, created_at, expires_at)
VALUES ('~decoy~', '~decoy~', X'0000000000000000000000000000000000000000000000000000000000000000', 0, NULL);
