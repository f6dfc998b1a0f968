"""Reading push services' answers: every answer cut at every byte reads the same, framing follows
RFC 9112, and what is not HTTP/1.1 is refused rather than guessed at."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushdesk.webpush.http1 import MAX_ERROR_BODY, MAX_HEAD, AnswerReader, ProtocolError

NGINX_CREATED = (
    b"HTTP/1.1 201 Created\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 17:00:00 GMT\r\n"
    b"Content-Length: 0\r\nConnection: keep-alive\r\n\r\n"
)
GONE_BODY = b'{"code": 410, "errno": 106, "error": "Gone", "message": "No such subscription"}'
MOZILLA_GONE = (
    b"HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(GONE_BODY), GONE_BODY)
)
THROTTLED_CHUNKED = (
    b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"7;ext=1\r\nslow do\r\n5\r\nwn pl\r\n4\r\nease\r\n0\r\nX-Trailer: yes\r\n\r\n"
)
CONTINUE_THEN_CREATED = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n" + (
    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
)
# (raw answer, status, body, header checked, connection reusable afterwards)
ANSWERS = [
    (NGINX_CREATED, 201, b"", ("Server", "nginx/1.22.1"), True),
    (MOZILLA_GONE, 410, GONE_BODY, ("content-type", "application/json"), True),
    (THROTTLED_CHUNKED, 429, b"slow down please", ("Retry-After", "30"), True),
    (CONTINUE_THEN_CREATED, 201, b"ok", ("Content-Length", "2"), True),
    (b"HTTP/1.1 204 No Content\r\nX-A:b\r\n\r\n", 204, b"", ("x-a", "b"), True),
    (
        b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n",
        201,
        b"",
        ("Content-Length", "0"),
        False,
    ),
    (
        b"HTTP/1.1 201 Created\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n",
        201,
        b"",
        ("Connection", "Keep-Alive, close"),
        False,
    ),
    (b"HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n", 201, b"", ("Content-Length", "0"), True),
]


def read_in_pieces(raw: bytes, cuts: list[int]) -> tuple[object, AnswerReader]:
    reader = AnswerReader()
    answer = None
    start = 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        piece = raw[start:cut]
        start = cut
        if not piece:
            continue
        assert answer is None, "an answer came before its last byte"
        answer = reader.feed(piece)
    return answer, reader


@pytest.mark.parametrize("raw, status, body, header, reusable", ANSWERS)
def test_every_answer_reads_the_same_cut_at_every_byte(raw, status, body, header, reusable):
    for cut in range(len(raw) + 1):
        answer, reader = read_in_pieces(raw, [cut])
        assert answer is not None, f"no answer when cut at {cut}"
        assert (answer.status, answer.body) == (status, body)
        assert answer.headers[header[0]] == header[1]
        assert reader.reusable is reusable


@given(st.sampled_from(ANSWERS), st.lists(st.integers(0, 400), max_size=12))
def test_any_cuts_read_the_same(case, cuts):
    raw, status, body, _, reusable = case
    answer, reader = read_in_pieces(raw, cuts)
    assert answer is not None and (answer.status, answer.body) == (status, body)
    assert reader.reusable is reusable


def test_one_reader_reads_answer_after_answer_on_a_kept_alive_connection():
    reader = AnswerReader()
    for raw, status, body, _, _ in ANSWERS[:4]:
        reader.reset()
        answer = reader.feed(raw)
        assert answer is not None and (answer.status, answer.body) == (status, body)
        assert reader.reusable


def test_a_long_error_body_is_cut_and_the_connection_kept_only_when_all_of_it_came():
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5000\r\n\r\n"
    whole = AnswerReader()
    answer = whole.feed(head + b"e" * 5000)
    assert answer is not None and answer.body == b"e" * MAX_ERROR_BODY and whole.reusable
    partial = AnswerReader()
    assert partial.feed(head + b"e" * 1000) is None
    answer = partial.feed(b"e" * 1000)
    assert answer is not None and answer.body == b"e" * MAX_ERROR_BODY
    assert not partial.reusable  # 3,000 bytes of this answer are still to come


def test_a_long_chunked_body_is_cut_too():
    chunk = b"400\r\n" + b"c" * 1024 + b"\r\n"
    reader = AnswerReader()
    answer = reader.feed(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2)
    assert answer is not None and answer.body == b"c" * MAX_ERROR_BODY
    assert not reader.reusable  # the last chunk has not come


def test_a_body_without_length_lasts_until_the_close():
    reader = AnswerReader()
    assert reader.feed(b"HTTP/1.1 503 Busy\r\nRetry-After: 5\r\n\r\nback ") is None
    assert reader.feed(b"soon") is None
    answer = reader.feed_eof()
    assert answer is not None and (answer.status, answer.body) == (503, b"back soon")
    assert not reader.reusable


def test_a_cut_answer_is_not_an_answer():
    reader = AnswerReader()
    assert reader.feed(MOZILLA_GONE[:-10]) is None
    assert reader.feed_eof() is None


def test_bytes_after_the_answer_make_the_connection_unusable():
    reader = AnswerReader()
    answer = reader.feed(NGINX_CREATED + b"HTTP/1.1 201 Created\r\n")
    assert answer is not None and answer.status == 201 and not reader.reusable


def test_both_framings_read_as_chunked_and_the_connection_is_dropped():
    reader = AnswerReader()
    answer = reader.feed(
        b"HTTP/1.1 400 Bad\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nno\r\n0\r\n\r\n"
    )
    assert answer is not None and answer.body == b"no" and not reader.reusable


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/2 201\r\n\r\n",
        b"HTTP/1.1 20 Created\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 1e3\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nX-A: 1\r\n folded\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nno colon\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
        b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"p" * MAX_HEAD + b"\r\n\r\n",
        b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"p" * MAX_HEAD,
        b"HTTP/1.1 201 Created\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
    ],
)
def test_what_is_not_http_1_1_is_refused(raw):
    with pytest.raises(ProtocolError):
        AnswerReader().feed(raw)


def test_the_same_content_length_twice_is_accepted():
    reader = AnswerReader()
    answer = reader.feed(b"HTTP/1.1 410 Gone\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nno")
    assert answer is not None and answer.body == b"no" and reader.reusable


# -- against h11, an independent HTTP/1.1 implementation ----------------------------------------
@st.composite
def answers(draw) -> tuple[bytes, str]:
    """A push service's answer as bytes, and how its body is framed."""
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    status = draw(st.sampled_from([200, 201, 202, 204, 400, 404, 410, 413, 429, 500, 503]))
    framing = "length" if status == 204 else draw(st.sampled_from(["length", "chunked", "close"]))
    if version == "1.0" and framing == "chunked":
        framing = "length"
    body = b"" if status == 204 else draw(st.binary(max_size=3000))
    fields = draw(
        st.lists(
            st.sampled_from(
                [
                    ("Retry-After", "30"),
                    ("content-type", "application/json"),
                    ("X-Request-Id", " a b\t"),
                    ("SERVER", "push"),
                ]
            ),
            max_size=4,
        )
    )
    if draw(st.booleans()):
        fields.append(("Connection", draw(st.sampled_from(["close", "keep-alive", "Close"]))))
    interim = draw(st.lists(st.sampled_from([100, 103]), max_size=2)) if version == "1.1" else []
    head = b"".join(b"HTTP/1.1 %d Continue\r\n\r\n" % code for code in interim)
    head += f"HTTP/{version} {status} Whatever\r\n".encode()
    if framing == "length":
        fields.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", "chunked"))
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=5))))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    head += b"".join(f"{name}: {value}\r\n".encode() for name, value in fields) + b"\r\n"
    return head + body, framing


