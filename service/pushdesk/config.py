"""Settings: read once at start from `PUSHDESK_*` variables and an optional TOML file.

Every problem is collected and reported together, so an operator fixes a config in one pass
instead of discovering mistakes one restart at a time.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import PushdeskError
from .webpush.vapid import subject_problem

DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)

DEFAULT_TOPICS: tuple[dict[str, Any], ...] = (
    {"id": "breaking", "name": "Breaking news", "default": True},
    {"id": "world", "name": "World", "default": False},
    {"id": "uk", "name": "UK", "default": False},
    {"id": "us", "name": "US", "default": False},
    {"id": "politics", "name": "Politics", "default": False},
    {"id": "business", "name": "Business", "default": False},
    {"id": "sport", "name": "Sport", "default": False},
    {"id": "culture", "name": "Culture", "default": False},
    {"id": "technology", "name": "Technology", "default": False},
)

TOPIC_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
RATE = re.compile(r"^(\d+)/(second|minute|hour)$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(PushdeskError):
    """Raised with every problem found; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Topic:
    id: str
    name: str
    default: bool = False


@dataclass(frozen=True)
class Settings:
    database: str = "sqlite:///data/pushdesk.db"
    keys_dir: Path = Path("keys")
    vapid_subject: str = "mailto:push@example.com"
    site_origins: tuple[str, ...] = ()
    topics: tuple[Topic, ...] = tuple(Topic(**t) for t in DEFAULT_TOPICS)
    push_hosts: tuple[str, ...] = DEFAULT_PUSH_HOSTS
    allow_http_endpoints: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    rate_limit: tuple[int, float] | None = (30, 60.0)
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    workers: int = os.cpu_count() or 1  # worker processes beside the API; 0 = in its loop
    worker_concurrency: int = 1024  # lanes a batch may use at once
    # Connections a worker process keeps to one push service, each carrying one request at a
    # time: the bound on its requests in flight there (README, Performance: sizing).
    origin_connections: int = 512
    lease_seconds: int = 30

    @functools.cached_property
    def topic_ids(self) -> frozenset[str]:  # checked for every imported line: built once
        return frozenset(t.id for t in self.topics)

    @property
    def default_topics(self) -> list[str]:
        return [t.id for t in self.topics if t.default]


# Variable name -> TOML key. The TOML file uses the same names in lower case without prefix.
_KEYS = {
    "PUSHDESK_DATABASE": "database",
    "PUSHDESK_KEYS_DIR": "keys_dir",
    "PUSHDESK_VAPID_SUBJECT": "vapid_subject",
    "PUSHDESK_SITE_ORIGINS": "site_origins",
    "PUSHDESK_TOPICS": "topics",
    "PUSHDESK_PUSH_HOSTS": "push_hosts",
    "PUSHDESK_ALLOW_HTTP_ENDPOINTS": "allow_http_endpoints",
    "PUSHDESK_HOST": "host",
    "PUSHDESK_PORT": "port",
    "PUSHDESK_RATE_LIMIT": "rate_limit",
    "PUSHDESK_TRUSTED_PROXIES": "trusted_proxies",
    "PUSHDESK_LOG_LEVEL": "log_level",
    "PUSHDESK_WORKERS": "workers",
    "PUSHDESK_WORKER_CONCURRENCY": "worker_concurrency",
    "PUSHDESK_ORIGIN_CONNECTIONS": "origin_connections",
    "PUSHDESK_LEASE_SECONDS": "lease_seconds",
}


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Merge the TOML file (if any) under the environment, validate, and return Settings."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    problems: list[str] = []
    if config_file is not None:
        raw.update(_read_toml(Path(config_file), problems))
    for var, key in _KEYS.items():
        if var in environ:
            raw[key] = environ[var]
    unknown = sorted(k for k in raw if k not in _KEYS.values())
    problems += [f"{config_file}: unknown setting {k!r}" for k in unknown]
    values = _parse(raw, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def _read_toml(path: Path, problems: list[str]) -> dict[str, object]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"config file {path} does not exist")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"config file {path} cannot be read: {exc}")
    return {}


