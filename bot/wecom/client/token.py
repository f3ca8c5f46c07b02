"""access_token cache shared by every process through the KV store, refreshed by one caller at a time."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from bot.kv import KeyValueStore

from .errors import WeComUnavailable

# Fetches a fresh token for a secret: returns (access_token, expires_in seconds).
TokenFetcher = Callable[[str], Awaitable[tuple[str, int]]]


class TokenCache:
    """One cached token per (corp, secret), refreshed single flight.

    Within a process concurrent callers share one refresh task; across processes a KV lock lets one
    of them call gettoken while the others wait and then read what it stored.
    """

    def __init__(self, kv: KeyValueStore, corp_id: str, fetch: TokenFetcher, *, lock_timeout: float = 60.0):
        self._kv = kv
        self._corp_id = corp_id
        self._fetch = fetch
        self._lock_timeout = lock_timeout
        self._inflight: dict[tuple[str, str | None], asyncio.Future[str]] = {}

    def key(self, secret: str) -> str:
        # Keyed by a fingerprint of the secret, not its name: names that fall back to the same secret
        # share one token, and a rotated secret never reuses the old secret's token.
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:16]
        return f"wecom:token:{self._corp_id}:{fingerprint}"

    async def get(self, secret: str) -> str:
        token = await self._kv.get(self.key(secret))
        return token or await self._refresh(secret, stale=None)

    async def replace(self, secret: str, rejected: str) -> str:
        """WeCom rejected `rejected`: get a new token unless another caller already did."""
        return await self._refresh(secret, stale=rejected)

    async def _refresh(self, secret: str, stale: str | None) -> str:
        # Only one coroutine per process queues on the (polled) KV lock; the rest await its result.
        flight = (self.key(secret), stale)
        task = self._inflight.get(flight)
        if task is None:
            task = self._inflight[flight] = asyncio.ensure_future(self._refresh_shared(secret, stale))
            task.add_done_callback(lambda _: self._inflight.pop(flight, None))
        return await asyncio.shield(task)

    async def _refresh_shared(self, secret: str, stale: str | None) -> str:
        key = self.key(secret)
        try:
            async with self._kv.lock(key, timeout=self._lock_timeout, wait=self._lock_timeout):
                # Re-check under the lock: whoever held it before us has probably refreshed already.
                current = await self._kv.get(key)
                if current and current != stale:
                    return current
                token, expires_in = await self._fetch(secret)
                await self._kv.set(key, token, ttl=_cache_ttl(expires_in))
                return token
        except TimeoutError:
            raise WeComUnavailable("timed out waiting for the access_token refresh lock") from None


def _cache_ttl(expires_in: int) -> float:
    # Expire our copy early so no call goes out with a token about to die in flight.
    margin = min(300.0, expires_in * 0.1)
    return max(1.0, expires_in - margin)
