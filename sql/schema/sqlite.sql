-- SQLite schema in canonical form, printed by `schema` (generated: change it through a migration and `schema --write`).

CREATE TABLE bot_config (
    id INTEGER NOT NULL PRIMARY KEY,
    vip_channel_id TEXT NULL CHECK (length(vip_channel_id) <= 50),
    free_channel_id TEXT NULL CHECK (length(free_channel_id) <= 50),
    wait_time_minutes INTEGER NULL,
    vip_reactions TEXT NULL CHECK (vip_reactions IS NULL OR json_valid(vip_reactions)),
    free_reactions TEXT NULL CHECK (free_reactions IS NULL OR json_valid(free_reactions)),
    subscription_fees TEXT NULL CHECK (subscription_fees IS NULL OR json_valid(subscription_fees)),
    created_at TEXT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    updated_at TEXT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    social_instagram TEXT NULL CHECK (length(social_instagram) <= 200),
    social_tiktok TEXT NULL CHECK (length(social_tiktok) <= 200),
    social_x TEXT NULL CHECK (length(social_x) <= 200),
    free_channel_invite_link TEXT NULL CHECK (length(free_channel_invite_link) <= 500)
) WITHOUT ROWID;

CREATE TABLE content_packages (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CHECK (length(name) <= 200),
    description TEXT NULL CHECK (length(description) <= 500),
    price NUMERIC NULL,
    category TEXT NOT NULL CHECK (category IN ('FREE_CONTENT', 'VIP_CONTENT', 'VIP_PREMIUM')),
    type TEXT NOT NULL CHECK (type IN ('STANDARD', 'BUNDLE', 'COLLECTION')),
    media_url TEXT NULL CHECK (length(media_url) <= 500),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
CREATE INDEX idx_content_category_active ON content_packages (category, is_active);
CREATE INDEX idx_content_type_active ON content_packages (type, is_active);
CREATE INDEX ix_content_packages_is_active ON content_packages (is_active);

CREATE TABLE free_channel_requests (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    request_date TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    processed INTEGER NOT NULL DEFAULT 0 CHECK (processed IN (0, 1)),
    processed_at TEXT NULL
);
CREATE INDEX idx_processed_date ON free_channel_requests (processed, request_date);
CREATE INDEX idx_user_date ON free_channel_requests (user_id, request_date);
CREATE INDEX ix_free_channel_requests_processed ON free_channel_requests (processed);
CREATE INDEX ix_free_channel_requests_user_id ON free_channel_requests (user_id);

CREATE TABLE invitation_tokens (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL CHECK (length(token) <= 16),
    generated_by INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    duration_hours INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
    used_by INTEGER NULL,
    used_at TEXT NULL,
    plan_id INTEGER NULL REFERENCES subscription_plans (id)
);
CREATE INDEX idx_token_used_created ON invitation_tokens (used, created_at);
CREATE UNIQUE INDEX ix_invitation_tokens_token ON invitation_tokens (token);
CREATE INDEX ix_invitation_tokens_used ON invitation_tokens (used);

CREATE TABLE subscription_plans (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CHECK (length(name) <= 100),
    duration_days INTEGER NOT NULL,
    price REAL NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) <= 10),
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    created_by INTEGER NOT NULL
);

CREATE TABLE user_interests (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    package_id INTEGER NOT NULL REFERENCES content_packages (id) ON DELETE CASCADE,
    is_attended INTEGER NOT NULL DEFAULT 0 CHECK (is_attended IN (0, 1)),
    attended_at TEXT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
CREATE UNIQUE INDEX idx_interest_user_package ON user_interests (user_id, package_id);
CREATE INDEX idx_interest_user_package_attended ON user_interests (user_id, package_id, is_attended);
CREATE INDEX ix_user_interests_is_attended ON user_interests (is_attended);
CREATE INDEX ix_user_interests_package_id ON user_interests (package_id);
CREATE INDEX ix_user_interests_user_id ON user_interests (user_id);

CREATE TABLE user_role_change_log (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    previous_role TEXT NULL CHECK (previous_role IN ('FREE', 'VIP', 'ADMIN')),
    new_role TEXT NOT NULL CHECK (new_role IN ('FREE', 'VIP', 'ADMIN')),
    changed_by INTEGER NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('ADMIN_GRANTED', 'ADMIN_REVOKED', 'VIP_PURCHASED', 'VIP_REDEEMED', 'VIP_EXPIRED', 'VIP_EXTENDED', 'VIP_ENTRY_COMPLETED', 'MANUAL_CHANGE', 'SYSTEM_AUTOMATIC')),
    change_source TEXT NOT NULL CHECK (length(change_source) <= 50),
    change_metadata TEXT NULL CHECK (change_metadata IS NULL OR json_valid(change_metadata)),
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
);
CREATE INDEX idx_role_log_changed_by_changed_at ON user_role_change_log (changed_by, changed_at);
CREATE INDEX idx_role_log_user_changed_at ON user_role_change_log (user_id, changed_at);
CREATE INDEX ix_user_role_change_log_changed_at ON user_role_change_log (changed_at);
CREATE INDEX ix_user_role_change_log_changed_by ON user_role_change_log (changed_by);
CREATE INDEX ix_user_role_change_log_user_id ON user_role_change_log (user_id);

CREATE TABLE users (
    user_id INTEGER NOT NULL PRIMARY KEY,
    username TEXT NULL CHECK (length(username) <= 100),
    first_name TEXT NOT NULL CHECK (length(first_name) <= 100),
    last_name TEXT NULL CHECK (length(last_name) <= 100),
    role TEXT NOT NULL CHECK (role IN ('FREE', 'VIP', 'ADMIN')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now'))
) WITHOUT ROWID;

CREATE TABLE vip_subscribers (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (user_id),
    join_date TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    expiry_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (length(status) <= 20),
    vip_entry_stage INTEGER NULL,
    vip_entry_token TEXT NULL UNIQUE CHECK (length(vip_entry_token) <= 64),
    invite_link_sent_at TEXT NULL,
    token_id INTEGER NOT NULL REFERENCES invitation_tokens (id)
);
CREATE INDEX idx_status_expiry ON vip_subscribers (status, expiry_date);
CREATE INDEX idx_vip_entry_stage ON vip_subscribers (vip_entry_stage);
CREATE INDEX ix_vip_subscribers_status ON vip_subscribers (status);
CREATE UNIQUE INDEX ix_vip_subscribers_user_id ON vip_subscribers (user_id);
