"""The delivery engine: encryption, payload, VAPID and the sender against a fake push service."""

from __future__ import annotations

import asyncio
import json
import time

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushdesk.webpush import sender as sender_module
from pushdesk.webpush.breaker import BreakerOptions
from pushdesk.webpush.classify import Result, classify, parse_retry_after
from pushdesk.webpush.crypto import MAX_PLAINTEXT, encrypt
from pushdesk.webpush.encoding import b64url_decode, b64url_encode
from pushdesk.webpush.keys import P256_B, P256_PRIME, InvalidKey, on_p256_curve, parse_p256dh
from pushdesk.webpush.payload import Message, PayloadTooLarge, build_payload
from pushdesk.webpush.sender import (
    Sender,
    Target,
    address_allowed,
    prepare,
)
from tests.support.helpers import BrowserKeys
from tests.support.sending import fast_options, message, target_for

# RFC 8291 Appendix A
V = {
    "plaintext": "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24",
    "as_private": "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
    "ua_public": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6"
    "SRpkNtoIAiw4",
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "salt": "DGv6ra1nlYgDCS1FRnbzlw",
    "auth_secret": "BTBZMqHH6r4Tts7J_aSIgg",
    "body": "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLoc"
    "InmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNW"
    "QexSgSxsj_Qulcy4a-fN",
}


