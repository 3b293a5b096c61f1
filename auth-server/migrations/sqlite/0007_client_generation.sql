-- A counter that every change to clients or their secrets moves, whichever process makes it (the
-- CLI, another instance). Servers keep clients in memory and reload them when it moves, so the
-- token endpoint reads no database row to authenticate a client.
CREATE TABLE client_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO client_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER clients_updated AFTER UPDATE ON clients
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_secrets_inserted AFTER INSERT ON client_secrets
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_secrets_updated AFTER UPDATE ON client_secrets
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_secrets_deleted AFTER DELETE ON client_secrets
BEGIN UPDATE client_generation SET generation = generation + 1 WHERE id = 1; END;
