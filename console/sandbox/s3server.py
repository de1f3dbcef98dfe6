"""The local S3 durable mode's broker stores into: the S3 REST subset tansu's object_store client uses.

Run as ``python -m console.sandbox.s3server --data DIR --port N --bucket tansu`` (the supervisor does).
It serves one bucket, path-style, on loopback, over the S3 wire contract as the AWS docs and the
`object_store` crate (0.13, what tansu 0.6.0 links) speak it:

- PutObject, with `If-None-Match: *` (create only) and `If-Match: <etag>` (replace only that version):
  412 PreconditionFailed when the condition fails, 404 NoSuchKey for If-Match on no object;
- GetObject / HeadObject, with `If-None-Match` (304 Not Modified) and `If-Match` (412);
- DeleteObject, DeleteObjects (`POST ?delete`, the XML body, Content-MD5 required as S3 requires it);
- ListObjectsV2 with prefix, delimiter, start-after, max-keys, continuation-token, encoding-type=url;
- HeadBucket, CreateBucket (of this bucket), ListBuckets, so a stock client (boto3) can use it.

Anything else (ranges, versions, multipart, copies, ACLs, tagging, If-Modified-Since) answers 501
NotImplemented, as S3 does for a header it does not implement: a new use shows at once rather than
being half-served. Requests must be SigV4-signed (`AWS4-HMAC-SHA256`) with the sandbox's access key,
and a signed payload hash (`x-amz-content-sha256`) must match the body (400 XAmzContentSHA256Mismatch).

Storage is `console.sandbox.s3bucket`: a SQLite file under the sandbox, listed from memory.
Every 10 s with traffic, one JSON log line counts the requests by operation and outcome: the request
mix the broker generates, idle or under load.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import logging
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from console.sandbox import jsonlog
from console.sandbox.s3bucket import (
    MAX_KEYS,
    Bucket,
    BucketError,
    ObjectMeta,
    etag_matches,
    iso_time,
    no_such_key,
    precondition_failed,
)

log = logging.getLogger("console.sandbox.s3server")

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
STATS_EVERY_S = 10.0
MAX_BODY_BYTES = 64 << 20
# Request parameters and headers of operations this server does not implement (see the module docstring).
UNSUPPORTED_PARAMS = frozenset({"uploads", "uploadId", "partNumber", "versionId", "versions", "tagging", "acl",
                                "policy", "lifecycle", "cors", "location", "attributes", "restore", "select"})
UNSUPPORTED_HEADERS = ("range", "if-modified-since", "if-unmodified-since", "x-amz-copy-source")
SIGNED = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Response:
    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def xml_response(body: str, status: int = 200) -> Response:
    return Response(status, (XML_HEAD + body).encode(), {"content-type": "application/xml"})


def error_response(error: BucketError, resource: str, request_id: str) -> Response:
    return xml_response(f"<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
                        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>",
                        error.status)


def object_headers(meta: ObjectMeta) -> dict[str, str]:
    return {"etag": meta.etag, "last-modified": formatdate(meta.modified, usegmt=True),
            "content-type": meta.content_type, "accept-ranges": "bytes"}


def operation_name(method: str, path: str, query: str) -> str:
    """The S3 API operation a request is, for the request counts (whether or not it succeeds)."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets"
    if key:
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
            method, method + "Object")
    if method == "GET" and "list-type=2" in query:
        return "ListObjectsV2"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(method, method + "Bucket")