def private_key(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def test_encryption_reproduces_rfc8291_appendix_a_byte_for_byte():
    body = encrypt(
        b64url_decode(V["plaintext"]),
        b64url_decode(V["ua_public"]),
        b64url_decode(V["auth_secret"]),
        salt=b64url_decode(V["salt"]),
        as_private=private_key(V["as_private"]),
    )
    assert b64url_encode(body) == V["body"]
    assert len(body) == 144


def test_fresh_messages_decrypt_with_http_ece_and_never_repeat_salt_or_key():
    ua = private_key(V["ua_private"])
    auth = b64url_decode(V["auth_secret"])
    bodies = [encrypt(b"hello", b64url_decode(V["ua_public"]), auth) for _ in range(3)]
    for body in bodies:
        assert http_ece.decrypt(body, private_key=ua, auth_secret=auth) == b"hello"
    assert len({b[:16] for b in bodies}) == 3  # salt
    assert len({b[21:86] for b in bodies}) == 3  # sender's ephemeral public key
    with pytest.raises(ValueError):
        encrypt(b"x" * (MAX_PLAINTEXT + 1), b64url_decode(V["ua_public"]), auth)
    full = encrypt(b"x" * MAX_PLAINTEXT, b64url_decode(V["ua_public"]), auth)
    assert len(full) == 4096


def openssl_accepts(point: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


def encode_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def small_x_point() -> tuple[int, int]:
    """The P-256 point with the smallest x (p ≡ 3 mod 4, so a square root is one power)."""
    for x in range(100):
        rhs = (x**3 - 3 * x + P256_B) % P256_PRIME
        y = pow(rhs, (P256_PRIME + 1) // 4, P256_PRIME)
        if y * y % P256_PRIME == rhs:
            return x, y
    raise AssertionError("no point with a small x")


def test_p256_curve_check_agrees_with_openssl():
    """parse_p256dh checks points in Python for speed; OpenSSL is the reference."""
    rfc_key = b64url_decode(V["ua_public"])
    assert parse_p256dh(V["ua_public"]) == rfc_key
    points = [rfc_key] + [BrowserKeys.generate().p256dh for _ in range(50)]
    for point in points:
        assert on_p256_curve(point) and openssl_accepts(point)
        for index in (1, 20, 32, 33, 50, 64):  # one flipped bit in x or y
            bad = bytearray(point)
            bad[index] ^= 0x01
            assert on_p256_curve(bytes(bad)) is openssl_accepts(bytes(bad)) is False
    # A point with a small x, and the same point with x + p: equal mod p, but not a field element.
    x, y = small_x_point()
    assert openssl_accepts(encode_point(x, y)) and on_p256_curve(encode_point(x, y))
    assert not on_p256_curve(encode_point(x + P256_PRIME, y))
    assert not openssl_accepts(encode_point(x + P256_PRIME, y))
    edge = encode_point(P256_PRIME, y)
    assert not on_p256_curve(edge) and not openssl_accepts(edge)
    assert not on_p256_curve(b"\x04" + bytes(64)) and not openssl_accepts(b"\x04" + bytes(64))
    with pytest.raises(InvalidKey, match="not a point on the P-256 curve"):
        parse_p256dh(b64url_encode(b"\x04" + bytes(64)))


def test_payload_keeps_fields_and_leaves_absent_ones_out():
    data = json.loads(build_payload(Message(title="T", url="https://n.example/a", alert_id="a1")))
    assert data == {"title": "T", "url": "https://n.example/a", "alertId": "a1"}


def test_payload_shortens_body_first_then_title_and_never_the_url():
    url = "https://news.example/" + "a" * 200
    long = Message(title="Headline " * 50, url=url, body="Über " * 2000, tag="t")
    data = build_payload(long)
    assert len(data) <= MAX_PLAINTEXT
    decoded = json.loads(data)
    assert decoded["url"] == url and decoded["title"] == long.title
    assert decoded["body"].endswith("…") and len(decoded["body"]) > 100

    huge_title = Message(title="Ж" * 5000, url=url, body="b" * 5000)
    decoded = json.loads(build_payload(huge_title))
    assert decoded["body"] == "…" and decoded["title"].endswith("…")
    assert decoded["url"] == url

    with pytest.raises(PayloadTooLarge):
        build_payload(Message(title="t", url="https://n.example/" + "u" * 4000))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (None, None),
        ("soon", None),
        ("-1", None),
        ("²", None),  # str.isdigit() says yes, float() says no
        ("١٢٠", None),  # Arabic-Indic digits: not delta-seconds either
        ("9" * 5000, None),
        ("99999999999", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT" * 100, None),
        ("Mon, 99 Foo 99999 99:99:99 GMT", None),
    ],
)
def test_retry_after_parsing(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1024,  # nests past the recursion limit
        b'{"a":' * 300,
        bytes(range(256)) * 8,
        rb'{"reason": "\u0000\u001b[31mred"}',
    ],
)
def test_hostile_error_bodies_classify_without_raising(body):
    verdict = classify(400, {}, body)
    assert verdict.result is Result.REJECTED
    assert len(verdict.reason) <= 200 and verdict.reason.isprintable()


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0


# -- the sender against the fake push service -----------------------------------------------


@pytest.fixture
async def sender(keyring):
    async with Sender(keyring, fast_options()) as sender:
        yield sender


async def test_delivered_message_is_decrypted_with_the_right_headers(sender, push_service, keyring):
    endpoint, keys = push_service.subscribe()
    outcome = await sender.send(target_for(endpoint, keys, keyring), message(body="Details"))
    assert outcome.result is Result.DELIVERED and outcome.status == 201 and outcome.attempts == 1
    [received] = push_service.received[endpoint.rsplit("/", 1)[1]]
    assert received.payload == {
        "title": "Breaking",
        "body": "Details",
        "url": "https://news.example/story",
    }
    assert received.headers["TTL"] == "600" and received.headers["Urgency"] == "high"
    assert received.headers["Topic"] == "alert123"
    assert received.headers["Authorization"].startswith("vapid t=")


async def test_warm_up_counts_no_signature_and_sends_nothing(keyring, push_service):
    async with Sender(keyring, fast_options()) as sender:
        sender.warm_up()
        assert keyring.active.signatures == 0 and sender.requests == 0
        endpoint, keys = push_service.subscribe()
        outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.DELIVERED and keyring.active.signatures == 1
    assert push_service.requests == [(endpoint.rsplit("/", 1)[1], 201)]


async def test_vapid_is_signed_once_per_origin(sender, push_service, other_push_service, keyring):
    msg = message()
    subs = [push_service.subscribe() for _ in range(10)] + [
        other_push_service.subscribe() for _ in range(10)
    ]
    outcomes = await asyncio.gather(*(sender.send(target_for(e, k, keyring), msg) for e, k in subs))
    assert {o.result for o in outcomes} == {Result.DELIVERED}
    assert keyring.active.signatures == 2
    assert len(push_service.vapid_tokens) == 1 and len(other_push_service.vapid_tokens) == 1


async def test_token_is_renewed_before_it_expires(keyring):
    signer = keyring.active
    now = time.time()
    first = signer.authorization("https://push.example", now)
    assert signer.authorization("https://push.example", now + 3600) == first
    assert signer.authorization("https://push.example", now + 11.5 * 3600) != first
    assert signer.signatures == 2


@pytest.mark.parametrize(
    ("script", "result"),
    [
        ((410, {}), Result.GONE),
        ((404, {}), Result.GONE),
        ((413, {}), Result.TOO_LARGE),
        ((400, {}), Result.REJECTED),
        ((401, {}), Result.VAPID_REJECTED),
        ((403, {}), Result.VAPID_REJECTED),
    ],
)
async def test_final_answers_are_classified_without_retry(
    sender, push_service, keyring, script, result
):
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, script)
    outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is result and outcome.attempts == 1
    assert outcome.status == script[0] and outcome.reason == "scripted (errno 999)"
    assert push_service.statuses(endpoint) == [script[0]]


