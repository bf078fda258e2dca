DROP TABLE webhook_redeliveries;
DROP TABLE webhook_attempts;
DROP TABLE webhook_endpoints;
DROP TABLE account_events;
DROP TRIGGER stream_events_fill_owner ON stream_events;
DROP FUNCTION stream_events_fill_owner();
DROP INDEX stream_events_owner_idx;
ALTER TABLE stream_events DROP COLUMN owner;
