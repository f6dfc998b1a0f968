-- Readers: subscriptions, their topics, and the VAPID keys they were made with.
CREATE TABLE vapid_keys (
    id          TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retiring', 'retired')),
    created_at  REAL NOT NULL
);

CREATE TABLE subscriptions (
    id            INTEGER PRIMARY KEY,           -- shards are ranges of this id
    public_id     TEXT NOT NULL UNIQUE,          -- what the API shows
    endpoint      TEXT NOT NULL UNIQUE,
    p256dh        BLOB NOT NULL,                 -- 65 raw bytes, validated at subscribe time
    auth          BLOB NOT NULL,                 -- 16 raw bytes
    vapid_key_id  TEXT NOT NULL REFERENCES vapid_keys(id),
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    quiet_start   INTEGER,                       -- minutes after local midnight
    quiet_end     INTEGER,
    max_per_day   INTEGER,
    language      TEXT,
    token_hash    BLOB NOT NULL,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    last_failure  TEXT,
    vapid_rejected_at REAL                       -- set on 401/403: stop sending with this key
);

CREATE TABLE subscription_topics (
    topic            TEXT NOT NULL,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    PRIMARY KEY (topic, subscription_id)
) WITHOUT ROWID;

CREATE INDEX subscription_topics_by_subscription ON subscription_topics(subscription_id);
