"""Property tests (hypothesis): payload shortening and subscription parsing."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushdesk.config import Settings
from pushdesk.inputs import (
    Invalid,
    decode_json,
    host_allowed,
    is_loopback,
    parse_endpoint,
    parse_push_subscription,
)
from pushdesk.limits import MAX_ENDPOINT_LENGTH
from pushdesk.webpush.crypto import encrypt
from pushdesk.webpush.payload import Message, PayloadTooLarge, build_payload
from tests.support.helpers import BrowserKeys

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
    except Invalid as exc:
        assert exc.field.startswith("subscription") and exc.message
        return
    assert endpoint.startswith("https://") and len(p256dh) == 65 and len(auth) == 16


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 10_000))
def test_real_browser_subscriptions_always_parse(n):
    keys = BrowserKeys.generate()
    endpoint = f"https://updates.push.services.mozilla.com/wpush/v2/{n}"
    parsed = parse_push_subscription(keys.subscription_json(endpoint), SETTINGS)
    assert parsed == (endpoint, keys.p256dh, keys.auth)


def endpoint_verdict_whole_url(value: str, settings: Settings) -> bool:
    """The endpoint rules written another way: urlsplit on the whole endpoint, as an oracle
    for the cached per-origin check."""
    if not value or len(value) > MAX_ENDPOINT_LENGTH or not all("!" <= c <= "~" for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return False
    # Any "@" in the authority is userinfo, and any "#" a fragment, even an empty one
    if not host or "@" in parts.netloc or "#" in value:
        return False
    after_host = parts.netloc.rsplit("]", 1)[-1]
    if after_host.endswith(":"):
        return False  # an empty port: py_vapid refuses that audience
    if settings.allow_http_endpoints and is_loopback(host) and parts.scheme in ("http", "https"):
        return ":" not in host  # nor an IPv6 literal
    labels = host.split(".")
    named = (
        len(labels) > 1
        and not labels[-1].isdigit()
        and all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels)
    )
    port_text = after_host.partition(":")[2] if ":" in after_host else None
    return (
        parts.scheme == "https"
        and named
        and port_text in (None, "443")
        and port in (None, 443)
        and host_allowed(host, settings.push_hosts)
    )


url_pieces = st.tuples(
    st.sampled_from(["https", "HTTPS", "http", "ftp", "", "1x", "https "]),
    st.sampled_from(["://", ":/", ":", "//", ":///"]),
    st.sampled_from(["", "user@", "user:pw@", ":@", "@"]),
    st.sampled_from(
        [
            "fcm.googleapis.com",
            "FCM.googleapis.com",
            "127.0.0.1",
            "[::1]",
            "localhost",
            "evil.example",
            "[::1",
            "::1]",
            "web.push.apple.com",
            "x.notify.windows.com",
            "a..push.apple.com",
            "x%2ey.push.apple.com",
            "-x.push.apple.com",
            "1.2.3.4",
            "fcm.googleapis.com.",
            "",
        ]
    ),
    st.sampled_from(["", ":443", ":8443", ":99999", ":x", ":", ":0", ":22", ":0443", ":443:"]),
    st.text("abc/?#=%&:@[]", max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(pieces=url_pieces, allow_http=st.booleans())
def test_endpoint_check_by_cached_origin_matches_whole_url_check(pieces, allow_http):
    value = "".join(pieces)
    config = Settings(allow_http_endpoints=allow_http)
    try:
        spelled = parse_endpoint(value, config)
        accepted = True
    except Invalid as exc:
        assert exc.field == "subscription.endpoint"
        accepted = False
    assert accepted == endpoint_verdict_whole_url(value, config)
    if accepted:  # one spelling: the same URL, scheme and host lower-cased, no :443 on https
        given_parts, spelled_parts = urlsplit(value), urlsplit(spelled)
        assert spelled_parts.hostname == given_parts.hostname
        assert (spelled_parts.path, spelled_parts.query) == (given_parts.path, given_parts.query)
        assert spelled_parts.netloc == spelled_parts.netloc.lower()
        assert not (spelled.startswith("https:") and spelled_parts.port == 443)
        assert parse_endpoint(spelled, config) == spelled


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/x#",
        "https://@fcm.googleapis.com/x",
        "https://:@fcm.googleapis.com/x",
    ],
)
def test_empty_fragments_and_credentials_are_refused_too(endpoint):
    """An origin with an empty userinfo would be a wrong Host and VAPID audience."""
    with pytest.raises(Invalid):
        parse_endpoint(endpoint, Settings())


json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(codec=None), max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    document=json_ish,
    depth=st.integers(0, 3000),
    noise=st.binary(max_size=40),
    surrogate=st.sampled_from(["", "\\ud800", "\\udfff", "\\ud83d"]),
)
def test_outside_json_decodes_or_is_refused_with_a_reason(document, depth, noise, surrogate):
    """Whatever bytes come in (a document, nested deep, with lone surrogate escapes, with
    noise): decode_json returns data that encodes as UTF-8 again, or raises ValueError."""
    text = "[" * depth + json.dumps(document) + "]" * depth
    for raw in (text.encode(), (text[:-1] + f'"{surrogate}"]').encode() if depth else b"", noise):
        try:
            data = decode_json(raw)
        except ValueError as exc:
            assert str(exc)
            continue
        json.dumps(data, ensure_ascii=False).encode("utf-8")
