"""A faster `http.client.parse_headers` for the sidecar process: both of its HTTP ends use it.

The sidecar's HTTP API (http.server) parses every request's headers, and its calls to the apps
(http.client, loopback.py) every answer's, through `http.client.parse_headers`, which feeds the
header block to the `email` package's general MIME parser. py-spy put that at a quarter of the
sidecar's CPU for a service invocation (a request and an answer) and 7 % of a delivery. HTTP
headers as apps and the SDK send them are plain `Name: value` lines, which this module stores
directly with `Message.set_raw`, exactly what the email parser stores for such lines
(`compat32`'s header_source_parse: the value without leading blanks and the line end). Anything
else (folded continuation lines, a name the email parser would not take as a header) goes to the
stdlib parser, unchanged, so malformed input gets the stdlib's answer.

`install()` swaps the function in at sidecar start (cli.py); both http.server and http.client
look it up on the module at each call.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import BinaryIO

MAX_LINE = 65536  # http.client's own limits
MAX_HEADERS = 100
_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # what the email parser takes as a header name (no ':' or blanks)
_stdlib_parse_headers = http.client.parse_headers


def parse_headers(fp: BinaryIO, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage
                  ) -> http.client.HTTPMessage:
    """Read a header block from `fp` (up to the blank line) into `_class`, as http.client's does."""
    lines: list[bytes] = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            break
    message = _class()
    for raw in lines[:-1]:
        text = raw.decode("iso-8859-1")
        name, colon, value = text.partition(":")
        if not colon or not _NAME.fullmatch(name):  # a continuation line, or not a header line at all
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    message.set_payload("")  # the email parser's empty body
    return message


def install() -> None:
    """Use `parse_headers` for every HTTP request and answer this process parses."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
