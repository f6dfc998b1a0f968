"""Property tests (hypothesis): payload shortening and subscription parsing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.errors import ApiError
from service.api.validation import parse_push_subscription
from service.config import Settings
from service.webpush.crypto import encrypt
from service.webpush.payload import Message, PayloadTooLarge, build_payload
from tests.helpers import BrowserKeys

KEYS = BrowserKeys.generate()
SETTINGS = Settings()
texts = st.text(st.characters(codec="utf-8"), max_size=6000)
paths = st.text("abcdefghijklmnopqrstuvwxyz0123456789-/_%", max_size=4200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts, body=st.none() | texts, path=paths, tag=st.none() | st.text(max_size=40))
def test_payload_always_fits_never_cuts_the_url_and_stays_utf8(title, body, path, tag):
    url = "https://news.example/" + path
    message = Message(title=title or "t", url=url, body=body, tag=tag, alert_id=tag)
    try:
        data = build_payload(message)
    except PayloadTooLarge:
        fixed = {"title": "", "url": url, "tag": tag, "alertId": tag}
        assert len(json.dumps(fixed, ensure_ascii=False).encode()) > 3993 - 40
        return
    assert len(data) <= 3993
    decoded = json.loads(data.decode("utf-8"))  # valid UTF-8 and JSON
    assert decoded["url"] == url
    if body is not None and decoded.get("body") != body:
        assert decoded["body"].endswith("…") and body.startswith(decoded["body"][:-1].rstrip())
    if decoded["title"] != message.title:
        assert decoded.get("body") in (None, "…")  # the body went first
    assert len(encrypt(data, KEYS.p256dh, KEYS.auth)) <= 4096


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    value=json_values
    | st.fixed_dictionaries(
        {"endpoint": st.text(max_size=80) | st.just("https://fcm.googleapis.com/fcm/send/x")},
        optional={
            "keys": json_values
            | st.fixed_dictionaries({"p256dh": st.text(max_size=90), "auth": st.text(max_size=30)}),
            "expirationTime": json_values,
        },
    )
)
def test_subscription_parsing_accepts_or_refuses_cleanly(value):
    try:
        endpoint, p256dh, auth = parse_push_subscription(value, SETTINGS)
    except ApiError as exc:
        assert exc.status == 400 and exc.field and exc.field.startswith("subscription")
        return
    assert endpoint.startswith("https://") and len(p256dh) == 65 and len(auth) == 16


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 10_000))
def test_real_browser_subscriptions_always_parse(n):
    keys = BrowserKeys.generate()
    endpoint = f"https://updates.push.services.mozilla.com/wpush/v2/{n}"
    parsed = parse_push_subscription(keys.subscription_json(endpoint), SETTINGS)
    assert parsed == (endpoint, keys.p256dh, keys.auth)
