"""The `Date` header, formatted once a second rather than once a response.

http.server formats it for every answer through email.utils (a time tuple, a datetime, a
format): about 5 % of a service invocation's CPU in the sidecar (py-spy). The text only changes
once a second.
"""

from __future__ import annotations

import time
from email.utils import formatdate

_cached: tuple[int, str] = (-1, "")


def http_date() -> str:
    """RFC 7231 IMF-fixdate of now, e.g. "Mon, 30 Nov 2026 22:40:01 GMT"."""
    global _cached
    now = int(time.time())
    second, text = _cached
    if second != now:
        text = formatdate(now, usegmt=True)
        _cached = (now, text)  # one tuple, swapped whole: threads see the old or the new pair
    return text
