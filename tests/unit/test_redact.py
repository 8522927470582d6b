"""Redaction of secrets in URLs (pulsarflow.redaction): every form a Redis or Pulsar URL takes."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsarflow.redaction import redact
from pulsarflow.storage.redis import redact as redis_redact  # type: ignore[attr-defined]  # imported there, not re-exported


@pytest.mark.parametrize(("text", "expected"), [
    ("redis://app:s3cret@redis:6379/0", "redis://app:***@redis:6379/0"),
    ("redis://:s3cret@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
    ("rediss://app:p@ss@w@rd@redis.example:6380/2", "rediss://app:***@redis.example:6380/2"),
    ("redis://app:p%40ss@redis/0", "redis://app:***@redis/0"),
    ("redis://redis:6379/0?password=s3cret&db=1", "redis://redis:6379/0?password=***&db=1"),
    ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
    ("rediss://u:a/b?c@h:1/0?ssl_ca_certs=/ca.pem", "rediss://u:***@h:1/0?ssl_ca_certs=/ca.pem"),
    ("redis://app@redis:6379/0", "redis://app@redis:6379/0"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
    ("cannot reach 'redis://:pw@a:1/0' nor redis://u:pw2@b/1.", "cannot reach 'redis://:***@a:1/0' nor redis://u:***@b/1."),
    ("https://admin:tok@pulsar:8443/admin/v2?token=abc", "https://admin:***@pulsar:8443/admin/v2?token=***"),
])
def test_every_url_form(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redis_redact(text) == expected  # the name the Redis modules import is the same helper


# Anything but whitespace and quotes (they end a URL in running text).
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&()*+,-./:;=?@[]^_`{|}~", min_size=1,
                 max_size=30)
USER = st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=12)
HOST = st.from_regex(r"[a-z][a-z0-9.-]{0,20}(:[0-9]{1,5})?", fullmatch=True)
PATH = st.from_regex(r"(/[0-9]{1,2})?", fullmatch=True)


@given(st.sampled_from(["redis", "rediss", "unix", "pulsar+ssl", "https"]), USER, SECRET, HOST, PATH)
def test_the_password_never_survives(scheme: str, user: str, password: str, host: str, path: str) -> None:
    url = f"{scheme}://{user}:{password}@{host}{path}"
    assert redact(url) == f"{scheme}://{user}:***@{host}{path}"
    assert redact(f"failed: {url} (retrying)") == f"failed: {scheme}://{user}:***@{host}{path} (retrying)"


@given(HOST, SECRET.filter(lambda s: not any(c in s for c in "&;#")))
def test_a_password_query_value_never_survives(host: str, password: str) -> None:
    redacted = redact(f"redis://{host}/0?db=1&password={password}")
    # Either the value is masked, or (an @ in it looked like a userinfo's end) all before it is.
    assert re.search(r"password=(?!\*\*\*)", redacted) is None and redacted.startswith("redis://")
    if "@" not in password:
        assert redacted == f"redis://{host}/0?db=1&password=***"


@given(st.text(max_size=60))
def test_text_without_a_url_is_left_alone(text: str) -> None:
    if "://" not in text:
        assert redact(text) == text
