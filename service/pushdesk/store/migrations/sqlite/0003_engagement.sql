-- Engagement: what readers' browsers report, and when each delivery was accepted.
CREATE TABLE events (
    alert_id         INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    subscription_id  INTEGER NOT NULL,             -- no foreign key: a reader may leave later
    type             TEXT NOT NULL CHECK (type IN ('shown', 'clicked')),
    at               REAL NOT NULL,
    PRIMARY KEY (alert_id, subscription_id, type)
) WITHOUT ROWID;

-- Deliveries by time since the alert was created, in buckets (10 ms to 10 s, 100 ms to 100 s,
-- then whole seconds): enough for percentiles and a per-second timeline at any audience size.
CREATE TABLE delivery_times (
    alert_id   INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    bucket_ms  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (alert_id, bucket_ms)
) WITHOUT ROWID;

ALTER TABLE alerts ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN clicked INTEGER NOT NULL DEFAULT 0;
