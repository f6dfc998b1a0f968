-- Readers: subscriptions, their topics, and the VAPID keys they were made with.
CREATE TABLE vapid_keys (
    id          TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retiring', 'retired')),
    created_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE subscriptions (
    id            BIGSERIAL PRIMARY KEY,
    public_id     TEXT NOT NULL UNIQUE,
    endpoint      TEXT NOT NULL UNIQUE,
    p256dh        BYTEA NOT NULL,
    auth          BYTEA NOT NULL,
    vapid_key_id  TEXT NOT NULL REFERENCES vapid_keys(id),
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    quiet_start   INTEGER,
    quiet_end     INTEGER,
    max_per_day   INTEGER,
    language      TEXT,
    token_hash    BYTEA NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL,
    last_failure  TEXT,
    vapid_rejected_at DOUBLE PRECISION
);

CREATE TABLE subscription_topics (
    topic            TEXT NOT NULL,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    PRIMARY KEY (topic, subscription_id)
);

CREATE INDEX subscription_topics_by_subscription ON subscription_topics(subscription_id);
