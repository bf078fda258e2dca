DROP TABLE store_garbage;
DROP TABLE remux_jobs;
DROP TABLE asset_pieces;
DROP TABLE assets;
ALTER TABLE streams DROP COLUMN record;