async def test_unsubscribed_endpoint_is_gone(sender, push_service, keyring):
    endpoint, keys = push_service.subscribe()
    push_service.unsubscribe(endpoint)
    outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.GONE and outcome.status == 410


async def test_vapid_key_mismatch_is_rejected_with_the_services_reason(
    sender, push_service, keyring
):
    endpoint, keys = push_service.subscribe(bound_key="B" + "A" * 86)
    outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.VAPID_REJECTED and outcome.status == 403
    assert "VapidPkHashMismatch" in outcome.reason


async def test_5xx_bursts_and_dropped_connections_are_retried(sender, push_service, keyring):
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, (500, {}), "drop", (503, {}))
    outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.DELIVERED and outcome.attempts == 4
    assert len(push_service.messages(endpoint)) == 1


async def test_retries_stop_after_max_attempts(keyring, push_service):
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, *[(500, {})] * 10)
    async with Sender(keyring, fast_options(max_attempts=3)) as sender:
        outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.FAILED and outcome.attempts == 3
    assert "gave up after 3 attempts" in outcome.reason
    assert push_service.messages(endpoint) == []


async def test_slow_service_times_out_and_is_retried(keyring, push_service):
    endpoint, keys = push_service.subscribe()
    push_service.slow_seconds = 1.0
    push_service.script(endpoint, "slow")
    async with Sender(keyring, fast_options(total_timeout=0.3)) as sender:
        outcome = await sender.send(target_for(endpoint, keys, keyring), message())
    assert outcome.result is Result.DELIVERED and outcome.attempts == 2


async def test_one_readers_429_is_retried_for_that_reader_only(sender, push_service, keyring):
    """Apple's 429 means too many to this one device: its neighbours at the same push
    service are not held up."""
    throttled, keys = push_service.subscribe()
    neighbour, neighbour_keys = push_service.subscribe()
    push_service.script(throttled, (429, {"Retry-After": "1"}))
    started = time.monotonic()
    first = await sender.send(target_for(throttled, keys, keyring), message())
    assert first.result is Result.DELIVERED and first.attempts == 2
    assert time.monotonic() - started >= 0.95  # the reader waited out its Retry-After

    push_service.script(throttled, (429, {"Retry-After": "1"}))
    throttled_task = asyncio.create_task(
        sender.send(target_for(throttled, keys, keyring), message())
    )
    await asyncio.sleep(0.2)  # the 429 has arrived
    started = time.monotonic()
    same = await sender.send(target_for(neighbour, neighbour_keys, keyring), message())
    assert time.monotonic() - started < 0.5
    assert same.result is Result.DELIVERED
    assert (await throttled_task).result is Result.DELIVERED