def _parse(raw: dict[str, object], problems: list[str]) -> dict[str, Any]:
    """Each setting through its parser; the values are what `Settings` declares."""
    out: dict[str, Any] = {}
    parsers = {
        "database": _database,
        "keys_dir": lambda v: Path(_text(v)),
        "vapid_subject": _subject,
        "site_origins": lambda v: tuple(_origin(o) for o in _list(v)),
        "topics": _topics,
        "push_hosts": lambda v: tuple(_host_pattern(h) for h in _list(v)),
        "allow_http_endpoints": _bool,
        "host": _text,
        "port": lambda v: _int(v, 1, 65535),
        "rate_limit": _rate,
        "trusted_proxies": lambda v: tuple(_network(p) for p in _list(v)),
        "log_level": _log_level,
        "workers": lambda v: _int(v, 0, 256),
        "worker_concurrency": lambda v: _int(v, 1, 10000),
        "origin_connections": lambda v: _int(v, 1, 10000),
        "lease_seconds": lambda v: _int(v, 2, 600),
    }
    env_name = {v: k for k, v in _KEYS.items()}
    for key, value in raw.items():
        if key not in parsers:
            continue
        try:
            out[key] = parsers[key](value)
        except ValueError as exc:
            problems.append(f"{env_name[key]}: {exc}")
    return out


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _list(value: object) -> list[str]:
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = [p for p in re.split(r"[,\s]+", value) if p]
    else:
        raise ValueError("must be a comma-separated list")
    if not all(isinstance(i, str) and i for i in items):
        raise ValueError("must be a list of non-empty strings")
    return [str(i) for i in items]


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _int(value: object, lo: int, hi: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if not lo <= number <= hi:
        raise ValueError(f"{number} is outside {lo}..{hi}")
    return number


def _database(value: object) -> str:
    url = _text(value)
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return url
    if url.startswith(("postgresql://", "postgres://")):
        return url
    raise ValueError(f"{url!r} is neither sqlite:///PATH nor postgresql://...")


def _subject(value: object) -> str:
    subject = _text(value)
    if re.fullmatch(r"mailto:[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+", subject):
        pass
    elif not (subject.startswith("https://") and urlsplit(subject).hostname):
        raise ValueError(
            f"{subject!r} must be a mailto: address (no spaces or <>) or an https: URL; "
            "Apple's and Mozilla's push services reject anything else"
        )
    # The signer's own rule too: a subject it refuses would fail every signature, so every
    # worker would crash at warm-up while the API looked ready.
    problem = subject_problem(subject)
    if problem:
        raise ValueError(f"{subject!r}: {problem}")
    return subject


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin like https://news.example")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _host_pattern(value: str) -> str:
    host = value.lower()
    if not re.fullmatch(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?", host):
        raise ValueError(f"{value!r} is not a host name (a leading '*.' is allowed)")
    return host


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network like 10.0.0.0/8") from None
    return value


def _rate(value: object) -> tuple[int, float] | None:
    text = _text(value).lower()
    if text == "off":
        return None
    match = RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{value!r} must look like 30/minute (or 'off')")
    seconds = {"second": 1.0, "minute": 60.0, "hour": 3600.0}[match.group(2)]
    return int(match.group(1)), seconds


def _log_level(value: object) -> str:
    level = _text(value).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{value!r} must be one of {', '.join(LOG_LEVELS)}")
    return level


def _topics(value: object) -> tuple[Topic, ...]:
    """A topic catalogue: the path of a JSON or TOML file, or (in TOML config) an inline list."""
    if isinstance(value, str):
        items = _read_catalogue(Path(value))
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError("must be the path of a topic catalogue file")
    topics: list[Topic] = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ValueError(f"topic #{n} needs an 'id'")
        if not TOPIC_ID.match(item["id"]):
            raise ValueError(f"topic id {item['id']!r} must be 1-32 of a-z 0-9 _ -")
        name = item.get("name", item["id"])
        if not isinstance(name, str) or not isinstance(item.get("default", False), bool):
            raise ValueError(f"topic {item['id']!r}: 'name' is text, 'default' true/false")
        topics.append(Topic(item["id"], name, item.get("default", False)))
    if not topics:
        raise ValueError("the catalogue lists no topics")
    if len({t.id for t in topics}) != len(topics):
        raise ValueError("the catalogue repeats a topic id")
    return tuple(topics)


def _read_catalogue(path: Path) -> list[object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text).get("topics") if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} is not valid: {exc}") from None
    if isinstance(data, dict):
        data = data.get("topics")
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a list of topics")
    return data
