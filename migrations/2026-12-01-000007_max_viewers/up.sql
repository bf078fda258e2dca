-- Optional cap on a stream's concurrent viewers, enforced when playback tokens are
-- issued and at the media origin (token sessions); NULL means no cap.
ALTER TABLE streams ADD COLUMN max_viewers integer CHECK (max_viewers > 0);