async def test_many_readers_throttled_pause_that_origin_only(
    keyring, push_service, other_push_service
):
    """When most recent answers from an origin are 429s the service itself is asking us to
    slow down: the whole origin waits (its Retry-After), other push services carry on."""
    readers = [push_service.subscribe() for _ in range(10)]
    for endpoint, _ in readers:
        push_service.script(endpoint, (429, {"Retry-After": "1"}))
    elsewhere, elsewhere_keys = other_push_service.subscribe()
    async with Sender(keyring, fast_options()) as sender:
        outcomes = await asyncio.gather(
            *(sender.send(target_for(e, k, keyring), message(), max_wait=0) for e, k in readers)
        )
        assert all(o.result is Result.RETRY for o in outcomes)
        assert sender.origin(push_service.origin).breaker.open_until > time.time() + 0.5
        fresh, fresh_keys = push_service.subscribe()
        encryptions = []
        real_encrypt = sender_module.encrypt
        sender_module.encrypt = lambda *args: encryptions.append(1) or real_encrypt(*args)
        try:
            waited = await sender.send(
                target_for(fresh, fresh_keys, keyring), message(), max_wait=0
            )
        finally:
            sender_module.encrypt = real_encrypt
        assert waited.result is Result.RETRY and waited.attempts == 0  # no request went
        assert push_service.statuses(fresh) == [] and encryptions == []  # nor any work
        started = time.monotonic()
        other = await sender.send(target_for(elsewhere, elsewhere_keys, keyring), message())
        assert other.result is Result.DELIVERED and time.monotonic() - started < 0.5


async def test_an_origin_that_is_down_is_probed_not_stormed(keyring, push_service):
    """Every answer 503 for the whole alert: the breaker opens after a few answers and lets
    one probe through per cooldown, so readers cost a handful of requests, not five each;
    when the service is back the probe closes the breaker and everyone is delivered."""
    readers = [push_service.subscribe() for _ in range(40)]
    for endpoint, _ in readers:
        push_service.script(endpoint, *[(503, {})] * 3)
    options = fast_options(breaker=BreakerOptions(cooldown=0.3, min_answers=8))
    async with Sender(keyring, options) as sender:
        lanes = asyncio.Semaphore(4)  # as a worker's lanes take readers, a few at a time

        async def send_one(endpoint, keys):
            async with lanes:
                return await sender.send(target_for(endpoint, keys, keyring), message(), max_wait=0)

        first = await asyncio.gather(*(send_one(e, k) for e, k in readers))
        assert all(o.result is Result.RETRY for o in first)
        assert len(push_service.requests) <= 8 + 4  # tripped after 8; 4 were in flight
        for endpoint, _ in readers:  # the service recovers
            push_service.scripts[endpoint.rsplit("/", 1)[1]].clear()
        later = await asyncio.gather(
            *(
                sender.send(target_for(e, k, keyring), message(), prior_attempts=o.attempts)
                for (e, k), o in zip(readers, first, strict=True)
            )
        )
    assert all(o.result is Result.DELIVERED for o in later)
    assert all(o.attempts <= 2 for o in later)


async def test_attempts_are_bounded_across_deferrals(keyring, push_service):
    """A reader handed back for a later retry carries its attempts: the limit holds for the
    message's whole life, and backoff goes on from there."""
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, *[(500, {})] * 10)
    async with Sender(keyring, fast_options(max_attempts=5)) as sender:
        first = await sender.send(target_for(endpoint, keys, keyring), message(), max_wait=0)
        assert first.result is Result.RETRY and first.attempts == 1
        second = await sender.send(target_for(endpoint, keys, keyring), message(), prior_attempts=4)
    assert second.result is Result.FAILED and second.attempts == 5
    assert "gave up after 5 attempts" in second.reason
    assert len(push_service.statuses(endpoint)) == 2


