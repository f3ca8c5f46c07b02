"""The asyncio WeCom server-API client: shared token, per-path rate limit, retries, typed errors."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import aiohttp

from bot.kv import KeyValueStore
from bot.metrics import WECOM_CALL_LATENCY, WECOM_CALLS

from .errors import (
    RATE_LIMIT_ERRCODES,
    SYSTEM_BUSY,
    TOKEN_ERRCODES,
    RateLimited,
    WeComAPIError,
    WeComUnavailable,
)
from .externalcontact import ExternalContactAPI
from .kf import KfAPI
from .message import MessageAPI
from .ratelimit import RateLimiter
from .token import TokenCache
from .user import UserAPI

log = logging.getLogger("bot.wecom.api")

# How long WeCom blocks after a limit hit: minute-level limits lift after a minute (doc 90313).
RETRY_AFTER = {45009: 60.0, 45033: 5.0}


class _TransportFailure(Exception):
    """No usable answer. `sent` is False only when the request surely never left this process."""

    def __init__(self, reason: str, *, sent: bool):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class WeComClient:
    """One client per corp; endpoint groups hang off it: `api.externalcontact`, `api.message`, `api.kf`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        kv: KeyValueStore,
        *,
        base_url: str,
        corp_id: str,
        secrets: dict[str, str],
        agent_id: int,
        calls_per_minute: int = 10000,
        timeout: float = 10,
        max_retries: int = 3,
        backoff: float = 0.5,
        rate_limit_pause: float = 1.0,
        max_rate_wait: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not secrets.get("app"):
            raise ValueError('secrets must contain the app secret under "app"')
        self._session = session
        self.base_url = base_url.rstrip("/") + "/"
        self.corp_id = corp_id
        self.agent_id = agent_id
        # Optional separate secrets (客户联系, 微信客服) fall back to the app secret.
        self._secrets = {"contact": secrets["app"], "kf": secrets["app"]}
        self._secrets.update({name: value for name, value in secrets.items() if value})
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.rate_limit_pause = rate_limit_pause
        self._sleep = sleep
        self.tokens = TokenCache(
            kv, corp_id, self._fetch_token, lock_timeout=timeout * (max_retries + 2), clock=monotonic
        )
        self.limiter = RateLimiter(
            kv, corp_id, calls_per_minute, max_wait=max_rate_wait, clock=clock, sleep=sleep
        )

        self.externalcontact = ExternalContactAPI(self)
        self.message = MessageAPI(self)
        self.kf = KfAPI(self)
        self.user = UserAPI(self)

    def _secret(self, name: str) -> str:
        try:
            return self._secrets[name]
        except KeyError:
            raise ValueError(f"no WeCom secret configured under {name!r}") from None

    async def gettoken(self, secret_name: str = "app") -> dict:
        """Call gettoken directly (uncached); services should use `access_token()`."""
        params = {"corpid": self.corp_id, "corpsecret": self._secret(secret_name)}
        return await self._call("GET", "gettoken", params, None, idempotent=True)

    async def access_token(self, secret_name: str = "app") -> str:
        """The shared cached token for a secret, fetched by one caller when missing."""
        return await self.tokens.get(self._secret(secret_name))

    async def _fetch_token(self, secret: str) -> tuple[str, int]:
        params = {"corpid": self.corp_id, "corpsecret": secret}
        data = await self._call("GET", "gettoken", params, None, idempotent=True)
        return data["access_token"], int(data.get("expires_in", 7200))

    async def request(
        self,
        method: str,
        path: str,
        *,
        secret_name: str = "app",
        params: dict | None = None,
        json: dict | None = None,
        idempotent: bool = True,
    ) -> dict:
        """Call `cgi-bin/<path>` with the token of `secret_name`; returns the parsed answer (errcode 0)."""
        secret = self._secret(secret_name)
        token = await self.tokens.get(secret)
        try:
            return await self._call(method, path, {**(params or {}), "access_token": token}, json, idempotent)
        except WeComAPIError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
        # WeCom may revoke a token before its expiry: replace it once, then retry once.
        token = await self.tokens.replace(secret, rejected=token)
        return await self._call(method, path, {**(params or {}), "access_token": token}, json, idempotent)

    async def _call(self, method: str, path: str, params: dict, json: dict | None, idempotent: bool) -> dict:
        busy = failures = 0
        while True:
            try:
                data = await self._send(method, path, params, json)
            except _TransportFailure as exc:
                failures += 1
                # Re-sending a non-idempotent call that may have arrived could deliver it twice.
                unsafe = exc.sent and not idempotent
                if unsafe or failures > self.max_retries:
                    raise WeComUnavailable(
                        f"{path}: {exc.reason} (attempt {failures})", maybe_delivered=unsafe
                    ) from None
                await self._sleep(self._backoff_delay(failures))
                continue
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return data
            errmsg = str(data.get("errmsg", ""))
            if errcode == SYSTEM_BUSY:
                busy += 1
                if busy > self.max_retries:
                    raise WeComUnavailable(f"{path}: system busy (-1) after {busy} attempts")
                await self._sleep(self._backoff_delay(busy))
                continue
            if errcode in RATE_LIMIT_ERRCODES:
                await self._sleep(self.rate_limit_pause)
                raise RateLimited(errcode, errmsg, retry_after=RETRY_AFTER[errcode])
            raise WeComAPIError(errcode, errmsg)

    def _backoff_delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), 10.0) * random.uniform(0.8, 1.2)

    async def _send(self, method: str, path: str, params: dict, json: dict | None) -> dict:
        await self.limiter.acquire(path)
        outcome = "network"
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, self.base_url + path, params=params, json=json, timeout=self._timeout
            ) as resp:
                if resp.status != 200:
                    outcome = f"http_{resp.status}"
                    raise _TransportFailure(f"HTTP {resp.status}", sent=True)
                data = await resp.json(content_type=None)
                if not isinstance(data, dict):
                    raise ValueError("answer is not a JSON object")
                outcome = str(data.get("errcode") or 0)
                return data
        except aiohttp.ClientConnectorError as exc:
            raise _TransportFailure(f"cannot connect: {exc.os_error}", sent=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Only the exception type: aiohttp messages can carry the URL, and with it the token.
            raise _TransportFailure(type(exc).__name__, sent=True) from None
        except ValueError:
            outcome = "bad_answer"
            raise _TransportFailure("answer is not a JSON object", sent=True) from None
        finally:
            self._observe(path, outcome, time.perf_counter() - started)

    @staticmethod
    def _observe(path: str, outcome: str, elapsed: float) -> None:
        WECOM_CALLS.labels(endpoint=path, errcode=outcome).inc()
        WECOM_CALL_LATENCY.labels(endpoint=path).observe(elapsed)
        level = logging.INFO if outcome == "0" else logging.WARNING
        log.log(
            level,
            "wecom %s errcode=%s %.1fms",
            path,
            outcome,
            elapsed * 1000,
            extra={"endpoint": path, "errcode": outcome, "latency_ms": round(elapsed * 1000, 1)},
        )
