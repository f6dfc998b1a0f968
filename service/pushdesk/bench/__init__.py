"""`pushdesk bench`: one alert to N readers through the real API and workers, measured.

Everything runs on this machine: a push-service sink on loopback in its own process (nginx when
installed, else a small built-in one), `pushdesk serve --workers W` as a real process tree, and
the same sink for two pywebpush baselines run in the same invocation, so the ratios compare like
with like on a noisy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from ..config import Settings
from ..store import open_store
from ..tokens import hash_secret, new_secret
from ..vapid_keys import load_keyring
from ..webpush.encoding import b64url_encode

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = "https://news.example/bench"


# -- processes and /proc ----------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the sink -------------------------------------------------------------------------------
@dataclass
class Sink:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    first_request_file: Path
    stats_file: Path | None = None  # the built-in sink's counts, written on SIGUSR2
    cert_file: Path | None = None  # TLS: the certificate the processes of this run trust

    @property
    def base(self) -> str:
        scheme = "https" if self.cert_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def first_request_at(self) -> float | None:
        """When the first request came in. nginx writes its log every 100 ms, so a run that
        ended sooner waits for that write (up to a second)."""
        deadline = time.monotonic() + 1.0
        while True:
            try:
                text = self.first_request_file.read_text().strip()
            except OSError:
                return None
            if text or time.monotonic() > deadline:
                return float(text.split()[0]) if text else None
            time.sleep(0.05)

    def reset(self) -> None:
        """Forget the first request (nginx reopens its emptied log; the built-in sink also
        zeroes its counts)."""
        self.first_request_file.write_text("")
        self.process.send_signal(signal.SIGUSR1)

    def counts(self) -> dict[str, int]:
        """What the built-in sink counted since the last reset (nothing for nginx)."""
        if self.stats_file is None:
            return {}
        self.stats_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.stats_file.exists():
                counts: dict[str, int] = json.loads(self.stats_file.read_text())
                return counts
            time.sleep(0.02)
        return {}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sink(scratch: Path, latency_ms: float = 0.0, tls: bool = False) -> Sink:
    """nginx on plain HTTP when it is installed and no latency or TLS is asked for (the
    cheapest sink, so the figures are pushdesk's); else the built-in sink, which also delays
    its answers, speaks TLS with HTTP/2 and HTTP/1.1, and counts connections."""
    port = free_port()
    log = scratch / "sink-first.log"
    log.write_text("")
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx and not latency_ms and not tls:
        return _start_nginx(nginx, scratch, port, log)
    stats = scratch / "sink-stats.json"
    command = [sys.executable, "-m", "pushdesk.bench.sink", "--port", str(port)]
    command += ["--first", str(log), "--stats", str(stats), "--latency", str(latency_ms)]
    cert_file = None
    if tls:
        from .tls import self_signed_certificate

        cert_file, key_file = self_signed_certificate(scratch)
        command += ["--cert", str(cert_file), "--key", str(key_file)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kind = "built-in sink" + ("" if nginx or latency_ms or tls else " (nginx not installed)")
    sink = Sink(kind, port, process, log, stats, cert_file)
    _wait_for_port(port)
    return sink


def _start_nginx(nginx: str, scratch: Path, port: int, log: Path) -> Sink:
    conf = scratch / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {scratch}/nginx.pid;\n"
        f"error_log {scratch}/ng.err;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"  log_format t '$msec'; access_log {log} t buffer=256k flush=100ms;\n"
        "  keepalive_requests 1000000; keepalive_timeout 60s;\n"
        f"  client_body_temp_path {scratch}; client_body_buffer_size 8k;\n"
        f"  proxy_temp_path {scratch}; fastcgi_temp_path {scratch}; uwsgi_temp_path "
        f"{scratch}; scgi_temp_path {scratch};\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{ return 201; }} }}\n"
        "}\n"
    )
    process = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(scratch)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sink = Sink("nginx", port, process, log)
    _wait_for_port(port)
    return sink


def _wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def sink_cpu(sink: Sink) -> float:
    return cpu_seconds(sink.process.pid) + sum(cpu_seconds(c) for c in children(sink.process.pid))


# -- readers ----------------------------------------------------------------------------------
def random_subscription(endpoint: str) -> dict[str, Any]:
    """What a browser's `PushSubscription.toJSON()` gives, with a new P-256 key and secret."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {
        "endpoint": endpoint,
        "keys": {"p256dh": b64url_encode(key), "auth": b64url_encode(os.urandom(16))},
    }


