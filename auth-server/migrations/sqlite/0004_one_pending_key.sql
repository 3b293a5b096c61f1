-- At most one key waits to become active: the database refuses a second pending key, so two
-- instances starting at once, or a rotation racing a scheduled one, cannot both add one.
CREATE UNIQUE INDEX signing_keys_one_pending ON signing_keys (state) WHERE state = 'pending';
