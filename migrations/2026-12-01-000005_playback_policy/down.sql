ALTER TABLE streams DROP COLUMN playback_policy;
