ALTER TABLE streams DROP COLUMN ingest_client;