def read_with_h11(raw: bytes, framing: str) -> tuple[int, bytes, str | None, bool]:
    import h11

    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", "push.example"), ("Content-Length", "0")]
    conn.send(h11.Request(method="POST", target="/", headers=headers))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    if framing == "close":
        conn.receive_data(b"")
    status, body, retry_after = 0, b"", None
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status = event.status_code
            retry_after = dict(event.headers).get(b"retry-after", b"").decode() or None
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return status, body, retry_after, conn.their_state is h11.DONE
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            raise AssertionError(f"h11 found no whole answer: {event}")


@settings(max_examples=300, deadline=None)
@given(answers(), st.lists(st.integers(0, 4000), max_size=8))
def test_answers_read_as_h11_reads_them(answer, cuts):
    raw, framing = answer
    status, body, retry_after, keep_alive = read_with_h11(raw, framing)
    reader = AnswerReader()
    ours, fed = None, 0
    for cut in [*sorted(c for c in set(cuts) if 0 < c < len(raw)), len(raw)]:
        ours = reader.feed(raw[fed:cut])
        fed = cut
        if ours is not None:
            break
    if ours is None and framing == "close":
        ours = reader.feed_eof()
    assert ours is not None
    assert ours.status == status and ours.body == body[:MAX_ERROR_BODY]
    assert ours.headers.get("Retry-After") == retry_after
    if framing == "close" or fed < len(raw):  # read to the close, or answered before its end
        assert not reader.reusable
    else:
        assert reader.reusable is keep_alive


def test_trailers_are_bounded_in_count_and_bytes():
    """A hostile answer of endless trailer lines is refused, not read for the whole timeout."""
    head = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    with pytest.raises(ProtocolError, match="trailer"):
        AnswerReader().feed(head + b"X-T: 1\r\n" * 101 + b"\r\n")
    with pytest.raises(ProtocolError, match="trailer"):
        AnswerReader().feed(head + (b"X-T: " + b"a" * 4000 + b"\r\n") * 5 + b"\r\n")
    answer = AnswerReader().feed(head + b"X-T: 1\r\n" * 100 + b"\r\n")
    assert answer is not None and answer.status == 201


def test_reading_many_small_chunks_is_linear():
    """Four megabytes of one-byte chunks in one read: cutting the buffer per line made this
    quadratic (terabytes copied); reading with an offset takes a fraction of a second. The
    alarm is a guard 30 times wider than a linear read on a slow machine, not a speed test."""
    import signal

    raw = b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\na\r\n" * 700_000
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("quadratic read"))
    signal.alarm(30)
    try:
        reader = AnswerReader()
        answer = reader.feed(raw)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert answer is not None and answer.body == b"a" * MAX_ERROR_BODY
    assert not reader.reusable  # not read to its end: the connection is closed


def test_a_head_trickled_byte_by_byte_reads_the_same():
    reader = AnswerReader()
    answers = [reader.feed(bytes([byte])) for byte in MOZILLA_GONE]
    assert next(a for a in answers if a is not None).status == 410
    assert reader.reusable
