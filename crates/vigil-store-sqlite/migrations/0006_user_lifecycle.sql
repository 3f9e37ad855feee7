-- Users can be disabled (no login, no session) and enabled again.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
