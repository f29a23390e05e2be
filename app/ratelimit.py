"""Rate-limit counters in Redis at one round trip a request.

Flask-Limiter's fixed window asks Redis three times per limited request: the hit (a script that
increments the counter and sets its expiry), then, for the ``X-RateLimit-*`` headers, the counter
(``GET``) and its time to live (``TTL``). :class:`OneTripRedisStorage` answers the hit with a script
that returns the new count and the time to live together, and answers the two header reads that follow
for that same key from what the script returned. The limit itself is counted exactly as before (the same
keys, the same atomic increment); only the headers' figures are the ones of this request's own hit.

``create_app`` routes ``redis://`` and ``rediss://`` storage URIs (``RATELIMIT_STORAGE_URI``) here.
"""

from __future__ import annotations

import threading
import time

from limits.storage import RedisStorage

SCHEME_PREFIX = "certdesk+"

# KEYS[1] the counter; ARGV[1] the window in seconds, ARGV[2] the amount. Returns {count, ttl}.
INCR_EXPIRE_TTL = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

# A hit's figures answer the header reads of the same request only: they are dropped after this long.
FRESH_SECONDS = 0.5


class OneTripRedisStorage(RedisStorage):
    """Redis storage for the limiter whose hit also returns what the rate-limit headers need."""

    STORAGE_SCHEME = [SCHEME_PREFIX + "redis", SCHEME_PREFIX + "rediss"]

    def __init__(self, uri: str, **options) -> None:
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)
        self._last = threading.local()

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(INCR_EXPIRE_TTL)

    def _fresh(self, key: str):
        last = getattr(self._last, "hit", None)
        if last is None or last[0] != key or time.monotonic() - last[3] > FRESH_SECONDS:
            return None
        return last

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        key = self.prefixed_key(key)
        self._last.hit = None
        count, ttl = self.lua_incr_expire_ttl([key], [expiry, amount])
        now = time.monotonic()
        self._last.hit = (key, int(count), max(int(ttl), 0) + time.time(), now)
        return int(count)

    def get(self, key: str) -> int:
        last = self._fresh(self.prefixed_key(key))
        return last[1] if last is not None else super().get(key)

    def get_expiry(self, key: str) -> float:
        last = self._fresh(self.prefixed_key(key))
        if last is None:
            return super().get_expiry(key)
        self._last.hit = None  # the window's last figure: the next read asks Redis again
        return last[2]


def storage_uri(uri: str | None) -> str | None:
    """The limiter's storage URI: Redis through :class:`OneTripRedisStorage`, anything else as it is."""
    if uri and uri.startswith(("redis://", "rediss://")):
        return SCHEME_PREFIX + uri
    return uri
