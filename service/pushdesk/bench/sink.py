"""A push-service stand-in for `pushdesk bench`: answers 201 to every POST, after a delay.

Plain HTTP/1.1 when nginx is not installed; with `--cert`/`--key`, TLS with HTTP/2 and HTTP/1.1
offered in ALPN, as FCM, Apple and Mozilla's front ends do (HTTP/2 with 100 streams a
connection, as Google's announce); with `--latency MS`, each answer leaves MS after its request
came in, as a push service across the internet answers. It counts what a push service's
operator would see: connections, TLS handshakes (and how many resumed a session), the protocol
each chose, requests. SIGUSR1 zeroes the counts; SIGUSR2 writes them to the stats file as JSON.
The wall-clock time of the first request after a reset goes to the first-request file.

Run as `python -m pushdesk.bench.sink --port P --first FILE --stats FILE [--latency MS]
[--cert PEM --key PEM]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

ANSWER = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
H2_STREAMS = 100  # what Google's front ends announce in SETTINGS_MAX_CONCURRENT_STREAMS


class Sink:
    """What the protocols share: the delay, the counts, and the first-request file."""

    def __init__(self, latency: float, first_file: Path, stats_file: Path):
        self.latency = latency
        self.first_file = first_file
        self.stats_file = stats_file
        self.counts: Counter[str] = Counter()
        self.seen_first = False

    def request(self) -> None:
        self.counts["requests"] += 1
        if not self.seen_first:
            self.seen_first = True
            self.first_file.write_text(f"{time.time():.6f}\n")

    def later(self, answer: Any, *args: Any) -> None:
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, answer, *args)
        else:
            answer(*args)

    def reset(self) -> None:
        self.counts.clear()
        self.seen_first = False
        self.first_file.write_text("")

    def write_stats(self) -> None:
        partial = self.stats_file.with_suffix(".partial")
        partial.write_text(json.dumps(dict(self.counts)))
        partial.replace(self.stats_file)


class SinkProtocol(asyncio.Protocol):
    """One connection: counted, then handed to HTTP/2 or HTTP/1.1 as ALPN chose."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self.h2: H2Answers | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast, not a check
        self.transport = cast(asyncio.Transport, transport)
        counts = self.sink.counts
        counts["connections"] += 1
        tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if tls is None:
            counts["http/1.1"] += 1
            return
        counts["tls handshakes"] += 1
        if tls.session_reused:
            counts["tls sessions resumed"] += 1
        protocol = tls.selected_alpn_protocol() or "http/1.1"
        counts[protocol] += 1
        if protocol == "h2":
            self.h2 = H2Answers(self.transport, self.sink)

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            self.h2.data_received(data)
            return
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.sink.request()
            self.sink.later(self._answer)

    def _answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(ANSWER)


class H2Answers:
    """HTTP/2 on one connection, through the `h2` library: every stream answered 201."""

    def __init__(self, transport: asyncio.Transport, sink: Sink):
        import h2.config
        import h2.connection
        import h2.settings

        self.transport = transport
        self.sink = sink
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: H2_STREAMS},
        )
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        import h2.events
        import h2.exceptions

        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.conn.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.sink.request()
                self.sink.later(self._answer, event.stream_id)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
        self._flush()

    def _answer(self, stream_id: int) -> None:
        import h2.exceptions

        try:
            self.conn.send_headers(
                stream_id, [(b":status", b"201"), (b"content-length", b"0")], end_stream=True
            )
        except h2.exceptions.H2Error:
            return  # the client reset the stream or went away
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


async def main(args: argparse.Namespace) -> None:
    sink = Sink(args.latency / 1000, args.first, args.stats)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, sink.reset)
    loop.add_signal_handler(signal.SIGUSR2, sink.write_stats)
    tls = server_context(args.cert, args.key) if args.cert else None
    server = await loop.create_server(
        lambda: SinkProtocol(sink), "127.0.0.1", args.port, ssl=tls, backlog=4096
    )
    async with server:
        await server.serve_forever()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pushdesk.bench.sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(arguments()))
