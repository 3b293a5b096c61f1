-- Clients created by `clients apply --file`: the name of the file's entry that manages each one.
-- The file manages only the clients it created, so a client made with `client create` (NULL
-- here) is never listed, changed or deleted by it, even when it has the same display name. One
-- client per entry name: two concurrent applies cannot both create the same entry.
ALTER TABLE clients ADD COLUMN managed_name TEXT;
CREATE UNIQUE INDEX clients_managed_name ON clients (managed_name) WHERE managed_name IS NOT NULL;