async def test_ttl_header_is_what_is_left_of_the_alerts_life(sender, push_service, keyring):
    endpoint, keys = push_service.subscribe()
    created = time.time() - 100.4  # a deferred or retried message, 100 s after the alert
    late = prepare(Message(title="t", url="https://news.example/s"), ttl=600, created_at=created)
    outcome = await sender.send(target_for(endpoint, keys, keyring), late)
    assert outcome.result is Result.DELIVERED
    ttl = int(push_service.received[endpoint.rsplit("/", 1)[1]][0].headers["TTL"])
    assert 498 <= ttl <= 500

    stale = prepare(
        Message(title="t", url="https://news.example/s"), ttl=60, created_at=time.time() - 61
    )
    outcome = await sender.send(target_for(endpoint, keys, keyring), stale)
    assert outcome.result is Result.FAILED and "TTL passed" in outcome.reason
    assert len(push_service.statuses(endpoint)) == 1  # nothing more was sent


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://fcm.googleapis.com:/fcm/send/x", "VAPID signer refused"),
        ("https://[2001:db8::1]/push/x", "not a public address"),
    ],
)
async def test_an_unsignable_or_blocked_endpoint_is_that_readers_rejection(
    sender, keyring, endpoint, why
):
    """Stored before the door checked it (an older release, or a bug): the sender turns it
    into that reader's outcome instead of an exception out of the batch."""
    keys = BrowserKeys.generate()
    outcome = await sender.send(
        Target(endpoint, keys.p256dh, keys.auth, keyring.active_id), message()
    )
    assert outcome.result is Result.REJECTED and why in outcome.reason


async def test_retry_after_beyond_what_the_caller_waits_is_handed_back(
    sender, push_service, keyring
):
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, (429, {"Retry-After": "30"}))
    before = time.time()
    outcome = await sender.send(target_for(endpoint, keys, keyring), message(), max_wait=1)
    assert outcome.result is Result.RETRY and outcome.attempts == 1
    assert outcome.retry_at is not None and outcome.retry_at >= before + 29


async def test_no_retry_beyond_the_messages_ttl(sender, push_service, keyring):
    endpoint, keys = push_service.subscribe()
    push_service.script(endpoint, (503, {"Retry-After": "120"}))
    outcome = await sender.send(target_for(endpoint, keys, keyring), message(ttl=60))
    assert outcome.result is Result.FAILED and outcome.attempts == 1
    assert "gave up" in outcome.reason or "TTL" in outcome.reason


async def test_connection_refused_is_retried_then_fails(keyring):
    async with Sender(keyring, fast_options(max_attempts=2)) as sender:
        target = target_for("http://127.0.0.1:9/push/x", BrowserKeys.generate(), keyring)
        outcome = await sender.send(target, message())
    assert outcome.result is Result.FAILED and outcome.attempts == 2
    assert "cannot connect" in outcome.reason


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.1.2.3/push/x",
        "https://192.168.0.1/push/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push/x",
        "https://127.0.0.1/push/x",
        "https://localhost:9/push/x",
    ],
)
async def test_private_and_loopback_addresses_are_refused_before_connecting(keyring, endpoint):
    async with Sender(keyring, fast_options(allow_loopback=False)) as sender:
        outcome = await sender.send(
            target_for(endpoint, BrowserKeys.generate(), keyring), message()
        )
    assert outcome.result is Result.REJECTED
    assert "not a public address" in outcome.reason or "non-public" in outcome.reason
    assert sender.requests <= 1


