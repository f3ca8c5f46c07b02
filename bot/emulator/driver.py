"""EmulatorDriver: plays WeCom's side of the callbacks, encrypted and signed exactly as WeCom does."""

from __future__ import annotations

import asyncio
import logging
import secrets as random_ids

import aiohttp

from bot.wecom.crypto import CallbackCrypto

from .state import EmulatorState

log = logging.getLogger("bot.emulator.driver")

CALLBACK_TIMEOUT = 5.0  # WeCom waits 5 s for an answer
CALLBACK_ATTEMPTS = 3  # and tries 3 times in all


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def event_xml(fields: dict) -> str:
    """WeCom's plaintext XML: numbers bare, strings in CDATA, in the given order."""
    body = "".join(
        f"<{name}>{value if isinstance(value, int) else _cdata(str(value))}</{name}>"
        for name, value in fields.items()
        if value is not None
    )
    return f"<xml>{body}</xml>"


class EmulatorDriver:
    """Makes things happen in the emulated world and tells the service, like WeCom would."""

    def __init__(
        self,
        state: EmulatorState,
        callback_url: str | None,
        crypto: CallbackCrypto,
        session: aiohttp.ClientSession,
        *,
        attempts: int = CALLBACK_ATTEMPTS,
        retry_interval: float = 1.0,
    ):
        self.state = state
        self.callback_url = callback_url
        self.crypto = crypto
        self.session = session
        self.attempts = attempts
        self.retry_interval = retry_interval

    # Customer contact (FromUserName is always "sys" for these)

    async def customer_adds_guide(
        self,
        external_userid: str,
        userid: str,
        state: str | None = None,
        name: str | None = None,
        *,
        unionid: str = "",
        gender: int = 0,
        half: bool = False,
    ) -> dict:
        """The customer adds the guide: the friendship exists, a 20 s welcome code is issued.

        `half`: the guide takes customers without verification and has not confirmed yet
        (add_half_external_contact); the add_external_contact of the same friendship follows when
        they do (call again without `half`)."""
        self.state.add_customer(external_userid, name, unionid=unionid, gender=gender)
        self.state.befriend(external_userid, userid, state=state or "")
        console_welcome = self.state.members[userid].console_welcome
        code = None if console_welcome else self.state.issue_welcome_code(userid, external_userid)
        change_type = "add_half_external_contact" if half else "add_external_contact"
        event = self._contact_event(change_type, userid, external_userid, State=state or "", WelcomeCode=code)
        return {**await self._post(event), "welcome_code": code}

    async def customer_scans_contact_way(
        self, config_id: str, external_userid: str, name: str | None = None
    ) -> dict:
        """The customer scans a contact way's QR code: they add its (first) member with its state."""
        way = self.state.contact_ways[config_id]
        return await self.customer_adds_guide(external_userid, way["user"][0], way["state"] or None, name)

    async def customer_deletes_guide(self, external_userid: str, userid: str) -> dict:
        self._unfriend(external_userid, userid)
        return await self._post(self._contact_event("del_follow_user", userid, external_userid))

    async def guide_deletes_customer(
        self, userid: str, external_userid: str, source: str | None = None
    ) -> dict:
        self._unfriend(external_userid, userid)
        event = self._contact_event("del_external_contact", userid, external_userid, Source=source)
        return await self._post(event)

    async def handover_fails(self, takeover_userid: str, external_userid: str,
                             reason: str = "customer_refused") -> dict:
        """WeCom tells the takeover guide's side that a handover failed (refused, or over the limit)."""
        event = self._contact_event("transfer_fail", takeover_userid, external_userid, FailReason=reason)
        return await self._post(event)

    async def guide_edits_customer_tags(
        self, userid: str, external_userid: str, add: list[str] = (), remove: list[str] = ()
    ) -> dict:
        """The guide changes the customer's corp tags (ids) in their client: edit_external_contact."""
        follow = self.state.customers[external_userid].follows[userid]
        follow.tag_ids = (follow.tag_ids | set(add)) - set(remove)
        return await self._post(self._contact_event("edit_external_contact", userid, external_userid))

    async def corp_tag_changes(self, tag_id: str, change_type: str = "update", tag_type: str = "tag") -> dict:
        """A corp tag was created, renamed or deleted in the admin console: change_external_tag."""
        if change_type == "delete":
            self.state.tags.pop(tag_id, None)
            for customer in self.state.customers.values():
                for follow in customer.follows.values():
                    follow.tag_ids.discard(tag_id)
        event = {"ToUserName": self.state.corp_id, "FromUserName": "sys", "CreateTime": self.state.now(),
                 "MsgType": "event", "Event": "change_external_tag", "Id": tag_id, "TagType": tag_type,
                 "ChangeType": change_type}
        return await self._post(event)

    # 微信客服

    async def customer_writes_kf(
        self, open_kfid: str, external_userid: str, text: str, menu_id: str | None = None
    ) -> dict:
        """Queue the customer's message for kf/sync_msg and notify with a fresh sync token."""
        content = {"content": text, **({"menu_id": menu_id} if menu_id else {})}
        message = self.state.queue_kf_message(
            open_kfid, {"external_userid": external_userid, "origin": 3, "msgtype": "text", "text": content}
        )
        return {**await self._post(self._kf_event(open_kfid)), "msgid": message["msgid"]}

    async def customer_enters_kf_session(
        self, open_kfid: str, external_userid: str, scene: str = "", scene_param: str = ""
    ) -> dict:
        code = self.state.issue_kf_welcome_code(open_kfid, external_userid)
        event = {
            "event_type": "enter_session",
            "open_kfid": open_kfid,
            "external_userid": external_userid,
            "scene": scene,
            "scene_param": scene_param,
            "welcome_code": code,
        }
        self.state.queue_kf_message(
            open_kfid, {"external_userid": external_userid, "origin": 4, "msgtype": "event", "event": event}
        )
        return {**await self._post(self._kf_event(open_kfid)), "welcome_code": code}

    # Guides talking to the app

    async def guide_writes_app(self, userid: str, text: str) -> dict:
        event = self._app_event(
            userid, MsgType="text", Content=text, MsgId=int.from_bytes(random_ids.token_bytes(7), "big")
        )
        return await self._post(event, agent_id=self.state.agent_id)

    async def guide_taps_menu(self, userid: str, event_key: str) -> dict:
        event = self._app_event(userid, MsgType="event", Event="click", EventKey=event_key)
        return await self._post(event, agent_id=self.state.agent_id)

    async def guide_taps_card_button(self, userid: str, task_id: str, key: str) -> dict:
        """The member taps a button of a template_card they received: template_card_event."""
        from .api_cards import delivered_card, issue_response_code

        card = delivered_card(self.state, userid, task_id)
        if card is None or key not in {button.get("key") for button in card.get("button_list", [])}:
            raise ValueError(f"{userid} has no card {task_id!r} with a button {key!r}")
        code = issue_response_code(self.state, userid, task_id)
        event = self._app_event(userid, MsgType="event", Event="template_card_event", EventKey=key, TaskId=task_id,
                                CardType=card.get("card_type", ""), ResponseCode=code)
        return {**await self._post(event, agent_id=self.state.agent_id), "response_code": code}

    # Building and sending

    def _unfriend(self, external_userid: str, userid: str) -> None:
        customer = self.state.customers.get(external_userid)
        if customer:
            customer.follows.pop(userid, None)

    def _contact_event(self, change_type: str, userid: str, external_userid: str, **extra) -> dict:
        return {
            "ToUserName": self.state.corp_id,
            "FromUserName": "sys",
            "CreateTime": self.state.now(),
            "MsgType": "event",
            "Event": "change_external_contact",
            "ChangeType": change_type,
            "UserID": userid,
            "ExternalUserID": external_userid,
            **extra,
        }

    def _kf_event(self, open_kfid: str) -> dict:
        return {
            "ToUserName": self.state.corp_id,
            "CreateTime": self.state.now(),
            "MsgType": "event",
            "Event": "kf_msg_or_event",
            "Token": self.state.issue_kf_sync_token(),
            "OpenKfId": open_kfid,
        }

    def _app_event(self, userid: str, **fields) -> dict:
        return {
            "ToUserName": self.state.corp_id,
            "FromUserName": userid,
            "CreateTime": self.state.now(),
            **fields,
            "AgentID": self.state.agent_id,
        }

    async def _post(self, event: dict, agent_id: int | None = None) -> dict:
        """POST the sealed event; like WeCom, retry on a non-200 answer or no answer in 5 s."""
        url = self.callback_url or self.state.callback_url
        result = {**event, "http_status": None, "attempts": 0}
        if not url:
            return result
        sealed = self.crypto.seal(event_xml(event))
        agent = f"<AgentID>{agent_id}</AgentID>" if agent_id is not None else ""
        body = (
            f"<xml><ToUserName>{_cdata(self.state.corp_id)}</ToUserName>{agent}"
            f"<Encrypt>{_cdata(sealed['encrypted'])}</Encrypt></xml>"
        )
        for attempt in range(1, self.attempts + 1):
            result["attempts"] = attempt
            try:
                async with self.session.post(
                    url,
                    params=sealed["params"],
                    data=body.encode(),
                    headers={"Content-Type": "text/xml"},
                    timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT),
                ) as resp:
                    result["http_status"] = resp.status
                    result["answer"] = await resp.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                result["http_status"] = None
                log.info("callback attempt %d failed: %s", attempt, type(exc).__name__)
            self.state.callbacks.append(
                {
                    "time": self.state.now(),
                    "event": event,
                    "attempt": attempt,
                    "status": result["http_status"],
                }
            )
            if result["http_status"] == 200:
                break
            if attempt < self.attempts:
                await asyncio.sleep(self.retry_interval)
        return result
