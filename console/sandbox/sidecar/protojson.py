"""A google.protobuf.Value as Go's protojson writes it, which is what daprd posts to an HTTP app as job data.

daprd's HTTP channel (dapr/dapr pkg/channel/http/http_channel.go constructJobRequest) renders a job's
`google.protobuf.Value` data with `Value.MarshalJSON` (protojson). Python's json_format differs where
apps notice: it writes every number as a float (`{"a": 1.0}`), protojson formats numbers as
encoding/json does (`{"a":1}`, `1.5`, `1e-7`, `1e+21`). Object keys come sorted, as protojson
sorts a Struct's map entries; the output is compact (protojson may add a space after a comma in
single-line mode, which no JSON reader sees).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from google.protobuf import struct_pb2


def _number(n: float) -> str:
    """encoding/json's float64 format (google.golang.org/protobuf internal/encoding/json appendFloat)."""
    if math.isnan(n):
        return '"NaN"'
    if math.isinf(n):
        return '"Infinity"' if n > 0 else '"-Infinity"'
    if n != 0 and (abs(n) < 1e-6 or abs(n) >= 1e21):
        text = repr(n)  # shortest round-trip digits, exponent form for these magnitudes
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.zfill(2) if sign == '+' else digits}"
    if n.is_integer():
        return str(int(n))
    return format(Decimal(repr(n)), "f")


def _render(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "string_value":
        return json.dumps(value.string_value, ensure_ascii=False)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "struct_value":
        fields = value.struct_value.fields
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_render(fields[k])}" for k in sorted(fields)) + "}"
    if kind == "list_value":
        return "[" + ",".join(_render(v) for v in value.list_value.values) + "]"
    return "null"


def value_json(value: struct_pb2.Value) -> bytes:
    """The JSON daprd sends for `value`; empty when the Value has no kind set (daprd sends no body)."""
    if value.WhichOneof("kind") is None:
        return b""
    return _render(value).encode()
