"""微信客服 (WeCom Kf): read customers' messages and answer them inside the 48 h / 5 message window."""

from __future__ import annotations

import uuid

from .base import APIGroup


class KfAPI(APIGroup):
    secret_name = "kf"

    async def sync_msg(
        self,
        *,
        open_kfid: str,
        cursor: str | None = None,
        token: str | None = None,
        limit: int | None = None,
        voice_format: int | None = None,
    ) -> dict:
        """One page of messages after `cursor`; loop while `has_more` == 1 and keep `next_cursor`."""
        body = {
            "open_kfid": open_kfid,
            "cursor": cursor,
            "token": token,
            "limit": limit,
            "voice_format": voice_format,
        }
        return await self._post("kf/sync_msg", body)

    async def send_msg(
        self,
        *,
        touser: str,
        open_kfid: str,
        msgtype: str = "text",
        msgid: str | None = None,
        text: dict | None = None,
        msgmenu: dict | None = None,
        **extra,
    ) -> dict:
        """Send to a customer. `msgid` makes the send idempotent: pass a stable one (e.g. the job id).

        Without one the client makes one up, so its own retries still cannot deliver twice.
        """
        body = {
            "touser": touser,
            "open_kfid": open_kfid,
            "msgid": msgid or uuid.uuid4().hex,
            "msgtype": msgtype,
            "text": text,
            "msgmenu": msgmenu,
            **extra,
        }
        return await self._post("kf/send_msg", body, idempotent=True)

    async def send_msg_on_event(
        self,
        *,
        code: str,
        msgtype: str = "text",
        msgid: str | None = None,
        text: dict | None = None,
        msgmenu: dict | None = None,
        **extra,
    ) -> dict:
        """Welcome a customer with the `welcome_code` of an enter_session event (valid 20 s, once)."""
        body = {"code": code, "msgid": msgid, "msgtype": msgtype, "text": text, "msgmenu": msgmenu, **extra}
        return await self._post("kf/send_msg_on_event", body, idempotent=False)
