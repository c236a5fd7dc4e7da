-- 20250128_140000 initial_schema, down (PostgreSQL)
--
-- Removes everything the up file created: the tables, children first, then the enum
-- types. Indexes, constraints and identity sequences go with their tables. Afterwards the
-- database holds nothing of this schema, only the runner's own record table.
--
-- Plain DROP, without IF EXISTS or CASCADE: if something unexpected depends on these
-- tables or types (a view, a foreign key added by hand), the rollback stops and names it
-- instead of silently taking it along.

DROP TABLE vip_subscribers;
DROP TABLE user_interests;
DROP TABLE free_channel_requests;
DROP TABLE invitation_tokens;
DROP TABLE user_role_change_log;
DROP TABLE content_packages;
DROP TABLE subscription_plans;
DROP TABLE users;
DROP TABLE bot_config;

DROP TYPE rolechangereason;
DROP TYPE packagetype;
DROP TYPE contentcategory;
DROP TYPE userrole;
