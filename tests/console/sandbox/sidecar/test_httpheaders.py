"""The sidecar's header parser (httpheaders.py) must read every header block as http.client's does.

It replaces http.client.parse_headers in the sidecar process for speed; these compare both on the
same bytes: plain lines take the fast path, anything unusual the stdlib's own parser.
"""

from __future__ import annotations

import http.client
import io

import pytest

from console.sandbox.sidecar import httpheaders
from console.sandbox.sidecar.loopback import LoopbackHTTP
from tests.utils.stub_apps import start_app

BLOCKS = [
    b"Host: x\r\nContent-Type: application/json\r\nX-Dup:  b \r\nx-dup: c\r\n\r\n",  # repeats, blanks kept
    b"A:\r\nB:\t v\t\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
    b"Folded: a\r\n b\r\nNext: c\r\n\r\n",  # obsolete line folding: the stdlib's parser
    b"Bad Name: x\r\nOther: y\r\n\r\n",  # not a header line: the stdlib's parser makes it the body
    b"NoColon\r\nA: b\r\n\r\n",
    b"A: caf\xe9\r\n\r\n",  # latin-1, as http.client decodes it
    b"Only: lf\nSecond: x\n\n",
    b"\r\n",
    b"Unterminated: x\r\n",  # the stream ended before the blank line
]


@pytest.mark.parametrize("block", BLOCKS)
def test_same_headers_as_the_stdlib(block: bytes) -> None:
    ours = httpheaders.parse_headers(io.BytesIO(block))
    theirs = httpheaders._stdlib_parse_headers(io.BytesIO(block))
    assert ours.items() == theirs.items()
    assert ours.get_payload() == theirs.get_payload()
    assert type(ours) is type(theirs)


def test_limits_as_the_stdlib() -> None:
    with pytest.raises(http.client.LineTooLong):
        httpheaders.parse_headers(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        httpheaders.parse_headers(io.BytesIO(b"A: b\r\n" * 101 + b"\r\n"))


def test_installed_parser_serves_a_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed, both ends of a real HTTP exchange (http.server in, http.client out) go through it."""
    monkeypatch.setattr(http.client, "parse_headers", http.client.parse_headers)  # undone after the test
    calls: list[int] = []

    def counting(fp: io.BufferedIOBase, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage
                 ) -> http.client.HTTPMessage:
        calls.append(1)
        return httpheaders.parse_headers(fp, _class)  # type: ignore[arg-type]

    httpheaders.install()
    assert http.client.parse_headers is httpheaders.parse_headers
    monkeypatch.setattr(http.client, "parse_headers", counting)

    app = start_app({"/x": lambda req: (200, f"{req.headers['x-caller']}|{req.header_lines}".encode(),
                                         {"X-Answer": "yes"})})
    client = LoopbackHTTP(timeout_s=10)
    try:
        answer = client.request(app.port, "POST", "/x", headers=[("X-Caller", "worker"), ("X-Dup", "1"),
                                                                  ("X-Dup", "2")])
    finally:
        client.close()
        app.stop()
    assert answer.status_code == 200
    assert answer.content.startswith(b"worker|")
    assert b"('x-dup', '1'), ('x-dup', '2')" in answer.content  # repeated headers kept, in order
    assert answer.header("x-answer") == "yes"
    assert len(calls) == 2  # the request's headers and the answer's
