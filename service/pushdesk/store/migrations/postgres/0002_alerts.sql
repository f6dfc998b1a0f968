-- Editors, alerts and the fan-out's work: shards, deferred deliveries, daily caps.
CREATE TABLE editors (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    BYTEA NOT NULL UNIQUE,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
);

CREATE TABLE alerts (
    id                   BIGSERIAL PRIMARY KEY,
    public_id            TEXT NOT NULL UNIQUE,
    title                TEXT NOT NULL,
    url                  TEXT NOT NULL,
    body                 TEXT,
    icon                 TEXT,
    image                TEXT,
    topics               TEXT NOT NULL,
    ttl                  INTEGER NOT NULL,
    urgency              TEXT NOT NULL,
    respect_quiet_hours  BOOLEAN NOT NULL,
    editor               TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'sending', 'done', 'cancelled', 'failed')),
    planned              BOOLEAN NOT NULL DEFAULT FALSE,
    idempotency_key      TEXT,
    first_response       TEXT,
    created_at           DOUBLE PRECISION NOT NULL,
    started_at           DOUBLE PRECISION,
    finished_at          DOUBLE PRECISION,
    audience             BIGINT NOT NULL DEFAULT 0,
    sent                 BIGINT NOT NULL DEFAULT 0,
    delivered            BIGINT NOT NULL DEFAULT 0,
    removed              BIGINT NOT NULL DEFAULT 0,
    failed               BIGINT NOT NULL DEFAULT 0,
    skipped              BIGINT NOT NULL DEFAULT 0,
    deferred             BIGINT NOT NULL DEFAULT 0,
    error                TEXT
);
CREATE UNIQUE INDEX alerts_idempotency ON alerts(editor, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX alerts_by_url ON alerts(url, created_at);
CREATE INDEX alerts_unplanned ON alerts(id) WHERE NOT planned;

CREATE TABLE alert_shards (
    id             BIGSERIAL PRIMARY KEY,
    alert_id       BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    lo             BIGINT NOT NULL,
    hi             BIGINT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'claimed', 'done')),
    lease_owner    TEXT,
    lease_expires  DOUBLE PRECISION,
    cursor         BIGINT NOT NULL,
    claims         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alert_shards_open ON alert_shards(id) WHERE state <> 'done';
CREATE INDEX alert_shards_by_alert ON alert_shards(alert_id, state);

CREATE TABLE deliveries_deferred (
    alert_id         BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    due_at           DOUBLE PRECISION NOT NULL,
    reason           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires    DOUBLE PRECISION,
    PRIMARY KEY (alert_id, subscription_id)
);
CREATE INDEX deliveries_deferred_due ON deliveries_deferred(due_at);
CREATE INDEX deliveries_deferred_by_subscription ON deliveries_deferred(subscription_id);

CREATE TABLE daily_counts (
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    day              TEXT NOT NULL,
    count            INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, day)
);