BASELINE_READERS = 20000  # readers the baselines send to, in turn


def write_readers(sink: Sink, count: int, path: Path, progress: Progress) -> list[str]:
    """Write `count` readers as `subscriptions import` reads them; return the first
    BASELINE_READERS lines for the baselines (not all: the bench keeps no million lines)."""
    first: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            sub = random_subscription(f"{sink.base}/push/{n}")
            line = json.dumps({**sub, "topics": ["breaking"]})
            out.write(line + "\n")
            if n < BASELINE_READERS:
                first.append(line)
            if n % 5000 == 0:
                progress.show("generating readers' keys", n, count)
    return first


# -- output -----------------------------------------------------------------------------------
class Progress:
    def __init__(self, err: TextIO):
        self.err = err

    def show(self, label: str, done: int, total: int, extra: str = "") -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        self.err.write(
            f"\r{label:<26} [{'#' * filled}{'-' * (width - filled)}] {done}/{total} {extra}"
            + " " * 10
        )
        self.err.flush()

    def done(self) -> None:
        self.err.write("\n")


@dataclass
class Figures:
    lines: list[tuple[str, str]] = field(default_factory=list)
    rate: float = 0.0  # pushdesk's messages/s, for the ratios

    def add(self, name: str, value: str) -> None:
        self.lines.append((name, value))

    def print(self, out: TextIO) -> None:
        width = max(len(n) for n, _ in self.lines)
        for name, value in self.lines:
            print(f"{name:<{width}}  {value}", file=out)


# -- the run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distance:
    """How far away the push-service stand-in is: its answer's delay, and TLS or not."""

    latency_ms: float = 0.0
    tls: bool = False

    def describe(self) -> str:
        wire = "TLS (h2 and http/1.1 offered in ALPN)" if self.tls else "plain HTTP/1.1"
        return f"answers after {self.latency_ms:g} ms, {wire}"


