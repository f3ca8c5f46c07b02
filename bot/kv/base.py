from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager


class KVError(Exception):
    """The key-value backend refused an operation (a bug or a misconfiguration, not an outage)."""


class KVUnavailable(KVError):
    """The key-value backend cannot be reached (connection refused or reset, timeout): transient."""


class KeyValueStore(abc.ABC):
    """The few operations the service needs; values are str."""

    name: str

    @abc.abstractmethod
    async def get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def get_with_ttl(self, key: str) -> tuple[str | None, float | None]:
        """The value and its remaining lifetime in seconds (None: no TTL), in one round trip."""

    @abc.abstractmethod
    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Store the key only if it is new; True when this call stored it."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add to a counter; the TTL is set when the counter is created."""

    @abc.abstractmethod
    def lock(self, key: str, timeout: float = 30.0, wait: float = 30.0) -> AbstractAsyncContextManager:
        """A mutual-exclusion lock held at most `timeout` seconds; waits at most `wait` to get it."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    async def close(self) -> None:
        return None
