-- A user's credential epoch: raised by every "end all of this user's credentials" action
-- (password change, sign out everywhere, user revoke), so a login that verified the password
-- before such an action can tell, after creating its session, that it lost the race.
ALTER TABLE users ADD COLUMN credential_epoch BIGINT NOT NULL DEFAULT 0;
