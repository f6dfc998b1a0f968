-- Editors, alerts and the fan-out's work: shards, deferred deliveries, daily caps.
CREATE TABLE editors (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    key_hash    BLOB NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

CREATE TABLE alerts (
    id                   INTEGER PRIMARY KEY,
    public_id            TEXT NOT NULL UNIQUE,      -- also the Topic header and the tag
    title                TEXT NOT NULL,
    url                  TEXT NOT NULL,
    body                 TEXT,
    icon                 TEXT,
    image                TEXT,
    topics               TEXT NOT NULL,             -- JSON list of topic ids
    ttl                  INTEGER NOT NULL,
    urgency              TEXT NOT NULL,
    respect_quiet_hours  INTEGER NOT NULL,
    editor               TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'sending', 'done', 'cancelled', 'failed')),
    planned              INTEGER NOT NULL DEFAULT 0, -- shards written
    idempotency_key      TEXT,
    first_response       TEXT,                      -- JSON answered to the first request
    created_at           REAL NOT NULL,
    started_at           REAL,
    finished_at          REAL,
    audience             INTEGER NOT NULL DEFAULT 0,
    sent                 INTEGER NOT NULL DEFAULT 0,
    delivered            INTEGER NOT NULL DEFAULT 0,
    removed              INTEGER NOT NULL DEFAULT 0,
    failed               INTEGER NOT NULL DEFAULT 0,
    skipped              INTEGER NOT NULL DEFAULT 0,
    deferred             INTEGER NOT NULL DEFAULT 0,
    error                TEXT
);
CREATE UNIQUE INDEX alerts_idempotency ON alerts(editor, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX alerts_by_url ON alerts(url, created_at);
CREATE INDEX alerts_unplanned ON alerts(id) WHERE planned = 0;

CREATE TABLE alert_shards (
    id             INTEGER PRIMARY KEY,
    alert_id       INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    lo             INTEGER NOT NULL,                -- subscription ids in (lo, hi]
    hi             INTEGER NOT NULL,
    state          TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'claimed', 'done')),
    lease_owner    TEXT,
    lease_expires  REAL,
    cursor         INTEGER NOT NULL,                -- last subscription id whose outcome is written
    claims         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alert_shards_open ON alert_shards(id) WHERE state != 'done';
CREATE INDEX alert_shards_by_alert ON alert_shards(alert_id, state);

CREATE TABLE deliveries_deferred (
    alert_id         INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    due_at           REAL NOT NULL,
    reason           TEXT NOT NULL,                 -- quiet_hours | retry
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires    REAL,
    PRIMARY KEY (alert_id, subscription_id)
);
CREATE INDEX deliveries_deferred_due ON deliveries_deferred(due_at);
CREATE INDEX deliveries_deferred_by_subscription ON deliveries_deferred(subscription_id);

CREATE TABLE daily_counts (
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    day              TEXT NOT NULL,                 -- the reader's local date, YYYY-MM-DD
    count            INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, day)
) WITHOUT ROWID;
