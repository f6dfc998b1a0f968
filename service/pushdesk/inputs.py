"""Checks for everything a browser, an editor or an import file sends. Each failure is an
`Invalid` naming its field; the API answers it with a 400, the CLI and the import with one
line. Pure: nothing here knows of HTTP requests or the store."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import Settings
from .errors import PushdeskError
from .limits import MAX_ENDPOINT_LENGTH, MAX_PER_DAY, MAX_URL
from .store.models import KEEP, Preferences, QuietHours
from .webpush.keys import InvalidKey, parse_auth_secret, parse_p256dh
from .webpush.transport import SENDABLE_URL
from .webpush.vapid import audience_problem, origin_of

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$")
LOOPBACK_NAMES = ("localhost",)


class Invalid(PushdeskError, ValueError):
    """One input's problem: `field` names it as the client sent it (`subscription.endpoint`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def invalid(field: str, message: str) -> Invalid:
    return Invalid(field, message)


MAX_JSON_DEPTH = 32  # our documents nest three deep; a deeper one is not for us


def decode_json(raw: bytes | str) -> Any:
    """JSON from outside, or ValueError saying what is wrong with it. Refused besides bad
    syntax: nesting past MAX_JSON_DEPTH (deep enough nesting raised RecursionError), and text
    that is not valid Unicode (a lone surrogate such as "\\ud800" could be stored, but not
    encoded into a payload or a log line)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("is not valid JSON") from None
    if not _shallow(data, MAX_JSON_DEPTH):
        raise ValueError(f"nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds text that is not valid Unicode (a lone surrogate)") from None
    return data


def _shallow(value: Any, depth: int) -> bool:
    if isinstance(value, dict):
        return depth > 0 and all(_shallow(v, depth - 1) for v in value.values())
    if isinstance(value, list):
        return depth > 0 and all(_shallow(v, depth - 1) for v in value)
    return True


def require_object(value: Any, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        name = f"{field}.{unknown[0]}" if field != "body" else unknown[0]
        raise invalid(name, "is not a known field")
    return value


def parse_endpoint(value: Any, settings: Settings, field: str = "subscription.endpoint") -> str:
    """The endpoint in its one spelling (scheme and host lower-cased, `:443` dropped), so a
    reader has one endpoint and one VAPID audience; or a 400 naming the rule it breaks."""
    if not isinstance(value, str) or not value:
        raise invalid(field, "must be a URL")
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise invalid(field, f"must be at most {MAX_ENDPOINT_LENGTH} characters")
    if not SENDABLE_URL.fullmatch(value):
        # urlsplit would quietly drop tabs and line breaks; the sender puts the path on the
        # request line as it is, so only what a URL can carry unencoded is accepted.
        raise invalid(field, "must be a URL of visible ASCII characters (percent-encode others)")
    origin = ORIGIN.match(value)
    if origin is None or "#" in value:
        raise invalid(field, NOT_ABSOLUTE)
    problem, spelled = judge_origin(origin[0], settings.allow_http_endpoints, settings.push_hosts)
    if problem:
        raise invalid(field, problem)
    return spelled + value[origin.end() :]


# Scheme and authority, as urlsplit reads them: what decides whether we may send to an endpoint.
ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
NOT_ABSOLUTE = "must be an absolute URL without credentials or fragment"
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
BAD_HOST = (
    "host must be a DNS name: dot-separated labels of letters, digits and hyphens (no empty "
    "label, percent-encoding or IP address)"
)
BAD_PORT = "push services listen on port 443: give no port"


@functools.lru_cache(maxsize=1024)
def judge_origin(
    origin: str, allow_http: bool, push_hosts: tuple[str, ...]
) -> tuple[str | None, str]:
    """(why endpoints at this origin are refused or None, the origin's one spelling).

    Push services listen on https port 443 at a well-formed host name on the allow-list; the
    origin must also be a VAPID audience py_vapid signs (no empty port, no IPv6 literal), or
    every alert would fail for that reader. `allow_http` lets tests use loopback servers on any
    port. Cached: readers share a few push services, and parsing the origin was a sixth of
    checking a subscription (measured).
    """
    scheme, _, authority = origin.partition("://")
    scheme = scheme.lower()
    if "@" in authority:  # credentials, even empty ones: no push service has them
        return NOT_ABSOLUTE, origin
    split = split_authority(authority)
    if split is None:
        return "is not a valid URL", origin
    host, port = split
    if port == "":
        return "has an empty port (give no port, or a number)", origin
    if port is not None and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return "port must be a number from 0 to 65535", origin
    if allow_http and is_loopback(host) and scheme in ("http", "https"):
        spelled = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
        return audience_problem(spelled), spelled
    if scheme != "https":
        return "must be an https URL", origin
    if not well_formed_host(host):
        return BAD_HOST, origin
    if port not in (None, "443"):
        return BAD_PORT, origin
    if not host_allowed(host, push_hosts):
        return f"host {host} is not a known push service", origin
    spelled = f"https://{host}"
    return audience_problem(origin_of(spelled)), spelled


def split_authority(authority: str) -> tuple[str, str | None] | None:
    """(lower-cased host, port text or None) of `host[:port]` or `[v6]:port`; None if neither."""
    if authority.startswith("["):
        close = authority.find("]")
        rest = authority[close + 1 :]
        if close < 0 or (rest and not rest.startswith(":")):
            return None
        return authority[: close + 1].lower(), rest[1:] if rest else None
    host, colon, port = authority.partition(":")
    if not host or ":" in port:
        return None
    return host.lower(), port if colon else None


def well_formed_host(host: str) -> bool:
    labels = host.split(".")
    return (
        len(host) <= 253
        and len(labels) >= 2
        and all(DNS_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # an IPv4 address is not a push service's name
    )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def parse_subscription_keys(value: Any) -> tuple[bytes, bytes]:
    keys = require_object(value, "subscription.keys", {"p256dh", "auth"})
    for name in ("p256dh", "auth"):
        if not isinstance(keys.get(name), str):
            raise invalid(f"subscription.keys.{name}", "is required (base64url)")
    try:
        p256dh = parse_p256dh(keys["p256dh"])
    except InvalidKey as exc:
        raise invalid("subscription.keys.p256dh", str(exc)) from None
    try:
        auth = parse_auth_secret(keys["auth"])
    except InvalidKey as exc:
        raise invalid("subscription.keys.auth", str(exc)) from None
    return p256dh, auth


def parse_push_subscription(value: Any, settings: Settings) -> tuple[str, bytes, bytes]:
    """`PushSubscription.toJSON()` → (endpoint, p256dh, auth)."""
    sub = require_object(value, "subscription", {"endpoint", "expirationTime", "keys"})
    endpoint = parse_endpoint(sub.get("endpoint"), settings)
    expiration = sub.get("expirationTime")
    if expiration is not None and (
        isinstance(expiration, bool) or not isinstance(expiration, int | float)
    ):
        raise invalid("subscription.expirationTime", "must be null or milliseconds")
    if "keys" not in sub:
        raise invalid("subscription.keys", "is required")
    p256dh, auth = parse_subscription_keys(sub["keys"])
    return endpoint, p256dh, auth


PREFERENCE_JSON = {
    "topics": "topics",
    "timezone": "timezone",
    "quietHours": "quiet_hours",
    "maxPerDay": "max_per_day",
    "language": "language",
}


def parse_preferences(body: dict[str, Any], settings: Settings) -> Preferences:
    """The preference fields present in `body`; the others are KEEP."""
    return Preferences(
        topics=tuple(parse_topics(body["topics"], settings)) if "topics" in body else KEEP,
        timezone=parse_timezone(body["timezone"]) if "timezone" in body else KEEP,
        quiet_hours=parse_quiet_hours(body["quietHours"]) if "quietHours" in body else KEEP,
        max_per_day=parse_cap(body["maxPerDay"]) if "maxPerDay" in body else KEEP,
        language=parse_language(body["language"]) if "language" in body else KEEP,
    )


def parse_topics(value: Any, settings: Settings, field: str = "topics") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid(field, "must be a list of topic ids")
    unknown = [t for t in value if t not in settings.topic_ids]
    if unknown:
        raise invalid(field, f"unknown topic {unknown[0]!r}")
    return sorted(set(value))


def parse_timezone(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise invalid("timezone", "must be an IANA time zone name like Europe/London")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise invalid("timezone", f"{value!r} is not a known IANA time zone") from None
    return value


def parse_quiet_hours(value: Any) -> QuietHours | None:
    if value is None:
        return None
    quiet = require_object(value, "quietHours", {"start", "end"})
    minutes = []
    for name in ("start", "end"):
        text = quiet.get(name)
        match = HHMM.match(text) if isinstance(text, str) else None
        if not match:
            raise invalid(f"quietHours.{name}", "must be a time as HH:MM")
        minutes.append(int(match.group(1)) * 60 + int(match.group(2)))
    if minutes[0] == minutes[1]:
        raise invalid("quietHours", "start and end must differ")
    return QuietHours(minutes[0], minutes[1])


def parse_cap(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_DAY:
        raise invalid("maxPerDay", f"must be null or a whole number from 1 to {MAX_PER_DAY}")
    return value


def parse_language(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not LANGUAGE.match(value) or len(value) > 35:
        raise invalid("language", "must be a language tag like en or en-GB")
    return value


def parse_text(value: Any, field: str, limit: int, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "must be non-empty text" if required else "must be text")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value.strip()


def parse_article_url(value: Any, field: str = "url", required: bool = True) -> str | None:
    """A link readers open: absolute https (a push must never send them to plain http)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL:
        raise invalid(field, f"must be an https URL of at most {MAX_URL} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise invalid(field, "is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise invalid(field, "must be an absolute https URL")
    if any(c.isspace() for c in value):
        raise invalid(field, "must not contain spaces")
    return value