# Every IANA special-purpose range (IPv4 and IPv6 registries) and the IPv6 forms that embed an
# IPv4 address: only globally routable unicast may be reached.
ADDRESSES = [
    ("8.8.8.8", True),
    ("142.250.1.1", True),
    ("2001:4860:4860::8888", True),
    ("2a00:1450:4001::1", True),
    ("::ffff:8.8.8.8", True),  # mapped: judged as 8.8.8.8
    ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
    ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
    ("0.0.0.0", False),
    ("10.0.0.1", False),
    ("100.64.0.1", False),  # shared address space (carrier NAT)
    ("127.0.0.1", False),
    ("169.254.169.254", False),  # link-local: cloud metadata
    ("172.16.0.1", False),
    ("192.0.0.1", False),
    ("192.0.2.1", False),
    ("192.88.99.1", False),  # 6to4 relay anycast
    ("192.168.1.1", False),
    ("198.18.0.1", False),
    ("198.51.100.1", False),
    ("203.0.113.1", False),
    ("224.0.0.1", False),
    ("240.0.0.1", False),
    ("255.255.255.255", False),
    ("::", False),
    ("::1", False),
    ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
    ("::8.8.8.8", False),
    ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False),
    ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("64:ff9b:1::a00:1", False),  # local-use NAT64
    ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
    ("100::1", False),  # discard-only
    ("2001::1", False),  # Teredo
    ("2001:2::1", False),  # benchmarking
    ("2001:10::1", False),  # ORCHID
    ("2001:20::1", False),  # ORCHIDv2
    ("2001:db8::1", False),
    ("3fff::1", False),  # documentation (RFC 9637)
    ("5f00::1", False),  # outside global unicast 2000::/3
    ("fc00::1", False),
    ("fd12:3456::1", False),
    ("fe80::1", False),
    ("fe80::1%eth0", False),
    ("fec0::1", False),  # site-local
    ("ff02::1", False),
    ("not an address", False),
]


@pytest.mark.parametrize(("address", "allowed"), ADDRESSES)
def test_only_globally_routable_addresses_are_reached(address, allowed):
    assert address_allowed(address, allow_loopback=False) is allowed


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_reached_only_when_allowed_for_tests(address):
    assert address_allowed(address, allow_loopback=True)
    assert not address_allowed(address, allow_loopback=False)


def test_prepare_refuses_bad_headers():
    msg = Message(title="t", url="https://n.example/")
    with pytest.raises(ValueError):
        prepare(msg, ttl=-1)
    with pytest.raises(ValueError):
        prepare(msg, ttl=60, urgency="urgent")
    with pytest.raises(ValueError):
        prepare(msg, ttl=60, topic="has spaces")
    with pytest.raises(ValueError):
        prepare(msg, ttl=60, topic="x" * 33)


async def test_tls_failure_is_retried_then_fails(keyring):
    """An https endpoint whose server does not speak TLS: a handshake failure, retried."""

    async def not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # plain text where TLS was expected
        writer.close()

    server = await asyncio.start_server(not_tls, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Sender(keyring, fast_options(max_attempts=2)) as sender:
            target = target_for(f"https://127.0.0.1:{port}/push/x", BrowserKeys.generate(), keyring)
            outcome = await sender.send(target, message())
    finally:
        server.close()
        await server.wait_closed()
    assert outcome.result is Result.FAILED and outcome.attempts == 2
    assert "cannot connect" in outcome.reason or "network error" in outcome.reason


async def test_queue_time_and_the_push_services_time_are_told_apart(keyring, push_service):
    """With one connection allowed and a push service taking 0.3 s, the second request waits
    0.3 s for the connection: that is queue time, not the push service being slow."""
    from prometheus_client import REGISTRY

    from pushdesk.metrics import forget_origin_labels

    forget_origin_labels()
    readers = [push_service.subscribe() for _ in range(2)]
    push_service.delay = 0.3
    labels = {"origin": push_service.origin}

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    queued_before, answered_before = (
        sample("pushdesk_queue_seconds_sum"),
        sample("pushdesk_send_seconds_sum"),
    )
    async with Sender(keyring, fast_options(per_origin=1)) as sender:
        outcomes = await asyncio.gather(
            *(sender.send(target_for(e, k, keyring), message()) for e, k in readers)
        )
    assert all(o.result is Result.DELIVERED for o in outcomes)
    queued = sample("pushdesk_queue_seconds_sum") - queued_before
    answered = sample("pushdesk_send_seconds_sum") - answered_before
    assert queued >= 0.25  # the second request's wait for the one connection
    # Two answers of 0.3 s each; with the wait mixed in it would be 0.9 s.
    assert 0.55 <= answered < 0.8
    forget_origin_labels()
