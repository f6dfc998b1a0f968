"""What editors and readers may send: one set of limits, read by the API's checks, the CLI's
arguments and the OpenAPI document, so the three never disagree."""

from __future__ import annotations

MAX_TITLE = 300  # characters of a headline
MAX_BODY_TEXT = 3000  # characters of an alert's body
MAX_URL = 2048  # characters of an article, icon or image link
MAX_ENDPOINT_LENGTH = 1024  # characters of a push subscription's endpoint
DEFAULT_TTL = 3600  # seconds a push service keeps an alert for an offline reader
MAX_ALERT_TTL = 86400  # a day: older news is not news (push services would take four weeks)
MAX_PER_DAY = 50  # the highest daily cap a reader may set
MAX_IDEMPOTENCY_KEY = 255  # characters
MAX_LIST = 200  # alerts in one listing
