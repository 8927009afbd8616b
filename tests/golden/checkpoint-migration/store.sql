-- A checkpoint of a format older than acme-crm's (1), which it cannot migrate.
INSERT INTO checkpoints (flow, stream, format, state, updated_at) VALUES ('contacts', 'contacts', 0, '{}', 0);