async def run(
    subscribers: int,
    workers: int,
    baseline_seconds: float = 8.0,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    distance: Distance = Distance(),
) -> int:
    progress = Progress(err)
    scratch = Path(tempfile.mkdtemp(prefix="pushdesk-bench-"))
    sink = start_sink(scratch, distance.latency_ms, distance.tls)
    figures = Figures()
    try:
        with _trusting(sink.cert_file):
            figures.add("machine", f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
            figures.add("sink", f"{sink.kind} on {sink.base}, {distance.describe()}")
            await _measure(sink, subscribers, workers, baseline_seconds, progress, figures)
    finally:
        sink.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    progress.done()
    figures.print(out)
    return 0


async def _measure(
    sink: Sink,
    subscribers: int,
    workers: int,
    baseline_seconds: float,
    progress: Progress,
    figures: Figures,
) -> None:
    scratch = sink.first_request_file.parent
    settings = Settings(
        database=f"sqlite:///{scratch / 'data' / 'pushdesk.db'}",
        keys_dir=scratch / "keys",
        vapid_subject="mailto:bench@example.com",
        allow_http_endpoints=True,
        rate_limit=None,
        log_level="WARNING",
    )
    readers = scratch / "readers.jsonl"
    lines = write_readers(sink, subscribers, readers, progress)
    progress.show("importing readers", 0, subscribers)
    editor_key = await _prepare_store(settings)
    import_rate = await _import(settings, readers, subscribers)
    progress.done()
    figures.add(
        "readers loaded",
        f"{subscribers} by pushdesk subscriptions import: {import_rate:,.0f} readers/s",
    )
    await _run_alert(settings, sink, subscribers, workers, editor_key, progress, figures)
    await _baselines(settings, sink, lines, baseline_seconds, workers, progress, figures)


# OpenSSL's default verify paths (so the ssl module's default contexts), and requests' bundle
TRUST_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


@contextlib.contextmanager
def _trusting(cert_file: Path | None) -> Iterator[None]:
    """The sink's certificate trusted by this process and those it starts, for the run only."""
    if cert_file is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in TRUST_VARIABLES}
    os.environ.update(dict.fromkeys(TRUST_VARIABLES, str(cert_file)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _prepare_store(settings: Settings) -> str:
    """A VAPID key and an editor key in a new store."""
    store = await open_store(settings.database)
    try:
        await load_keyring(store, settings.keys_dir, settings.vapid_subject, create_first=True)
        key = new_secret()
        await store.add_editor("bench", hash_secret(key))
    finally:
        await store.close()
    return key


async def _import(settings: Settings, readers: Path, count: int) -> float:
    """`pushdesk subscriptions import` as an operator runs it; readers/s from start to exit."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pushdesk", "subscriptions", "import", str(readers)),
        env=_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    elapsed = time.perf_counter() - started
    expected = f"imported {count} new and 0 known readers; 0 lines skipped"
    if process.returncode != 0 or out.decode().strip() != expected:
        raise RuntimeError(f"bench readers did not import: {(out + err).decode()[-500:]}")
    return count / elapsed


# The operator's sizing variables reach the measured service; no other PUSHDESK_ setting does.
TUNING = ("PUSHDESK_WORKER_CONCURRENCY", "PUSHDESK_ORIGIN_CONNECTIONS")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHDESK_") or k in TUNING}
    env.update(
        PUSHDESK_DATABASE=settings.database,
        PUSHDESK_KEYS_DIR=str(settings.keys_dir),
        PUSHDESK_VAPID_SUBJECT=settings.vapid_subject,
        PUSHDESK_ALLOW_HTTP_ENDPOINTS="true",
        PUSHDESK_RATE_LIMIT="off",
        PUSHDESK_LOG_LEVEL="WARNING",
    )
    return env


async def _run_alert(
    settings: Settings,
    sink: Sink,
    subscribers: int,
    workers: int,
    editor_key: str,
    progress: Progress,
    figures: Figures,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, "-m", "pushdesk", "serve", "--port", str(port), "--workers", str(workers)],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        await asyncio.sleep(1.0)  # worker processes load their keys
        tree = [serve.pid, *children(serve.pid)]
        cpu_before = {pid: cpu_seconds(pid) for pid in tree}
        sink_before = sink_cpu(sink)
        sink.reset()
        headers = {"Authorization": f"Bearer {editor_key}"}
        async with aiohttp.ClientSession() as session:
            probe = asyncio.create_task(_api_probe(session, base, sink))
            started = time.time()
            async with session.post(
                f"{base}/api/alerts", json={"title": "Bench alert", "url": PAGE}, headers=headers
            ) as resp:
                alert = await resp.json()
                answered = time.time()
                if resp.status != 202:
                    raise RuntimeError(f"alert refused: {alert}")
            while True:
                async with session.get(f"{base}/api/alerts/{alert['id']}", headers=headers) as r:
                    alert = await r.json()
                c = alert["counts"]
                worked = c["delivered"] + c["failed"] + c["removed"] + c["skipped"]
                progress.show("sending the alert", worked, subscribers, alert["status"])
                if alert["status"] in ("done", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.1)
            finished = time.time()
            probe.cancel()
            latencies = await asyncio.gather(probe, return_exceptions=True)
        progress.done()
        first = sink.first_request_at()
        elapsed = finished - started
        rate = c["delivered"] / elapsed
        figures.add("alert", f"{alert['status']}: {c['delivered']} delivered, {c['failed']} failed")
        figures.add("pushdesk messages/s", f"{rate:,.0f} (end to end, POST to done)")
        figures.add("total time", f"{elapsed:.2f} s")
        if first is not None:
            figures.add(
                "time to first request",
                f"{(first - started) * 1000:.1f} ms (the API answered the POST in "
                f"{(answered - started) * 1000:.1f} ms)",
            )
        probe_ms = latencies[0] if isinstance(latencies[0], list) else []
        if probe_ms:
            p99 = statistics.quantiles(probe_ms, n=100)[98] if len(probe_ms) > 2 else max(probe_ms)
            figures.add(
                "API p99 while sending",
                f"{p99:.1f} ms (POST /api/subscriptions, n={len(probe_ms)})",
            )
        tree = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
        cpu = {pid: cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in tree}
        rss = {pid: peak_rss_mb(pid) for pid in tree}
        names = {serve.pid: "api"} | {pid: f"worker {n}" for n, pid in enumerate(tree[1:], 1)}
        figures.add(
            "peak memory",
            ", ".join(f"{names[p]} {rss[p]:.0f} MB" for p in tree)
            + f" (total {sum(rss.values()):.0f} MB)",
        )
        figures.add(
            "CPU used",
            ", ".join(f"{names[p]} {cpu[p]:.1f} s" for p in tree)
            + f"; sink {sink_cpu(sink) - sink_before:.1f} s; wall {elapsed:.1f} s",
        )
        seen = sink.counts()
        if seen:
            figures.add("push service saw", _connections(seen))
        figures.rate = rate
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()


def _connections(seen: dict[str, int]) -> str:
    """The built-in sink's counts, as a push service's operator would read them (the bench's
    readers all sit behind its one origin)."""
    protocols = ", ".join(f"{p} {seen[p]}" for p in ("h2", "http/1.1") if seen.get(p))
    text = f"{seen.get('connections', 0)} connections to the one origin ({protocols})"
    if "tls handshakes" in seen:
        text += (
            f", {seen['tls handshakes']} TLS handshakes"
            f" ({seen.get('tls sessions resumed', 0)} resumed)"
        )
    return text + f", {seen.get('requests', 0)} requests"


async def _api_probe(session: aiohttp.ClientSession, base: str, sink: Sink) -> list[float]:
    """Readers subscribing while the alert goes out: how long does the API take to answer?"""
    timings: list[float] = []
    n = 0
    try:
        while True:
            n += 1
            body = {
                "subscription": random_subscription(f"{sink.base}/probe/{n}"),
                "topics": ["sport"],
            }
            started = time.perf_counter()
            async with session.post(f"{base}/api/subscriptions", json=body) as resp:
                await resp.read()
            timings.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        return timings


async def _baselines(
    settings: Settings,
    sink: Sink,
    lines: list[str],
    seconds: float,
    workers: int,
    progress: Progress,
    figures: Figures,
) -> None:
    """pywebpush as tutorials write it, and used well, and aiohttp's ClientSession posting
    encrypted bodies with nothing else around it, on one sink."""
    from ..webpush.encoding import b64url_decode
    from .baselines import session_rate, webpush_async_rate, webpush_loop_rate

    [key_file] = list(settings.keys_dir.glob("*.pem"))
    subscriptions = [_subscription_info(line) for line in lines]
    claims_sub = settings.vapid_subject
    progress.show("baseline: webpush() loop", 0, 1)
    loop_rate = await asyncio.to_thread(
        webpush_loop_rate, subscriptions, str(key_file), claims_sub, seconds
    )
    progress.show("baseline: webpush_async", 0, 1)
    async_rate = await webpush_async_rate(subscriptions, str(key_file), claims_sub, seconds)
    progress.show("ClientSession + encryption", 0, 1)
    endpoints = [
        (s["endpoint"], b64url_decode(s["keys"]["p256dh"]), b64url_decode(s["keys"]["auth"]))
        for s in subscriptions[:2000]
    ]
    plain = await asyncio.to_thread(session_rate, endpoints, seconds, workers)
    progress.done()
    rate = figures.rate
    figures.add("pywebpush webpush() loop", f"{loop_rate:,.0f} messages/s")
    figures.add("pywebpush webpush_async x100", f"{async_rate:,.0f} messages/s (shared session)")
    figures.add(
        "aiohttp ClientSession + encryption",
        f"{plain:,.0f} messages/s ({workers} processes, no store, policy or signing)",
    )
    figures.add(
        "ratios",
        f"{rate / loop_rate:.1f}x the webpush() loop, {rate / async_rate:.1f}x webpush_async, "
        f"{rate / plain:.2f}x ClientSession + encryption",
    )


def _subscription_info(line: str) -> dict[str, Any]:
    data = json.loads(line)
    return {"endpoint": data["endpoint"], "keys": data["keys"]}
