-- Outgoing webhooks: endpoints owners register, each delivered the owner's events
-- from the durable log after its own cursor; the attempts made; redeliveries asked for.
-- Expand only (docs/production.md): the previous release keeps running on this schema.

-- Every logged event names its owner, so an endpoint reads only its owner's events
-- (one index range per poll). A trigger fills it from the stream, also for rows the
-- previous release writes during a rolling update; existing rows are backfilled.
ALTER TABLE stream_events ADD COLUMN owner text;
UPDATE stream_events e SET owner = s.owner FROM streams s WHERE s.id = e.stream_id;
CREATE FUNCTION stream_events_fill_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.owner IS NULL THEN
        SELECT s.owner INTO NEW.owner FROM streams s WHERE s.id = NEW.stream_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER stream_events_fill_owner BEFORE INSERT ON stream_events
    FOR EACH ROW EXECUTE FUNCTION stream_events_fill_owner();
CREATE INDEX stream_events_owner_idx ON stream_events (owner, id);

-- Events of an owner's account that belong to no stream (`webhook_disabled`). They
-- take their positions from the stream log's sequence, under the same append lock, so
-- the two tables form one ordered log; watchers of streams never read this one.
CREATE TABLE account_events (
    id          bigint PRIMARY KEY DEFAULT nextval('stream_events_id_seq'),
    owner       text NOT NULL,
    kind        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_events_owner_idx ON account_events (owner, id);

-- One row per endpoint. `secret` signs deliveries (`previous_secret` too, until
-- `previous_secret_expires_at`, after a rotation). `log_position` is the last log
-- position handled; `attempts` counts the attempts at the event after it, `failures`
-- the current run of failed attempts (any event), which sets the backoff and, when
-- long enough, disables the endpoint. A dispatcher holds an endpoint while
-- `lease_until` is in the future.
CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY,
    owner                       text NOT NULL,
    url                         text NOT NULL,
    event_types                 text[] NOT NULL DEFAULT '{}',
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text CHECK (disabled_reason IN ('owner', 'failures')),
    disabled_at                 timestamptz,
    log_position                bigint NOT NULL,
    attempts                    integer NOT NULL DEFAULT 0,
    failures                    integer NOT NULL DEFAULT 0,
    failing_since               timestamptz,
    next_attempt_at             timestamptz NOT NULL DEFAULT now(),
    lease_holder                uuid,
    lease_until                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_owner_idx ON webhook_endpoints (owner, id);
CREATE INDEX webhook_endpoints_due_idx ON webhook_endpoints (next_attempt_at) WHERE enabled;

-- Every delivery attempt, kept for the owner to list (newest first by id, a UUIDv7).
CREATE TABLE webhook_attempts (
    id           uuid PRIMARY KEY,
    webhook_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id     bigint NOT NULL,
    event_type   text NOT NULL,
    attempt      integer NOT NULL,
    manual       boolean NOT NULL DEFAULT false,
    outcome      text NOT NULL,
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_webhook_idx ON webhook_attempts (webhook_id, id DESC);
CREATE INDEX webhook_attempts_created_idx ON webhook_attempts (created_at);

-- Manual redeliveries waiting for the endpoint's dispatcher (one per event at a time).
CREATE TABLE webhook_redeliveries (
    webhook_id    uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id      bigint NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, event_id)
);
