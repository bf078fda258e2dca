ALTER TABLE streams DROP COLUMN max_viewers;
