"""Reading a push service's HTTP/1.1 answers (RFC 9112) from a kept-alive connection.

Why our own: a push request needs the status, a few headers (Retry-After) and at most the first
kilobyte of an error body. aiohttp's client builds a parser, a stream and a response object
per request for that; measured against nginx on loopback, its connector, response handler and
parser cost about 37 µs of CPU a request, and this reader with the transport around it about
20 (README, Performance). It is strict where laxness would be a risk (a status line, CRLF line
ends, one Content-Length, a bounded head), and tested with answers cut at every byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import TransportError

MAX_ERROR_BODY = 1024  # enough of an error answer for its reason; the rest is not read
MAX_HEAD = 16 * 1024  # status line and headers; push services send a few hundred bytes
MAX_HEADERS = 100
STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?\r\n")
# A header line (RFC 9110 5.1, 5.5): a token, a colon, a value without CR or LF; no folding.
# Linear to match (no nested or adjacent quantifiers over the same characters).
_FIELD = rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([^\r\n]*)\r\n"
HEADER_SECTION = re.compile(rb"(?:" + _FIELD + rb")*")
HEADER_FIELD = re.compile(_FIELD)
# The fields that frame the body, found in the lower-cased header lines (validated above).
FRAMING_FIELD = re.compile(
    rb"^(content-length|transfer-encoding|connection):([^\r\n]*)\r\n", re.MULTILINE
)
OWS = b" \t"  # optional whitespace around a field value
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})(?:[ \t]*;[^\r\n]*)?")
NO_BODY_STATUSES = (204, 304)


class ProtocolError(TransportError):
    """The bytes the push service sent are not a well-formed HTTP/1.1 answer."""


class Answer:
    """A push service's answer: its status, its header fields, the start of its body."""

    __slots__ = ("_fields", "_headers", "body", "queued", "status")

    def __init__(self, status: int, fields: list[tuple[bytes, bytes]], body: bytes = b""):
        self.status = status
        self.body = body  # at most MAX_ERROR_BODY bytes
        self.queued = 0.0  # seconds the request waited for a connection (set by the transport)
        self._fields = fields
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive; built when first read (a delivered message's never are)."""
        if self._headers is None:
            pairs = [(n.decode("ascii"), v.strip(OWS).decode("latin-1")) for n, v in self._fields]
            self._headers = CIMultiDictProxy(CIMultiDict(pairs))
        return self._headers

    def __repr__(self) -> str:
        return f"Answer({self.status}, {len(self._fields)} header fields, {self.body[:40]!r})"


# Where the reader is in the answer.
_HEAD, _LENGTH, _CHUNK_LINE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class AnswerReader:
    """Turns a connection's bytes into answers, one request at a time.

    `feed` returns the answer once its status, headers and body (or its first MAX_ERROR_BODY
    bytes) are in; `reusable` then says whether the connection may carry another request: the
    answer was read to its end, nothing followed it, and neither side asked to close.
    """

    __slots__ = (
        "_body",
        "_buffer",
        "_fields",
        "_keep_alive",
        "_remaining",
        "_scanned",
        "_state",
        "_status",
        "_trailer_bytes",
        "_trailers",
        "reusable",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Ready for the next request's answer."""
        self._buffer = b""
        self._state = _HEAD
        self._status = 0
        self._fields: list[tuple[bytes, bytes]] = []
        self._keep_alive = True
        self._remaining = 0
        self._body = b""
        self._trailers = 0
        self._trailer_bytes = 0
        self._scanned = 0  # how far the head was searched for its end: no byte twice
        self.reusable = False

    def feed(self, data: bytes) -> Answer | None:
        self._buffer = self._buffer + data if self._buffer else data  # bounded: see below
        while True:
            state = self._state
            if state == _HEAD:
                if not self._read_head():
                    return None
            elif state == _LENGTH:
                return self._read_length()
            elif state == _UNTIL_CLOSE:
                self._keep(self._buffer)
                self._buffer = b""
                return self._partial()
            elif self._read_chunked():  # the last chunk and the trailers are in
                return self._answer(complete=True)
            else:
                return self._partial()

    def feed_eof(self) -> Answer | None:
        """The peer closed: an answer read until the close ends here; any other is cut short."""
        if self._state == _UNTIL_CLOSE and self._status:
            return self._answer(complete=False)
        return None

    # -- the head --------------------------------------------------------------------------
    def _read_head(self) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n", self._scanned)
        if end < 0:
            self._scanned = max(0, len(buffer) - 3)
            if len(buffer) > MAX_HEAD:
                raise ProtocolError("answer head too long")
            if not b"HTTP/1.".startswith(buffer[:7]):
                raise ProtocolError("not an HTTP/1.1 answer")
            return False
        if end > MAX_HEAD:
            raise ProtocolError("answer head too long")
        status_line = STATUS_LINE.match(buffer, 0, end + 2)
        if status_line is None:
            raise ProtocolError("not an HTTP/1.1 answer")
        section = buffer[status_line.end() : end + 2]  # the header lines, each ending in CRLF
        self._buffer = buffer[end + 4 :]
        self._scanned = 0
        status = int(status_line.group(2))
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("unexpected protocol switch")
            return True  # an interim answer: the final one follows
        if not HEADER_SECTION.fullmatch(section):
            raise ProtocolError("invalid header field")
        fields = HEADER_FIELD.findall(section)
        if len(fields) > MAX_HEADERS:
            raise ProtocolError("too many header fields")
        self._status = status
        self._fields = fields
        self._keep_alive = status_line.group(1) == b"1"
        self._frame_body(status, section)
        return True

    def _frame_body(self, status: int, section: bytes) -> None:
        """RFC 9112, 6.3: how long the body is (and whether the connection stays open)."""
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        for name, value in FRAMING_FIELD.findall(section.lower()):
            if name == b"content-length":
                lengths.add(value.strip(OWS))
            elif name == b"transfer-encoding":
                codings += _tokens(value)
            elif b"close" in value and b"close" in _tokens(value):
                self._keep_alive = False
        if status in NO_BODY_STATUSES:
            self._state, self._remaining = _LENGTH, 0
        elif codings:
            if lengths:  # both framings: read as chunked, then never trust this connection
                self._keep_alive = False
            self._state = _CHUNK_LINE if codings[-1] == b"chunked" else _UNTIL_CLOSE
        elif lengths:
            value = lengths.pop()
            if lengths or not value.isdigit() or len(value) > 15:
                raise ProtocolError("invalid Content-Length")
            self._state, self._remaining = _LENGTH, int(value)
        else:
            self._state = _UNTIL_CLOSE

    # -- the body --------------------------------------------------------------------------
    def _read_length(self) -> Answer | None:
        buffer, remaining = self._buffer, self._remaining
        if len(buffer) >= remaining:
            self._keep(buffer[:remaining])
            self._buffer = buffer[remaining:]
            return self._answer(complete=True)
        self._keep(buffer)
        self._remaining = remaining - len(buffer)
        self._buffer = b""
        return self._partial()

    def _read_chunked(self) -> bool:
        """Reads chunks; True when the last chunk and the trailers are in.

        Linear in the bytes received: it walks the buffer with an offset and cuts it once at
        the end (cutting it per line was quadratic: one answer of many small chunks or trailer
        lines pinned a worker's CPU until its timeout). Trailers are bounded like the head.
        """
        buffer, pos = self._buffer, 0
        try:
            while True:
                if self._state == _CHUNK_DATA:
                    available = len(buffer) - pos
                    if available < self._remaining + 2:
                        taken = min(available, self._remaining)
                        self._keep(buffer[pos : pos + taken])
                        self._remaining -= taken
                        pos += taken
                        return False
                    end = pos + self._remaining
                    if buffer[end : end + 2] != b"\r\n":
                        raise ProtocolError("chunk not followed by CRLF")
                    self._keep(buffer[pos:end])
                    pos = end + 2
                    self._state = _CHUNK_LINE
                    continue
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if len(buffer) - pos > MAX_HEAD:
                        raise ProtocolError("chunk line too long")
                    return False
                line, pos = buffer[pos:end], end + 2
                if self._state == _TRAILERS:
                    if not line:
                        self._state = _HEAD
                        return True
                    self._trailer_bytes += len(line) + 2
                    self._trailers += 1
                    if self._trailers > MAX_HEADERS or self._trailer_bytes > MAX_HEAD:
                        raise ProtocolError("too many trailer fields")
                    continue  # a trailer field: not needed
                size = CHUNK_SIZE.fullmatch(line)
                if size is None:
                    raise ProtocolError("invalid chunk size")
                self._remaining = int(size.group(1), 16)
                self._state = _TRAILERS if self._remaining == 0 else _CHUNK_DATA
        finally:
            self._buffer = buffer[pos:]

    def _keep(self, data: bytes) -> None:
        room = MAX_ERROR_BODY - len(self._body)
        if room > 0 and data:
            self._body += data[:room]

    def _partial(self) -> Answer | None:
        """The answer before its end, once as much of its body as is kept is in."""
        return self._answer(complete=False) if len(self._body) >= MAX_ERROR_BODY else None

    def _answer(self, *, complete: bool) -> Answer:
        answer = Answer(self._status, self._fields, self._body)
        self.reusable = complete and self._keep_alive and not self._buffer
        return answer


def _tokens(value: bytes) -> list[bytes]:
    """A list-valued field's comma-separated tokens (of a lower-cased value)."""
    return [token.strip(OWS) for token in value.split(b",") if token.strip(OWS)]
