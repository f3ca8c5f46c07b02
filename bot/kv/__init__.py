"""Key-value store: dedup keys, token cache, locks, counters, rate-limit windows.

Two implementations of one small interface: in-process (embedded default) and Redis (production,
shared by every web and worker process).
"""

from bot.kv.base import KeyValueStore, KVError, KVUnavailable
from bot.kv.memory import MemoryStore
from bot.kv.redis import RedisStore


def open_store(redis_url: str | None, prefix: str = "wa:") -> KeyValueStore:
    return RedisStore(redis_url, prefix=prefix) if redis_url else MemoryStore()


__all__ = ["KeyValueStore", "KVError", "KVUnavailable", "MemoryStore", "RedisStore", "open_store"]
