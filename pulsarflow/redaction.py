"""Secrets out of text bound for logs and error messages: every URL's password, and secret query values.

    redact("redis://app:s3cr@t@redis:6379/0")        -> "redis://app:***@redis:6379/0"
    redact("rediss://:pw@host/0?password=x&db=1")     -> "rediss://:***@host/0?password=***&db=1"
    redact("failed on unix:///run/r.sock?password=x") -> "failed on unix:///run/r.sock?password=***"

The password of a URL is everything between the first ``:`` after ``//`` and the *last*
``@`` of the URL, so an ``@`` inside a password (which belongs percent-encoded, and often
is not) is covered. A URL ends at whitespace or a quote. When in doubt it hides more:
a query value holding an ``@`` may be taken for a password. A username alone is kept.
"""

from __future__ import annotations

import re

MASK = "***"
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>]*)")
_SECRET_PARAM = re.compile(r"(?P<key>[?&;](?:password|passwd|pass|pwd|secret|token|auth)=)[^&;#\s'\"<>]*",
                           re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every URL in it, and secret query values, replaced by ``***``."""
    return _URL.sub(_redact_url, str(text))


def _redact_url(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}{rest[at:]}"
    return scheme + _SECRET_PARAM.sub(lambda m: m.group("key") + MASK, rest)
