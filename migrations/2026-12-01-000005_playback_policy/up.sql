-- Who may play a stream: `public` (plain URLs, the default) or `signed` (a playback
-- token is needed at the origin and for RTMP play).
ALTER TABLE streams ADD COLUMN playback_policy text NOT NULL DEFAULT 'public'
    CHECK (playback_policy IN ('public', 'signed'));
