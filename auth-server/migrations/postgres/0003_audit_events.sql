-- Append-only audit trail. client_id has no foreign key on purpose: events outlive deleted clients.
CREATE TABLE audit_events (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    client_id TEXT,
    source_ip TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_client ON audit_events (client_id, id);
