-- Engagement: what readers' browsers report, and when each delivery was accepted.
CREATE TABLE events (
    alert_id         BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    subscription_id  BIGINT NOT NULL,
    type             TEXT NOT NULL CHECK (type IN ('shown', 'clicked')),
    at               DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (alert_id, subscription_id, type)
);

CREATE TABLE delivery_times (
    alert_id   BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    bucket_ms  INTEGER NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (alert_id, bucket_ms)
);

ALTER TABLE alerts ADD COLUMN shown BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN clicked BIGINT NOT NULL DEFAULT 0;
