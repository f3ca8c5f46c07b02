"""App messages to members (guides): `message/send`, with the client's agentid filled in."""

from __future__ import annotations

from .base import APIGroup


class MessageAPI(APIGroup):
    secret_name = "app"

    async def send(
        self,
        *,
        touser: str | list[str],
        msgtype: str = "text",
        text: dict | None = None,
        textcard: dict | None = None,
        markdown: dict | None = None,
        safe: int | None = None,
        **extra,
    ) -> dict:
        """Send to members (`touser` list or "a|b", ≤1000); the answer's `invaliduser` names the misses.

        Pass `enable_duplicate_check=1` (in `extra`) to let WeCom drop an identical repeat.
        """
        if not isinstance(touser, str):
            touser = "|".join(touser)
        body = {
            "touser": touser,
            "msgtype": msgtype,
            "agentid": self._client.agent_id,
            "text": text,
            "textcard": textcard,
            "markdown": markdown,
            "safe": safe,
            **extra,
        }
        return await self._post("message/send", body, idempotent=False)

    async def send_text(self, touser: str | list[str], content: str) -> dict:
        return await self.send(touser=touser, msgtype="text", text={"content": content})
