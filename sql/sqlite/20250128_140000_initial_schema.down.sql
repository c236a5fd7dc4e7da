-- 20250128_140000 initial_schema, down (SQLite)
--
-- Removes everything the up file created: the tables, children first. Indexes go with
-- their tables, and dropping an AUTOINCREMENT table deletes its row from sqlite_sequence.
-- Afterwards the database holds nothing of this schema, only the runner's own record table
-- and sqlite_sequence itself, which SQLite keeps once any AUTOINCREMENT table has existed
-- and does not allow to be dropped (the rows of these tables are gone from it).
--
-- Plain DROP, without IF EXISTS: a missing table means the database is not where its
-- record says, and the rollback stops and says so. With PRAGMA foreign_keys=ON a DROP
-- TABLE first deletes the table's rows, so the order matters: children before parents.

DROP TABLE vip_subscribers;
DROP TABLE user_interests;
DROP TABLE free_channel_requests;
DROP TABLE invitation_tokens;
DROP TABLE user_role_change_log;
DROP TABLE content_packages;
DROP TABLE subscription_plans;
DROP TABLE users;
DROP TABLE bot_config;