class S3App:
    """The ASGI application around one `Bucket`."""

    def __init__(self, bucket: Bucket, access_key: str) -> None:
        self.bucket = bucket
        self.access_key = access_key
        self.stats: Counter[tuple[str, int]] = Counter()
        self.took_ms: list[float] = []
        self._stats_since = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex[:16].upper()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                break
        started = time.perf_counter()
        query = scope["query_string"].decode()
        operation = operation_name(scope["method"], scope["path"], query)
        try:
            response = self.handle(scope["method"], scope["path"], query, headers, body)
        except BucketError as exc:
            response = error_response(exc, scope["path"], request_id)
        self.count(operation, response.status, (time.perf_counter() - started) * 1000)
        out = {"x-amz-request-id": request_id, "server": "todo-sandbox-s3", **response.headers}
        head_only = scope["method"] == "HEAD"
        out.setdefault("content-length", str(len(response.body)))
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode(), v.encode()) for k, v in out.items()]})
        await send({"type": "http.response.body", "body": b"" if head_only or response.status == 304
                    else response.body})

    def count(self, operation: str, status: int, took_ms: float) -> None:
        """Count a request; every `STATS_EVERY_S` with traffic, log the mix and the time spent handling."""
        self.stats[(operation, status)] += 1
        self.took_ms.append(took_ms)
        now = time.monotonic()
        if now - self._stats_since >= STATS_EVERY_S:
            window = now - self._stats_since
            took = sorted(self.took_ms)
            log.info("requests", extra={
                "window_s": round(window, 1), "total": len(took), "per_s": round(len(took) / window, 1),
                "objects": len(self.bucket), "handling_ms": {
                    "p50": round(took[len(took) // 2], 2), "p99": round(took[int(len(took) * 0.99)], 2),
                    "busy_share": round(sum(took) / 1000 / window, 3)},
                "by_operation": {f"{op} {status}": n for (op, status), n in self.stats.most_common()}})
            self.stats.clear()
            self.took_ms.clear()
            self._stats_since = now

    # --- routing -------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Response:
        self.check_signature(headers, body)
        params = dict(parse_qsl(query, keep_blank_values=True))
        unsupported = sorted(UNSUPPORTED_PARAMS & params.keys()) + [h for h in UNSUPPORTED_HEADERS if h in headers]
        if unsupported:
            raise BucketError("NotImplemented", 501, f"this local S3 does not implement {', '.join(unsupported)}")
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket:
            if method == "GET":
                return self.list_buckets()
            raise BucketError("MethodNotAllowed", 405, f"{method} / is not allowed")
        if bucket != self.bucket.name:
            raise BucketError("NoSuchBucket", 404, f"The specified bucket does not exist: {bucket}")
        if not key:
            return self.bucket_request(method, params, headers, body)
        return self.object_request(method, key, headers, body)

    def bucket_request(self, method: str, params: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
        if method == "HEAD":
            return Response(200)
        if method == "PUT":  # us-east-1 answers 200 to the owner re-creating its bucket
            return Response(200, headers={"location": f"/{self.bucket.name}"})
        if method == "GET" and params.get("list-type") == "2":
            return self.list_objects(params)
        if method == "POST" and "delete" in params:
            return self.delete_objects(headers, body)
        raise BucketError("NotImplemented", 501, f"this local S3 does not implement {method} on a bucket "
                                                 f"with {sorted(params) or 'no parameters'}")

    def object_request(self, method: str, key: str, headers: dict[str, str], body: bytes) -> Response:
        if method in ("GET", "HEAD"):
            return self.get_object(key, headers, with_body=method == "GET")
        if method == "PUT":
            return self.put_object(key, headers, body)
        if method == "DELETE":
            self.bucket.delete(key)
            return Response(204)
        raise BucketError("MethodNotAllowed", 405, f"{method} is not allowed on an object")

    # --- operations ----------------------------------------------------------------------------------

    def check_signature(self, headers: dict[str, str], body: bytes) -> None:
        """SigV4 with the sandbox's access key, and the signed payload hash matching the body."""
        match = SIGNED.match(headers.get("authorization", ""))
        if match is None:
            raise BucketError("AccessDenied", 403, "requests must be signed with AWS Signature Version 4")
        if match.group(1) != self.access_key:
            raise BucketError("InvalidAccessKeyId", 403,
                              "The AWS Access Key Id you provided does not exist in our records")
        declared = headers.get("x-amz-content-sha256", "")
        if re.fullmatch(r"[0-9a-f]{64}", declared) and hashlib.sha256(body).hexdigest() != declared:
            raise BucketError("XAmzContentSHA256Mismatch", 400,
                              "The provided 'x-amz-content-sha256' header does not match what was computed")
        if declared.startswith("STREAMING-"):
            raise BucketError("NotImplemented", 501, "this local S3 does not implement aws-chunked uploads")

    def list_buckets(self) -> Response:
        return xml_response(
            f'<ListAllMyBucketsResult xmlns="{XMLNS}"><Owner><ID>sandbox</ID><DisplayName>sandbox</DisplayName>'
            f"</Owner><Buckets><Bucket><Name>{self.bucket.name}</Name>"
            f"<CreationDate>{iso_time(os.path.getctime(self.bucket.path))}</CreationDate></Bucket></Buckets>"
            "</ListAllMyBucketsResult>")

    def get_object(self, key: str, headers: dict[str, str], *, with_body: bool) -> Response:
        meta = self.bucket.head(key)
        if meta is None:
            raise no_such_key(key)
        if "if-match" in headers and not etag_matches(headers["if-match"], meta.etag):
            raise precondition_failed("If-Match: the object changed")
        if "if-none-match" in headers and etag_matches(headers["if-none-match"], meta.etag):
            return Response(304, headers={"etag": meta.etag,
                                          "last-modified": formatdate(meta.modified, usegmt=True)})
        out = {**object_headers(meta), "content-length": str(meta.size)}
        if not with_body:
            return Response(200, headers=out)
        meta, data = self.bucket.get(key)
        return Response(200, data, out)

    def put_object(self, key: str, headers: dict[str, str], body: bytes) -> Response:
        if len(body) > MAX_BODY_BYTES:
            raise BucketError("EntityTooLarge", 400, f"this local S3 takes objects up to {MAX_BODY_BYTES} bytes")
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None and if_none_match.strip() != "*":
            raise BucketError("NotImplemented", 501, "If-None-Match on PutObject takes only '*'")
        if if_none_match is not None and "if-match" in headers:
            raise BucketError("InvalidRequest", 400, "If-Match and If-None-Match cannot be combined")
        meta = self.bucket.put(key, body, headers.get("content-type") or "binary/octet-stream",
                               if_match=headers.get("if-match"), if_none_match=if_none_match is not None)
        return Response(200, headers={"etag": meta.etag})

    def list_objects(self, params: dict[str, str]) -> Response:
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter") or None
        try:
            max_keys = min(MAX_KEYS, int(params.get("max-keys", MAX_KEYS)))
        except ValueError:
            raise BucketError("InvalidArgument", 400, "max-keys must be an integer") from None
        if max_keys < 0:
            raise BucketError("InvalidArgument", 400, "max-keys must not be negative")
        token = params.get("continuation-token")
        after = params.get("start-after")
        if token is not None:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise BucketError("InvalidArgument", 400, "The continuation token provided is incorrect") from None
        page = self.bucket.list(prefix, after=after, delimiter=delimiter, max_keys=max_keys)
        encode = params.get("encoding-type") == "url"

        def text(value: str) -> str:
            return quote(value, safe="/~-_.") if encode else escape(value)

        parts = [XML_HEAD + f'<ListBucketResult xmlns="{XMLNS}"><Name>{self.bucket.name}</Name><Prefix>{text(prefix)}</Prefix>'
                 f"<KeyCount>{len(page.keys) + len(page.common_prefixes)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
                 f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>"]
        if delimiter:
            parts.append(f"<Delimiter>{text(delimiter)}</Delimiter>")
        if encode:
            parts.append("<EncodingType>url</EncodingType>")
        if token is not None:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if params.get("start-after") is not None:
            parts.append(f"<StartAfter>{text(params['start-after'])}</StartAfter>")
        if page.truncated and page.last is not None:
            next_token = base64.urlsafe_b64encode(page.last.encode()).decode()
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        if encode:
            rows = [self.bucket.meta(key).with_listing(quote(key, safe="/~-_.")).listing for key in page.keys]
        else:
            rows = page.listing
        common = "".join(f"<CommonPrefixes><Prefix>{text(p)}</Prefix></CommonPrefixes>" for p in page.common_prefixes)
        body = b"".join(["".join(parts).encode(), *rows, common.encode(), b"</ListBucketResult>"])
        return Response(200, body, {"content-type": "application/xml"})

    def delete_objects(self, headers: dict[str, str], body: bytes) -> Response:
        if "content-md5" not in headers and not any(h.startswith("x-amz-checksum-") for h in headers):
            raise BucketError("InvalidRequest", 400, "Missing required header for this request: Content-MD5")
        if "content-md5" in headers and base64.b64encode(hashlib.md5(body).digest()).decode() != headers[  # noqa: S324
                "content-md5"]:
            raise BucketError("BadDigest", 400, "The Content-MD5 you specified did not match what we received")
        try:
            root = ElementTree.fromstring(body)  # noqa: S314 (a loopback client's request, no entities expanded)
        except ElementTree.ParseError:
            raise BucketError("MalformedXML", 400, "The XML you provided was not well-formed") from None
        quiet = (root.findtext(f"{{{XMLNS}}}Quiet") or root.findtext("Quiet") or "").lower() == "true"
        keys = [el.text or "" for el in root.iter() if el.tag in (f"{{{XMLNS}}}Key", "Key")]
        if len(keys) > MAX_KEYS:
            raise BucketError("MalformedXML", 400, f"at most {MAX_KEYS} keys per request")
        for key in keys:
            self.bucket.delete(key)
        deleted = "" if quiet else "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        return xml_response(f'<DeleteResult xmlns="{XMLNS}">{deleted}</DeleteResult>')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.sandbox.s3server", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="directory holding <bucket>.sqlite3")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--bucket", default="tansu")
    parser.add_argument("--access-key", default=os.environ.get("S3_ACCESS_KEY", "sandbox"))
    args = parser.parse_args(argv)
    jsonlog.configure(os.environ.get("LOG_LEVEL", "INFO").upper())
    import uvicorn

    started = time.monotonic()
    bucket = Bucket(args.data, args.bucket)
    log.info("local s3 serving", extra={"bucket": args.bucket, "objects": len(bucket), "port": args.port,
                                        "file": str(bucket.path), "load_s": round(time.monotonic() - started, 3)})
    try:
        uvicorn.run(S3App(bucket, args.access_key), host="127.0.0.1", port=args.port, log_level="warning",
                    access_log=False, lifespan="off", http="httptools")
    finally:
        bucket.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
