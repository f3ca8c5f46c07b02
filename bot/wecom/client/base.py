"""What every endpoint group shares: which secret it uses and how it calls the client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import WeComClient


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop unset (None) fields so WeCom applies its own defaults."""
    return {key: value for key, value in fields.items() if value is not None}


class APIGroup:
    """A family of endpoints that authenticate with one secret (see WeComClient's `secrets`)."""

    secret_name = "app"

    def __init__(self, client: WeComClient):
        self._client = client

    async def _post(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> dict:
        return await self._client.request(
            "POST", path, secret_name=self.secret_name, json=compact(body), idempotent=idempotent
        )

    async def _get(self, path: str, params: dict[str, Any]) -> dict:
        return await self._client.request("GET", path, secret_name=self.secret_name, params=compact(params))
