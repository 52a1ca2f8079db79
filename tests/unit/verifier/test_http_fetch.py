"""The verifier's HTTP fetch: a failed or cut-off answer is a fetch failure.

An observer must never judge a tile or an entry bundle from an answer the
network cut short: that is no evidence about the log, only that it could not
be read (exit 3, retried where the command retries). Each way an answer can go
wrong is played by a real misbehaving server on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from tests.api.flaky_http import FlakyServer
from verifier.tile_client import FetchError, http_fetch

TILE = b"\x01" * 64  # what a whole answer holds here


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [
        ("truncate", "cut off"),
        ("drop", "RemoteDisconnected"),
        ("reset", "cannot reach"),
        ("garbage", "BadStatusLine"),
        ("truncated-503", "HTTP 503"),
    ],
)
def test_an_answer_that_went_wrong_is_a_fetch_failure(behaviour, says):
    server = FlakyServer({"/log/tile/0/000": [behaviour]}, answer=TILE)
    try:
        fetch = http_fetch(server.url + "/log", timeout=5)
        with pytest.raises(FetchError, match=says):
            fetch("tile/0/000")
        assert fetch("tile/0/000") == TILE  # the next, whole answer is read
    finally:
        server.close()
