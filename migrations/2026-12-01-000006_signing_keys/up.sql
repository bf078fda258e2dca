-- ES256 (P-256) keys that sign playback tokens. A customer's key keeps only its
-- public half (the private key is shown once at creation). The one platform key
-- (owner NULL) signs the tokens the control plane issues, so its private half is
-- kept; it signs for any stream.
CREATE TABLE signing_keys (
    id           uuid PRIMARY KEY,
    owner        text,
    public_key   bytea NOT NULL CHECK (octet_length(public_key) = 65),
    private_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((owner IS NULL) = (private_key IS NOT NULL))
);
CREATE INDEX signing_keys_owner_idx ON signing_keys (owner, id);
-- At most one platform key.
CREATE UNIQUE INDEX signing_keys_platform_idx ON signing_keys ((true)) WHERE owner IS NULL;
