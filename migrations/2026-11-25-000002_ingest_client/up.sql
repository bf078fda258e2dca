-- The broadcaster's connection on its ingest node (nginx clientid): callbacks from any
-- other connection may neither end nor keep alive a live stream.
ALTER TABLE streams ADD COLUMN ingest_client text;
