"""access_token cache shared by every process through the KV store, refreshed by one caller at a time."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

from bot.kv import KeyValueStore

from .errors import WeComUnavailable

# Fetches a fresh token for a secret: returns (access_token, expires_in seconds).
TokenFetcher = Callable[[str], Awaitable[tuple[str, int]]]

# A KV entry without a TTL (set by hand) is read again after this long.
UNBOUNDED_COPY_SECONDS = 300.0


class TokenCache:
    """One cached token per (corp, secret), refreshed single flight.

    Within a process concurrent callers share one refresh task; across processes a KV lock lets one
    of them call gettoken while the others wait and then read what it stored. The KV store stays
    the shared source; each process keeps a copy until the KV entry's expiry, so a WeCom call costs
    no KV round trip for its token. When WeCom rejects the copy, `replace` drops it and refreshes
    through the KV store as before.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        corp_id: str,
        fetch: TokenFetcher,
        *,
        lock_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._kv = kv
        self._corp_id = corp_id
        self._fetch = fetch
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._inflight: dict[tuple[str, str | None], asyncio.Future[str]] = {}
        self._copies: dict[str, tuple[str, float]] = {}  # KV key -> (token, expires at on `clock`)
        self._keys: dict[str, str] = {}  # secret -> KV key, hashed once

    def key(self, secret: str) -> str:
        key = self._keys.get(secret)
        if key is None:
            # Keyed by a fingerprint of the secret, not its name: names that fall back to the same
            # secret share one token, and a rotated secret never reuses the old secret's token.
            fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:16]
            key = self._keys[secret] = f"wecom:token:{self._corp_id}:{fingerprint}"
        return key

    async def get(self, secret: str) -> str:
        key = self.key(secret)
        copy = self._copies.get(key)
        if copy is not None and copy[1] > self._clock():
            return copy[0]
        return await self._single_flight(key, None, lambda: self._load(secret))

    async def replace(self, secret: str, rejected: str) -> str:
        """WeCom rejected `rejected`: get a new token unless another caller already did."""
        key = self.key(secret)
        if self._copies.get(key, ("",))[0] == rejected:
            del self._copies[key]
        return await self._single_flight(key, rejected, lambda: self._refresh_shared(secret, rejected))

    def _keep(self, key: str, token: str, ttl: float | None) -> None:
        # Never past the KV entry's own expiry: that is when the early-expiry margin runs out.
        self._copies[key] = (token, self._clock() + (UNBOUNDED_COPY_SECONDS if ttl is None else ttl))

    async def _single_flight(self, key: str, stale: str | None, start: Callable[[], Awaitable[str]]) -> str:
        # One coroutine per process reads the KV store or queues on its (polled) lock; the rest
        # await its result.
        flight = (key, stale)
        task = self._inflight.get(flight)
        if task is None:
            task = self._inflight[flight] = asyncio.ensure_future(start())
            task.add_done_callback(lambda _: self._inflight.pop(flight, None))
        return await asyncio.shield(task)

    async def _load(self, secret: str) -> str:
        key = self.key(secret)
        token, ttl = await self._kv.get_with_ttl(key)
        if not token:
            return await self._refresh_shared(secret, stale=None)
        self._keep(key, token, ttl)
        return token

    async def _refresh_shared(self, secret: str, stale: str | None) -> str:
        key = self.key(secret)
        try:
            async with self._kv.lock(key, timeout=self._lock_timeout, wait=self._lock_timeout):
                # Re-check under the lock: whoever held it before us has probably refreshed already.
                current, ttl = await self._kv.get_with_ttl(key)
                if current and current != stale:
                    self._keep(key, current, ttl)
                    return current
                token, expires_in = await self._fetch(secret)
                await self._kv.set(key, token, ttl=_cache_ttl(expires_in))
                self._keep(key, token, _cache_ttl(expires_in))
                return token
        except TimeoutError:
            raise WeComUnavailable("timed out waiting for the access_token refresh lock") from None


def _cache_ttl(expires_in: int) -> float:
    # Expire our copy early so no call goes out with a token about to die in flight.
    margin = min(300.0, expires_in * 0.1)
    return max(1.0, expires_in - margin)
