-- A disabled user: every credential was ended when the flag was set, and logins are refused
-- while it stays set.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
