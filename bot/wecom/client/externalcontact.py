"""客户联系 endpoints: contact ways, welcome messages, group sends, tags, customers, handovers.

Arguments mirror WeCom's JSON fields; rarely used fields pass through `**extra`. Calls that would
create or send something twice if repeated are marked non-idempotent (see WeComUnavailable).
"""

from __future__ import annotations

from .base import APIGroup


class ExternalContactAPI(APIGroup):
    secret_name = "contact"

    # 联系我 (contact ways)

    async def add_contact_way(
        self,
        *,
        type: int,
        scene: int,
        user: list[str] | None = None,
        party: list[int] | None = None,
        state: str | None = None,
        remark: str | None = None,
        skip_verify: bool | None = None,
        style: int | None = None,
        **extra,
    ) -> dict:
        """Create a contact way: type 1 one member / 2 several; scene 1 mini-program / 2 QR (`qr_code`)."""
        body = {
            "type": type,
            "scene": scene,
            "user": user,
            "party": party,
            "state": state,
            "remark": remark,
            "skip_verify": skip_verify,
            "style": style,
            **extra,
        }
        return await self._post("externalcontact/add_contact_way", body, idempotent=False)

    async def get_contact_way(self, config_id: str) -> dict:
        return await self._post("externalcontact/get_contact_way", {"config_id": config_id})

    async def update_contact_way(self, config_id: str, **fields) -> dict:
        """Change remark, skip_verify, style, state, user, party… of an existing contact way."""
        return await self._post("externalcontact/update_contact_way", {"config_id": config_id, **fields})

    async def del_contact_way(self, config_id: str) -> dict:
        return await self._post("externalcontact/del_contact_way", {"config_id": config_id})

    # Welcome message (welcome_code: 20 s, once)

    async def send_welcome_msg(
        self, welcome_code: str, *, text: dict | None = None, attachments: list[dict] | None = None
    ) -> dict:
        body = {"welcome_code": welcome_code, "text": text, "attachments": attachments}
        return await self._post("externalcontact/send_welcome_msg", body, idempotent=False)

    # 企业群发 (group sends: tasks the member confirms in the WeCom client)

    async def add_msg_template(
        self,
        *,
        external_userid: list[str] | None = None,
        sender: str | None = None,
        text: dict | None = None,
        attachments: list[dict] | None = None,
        chat_type: str = "single",
        **extra,
    ) -> dict:
        """Create a group-send task (≤10,000 customers); returns `msgid` and `fail_list`."""
        body = {
            "chat_type": chat_type,
            "external_userid": external_userid,
            "sender": sender,
            "text": text,
            "attachments": attachments,
            **extra,
        }
        return await self._post("externalcontact/add_msg_template", body, idempotent=False)

    async def get_groupmsg_list_v2(
        self,
        *,
        chat_type: str,
        start_time: int,
        end_time: int,
        creator: str | None = None,
        filter_type: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict:
        body = {
            "chat_type": chat_type,
            "start_time": start_time,
            "end_time": end_time,
            "creator": creator,
            "filter_type": filter_type,
            "limit": limit,
            "cursor": cursor,
        }
        return await self._post("externalcontact/get_groupmsg_list_v2", body)

    async def get_groupmsg_task(
        self, msgid: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict:
        body = {"msgid": msgid, "limit": limit, "cursor": cursor}
        return await self._post("externalcontact/get_groupmsg_task", body)

    async def get_groupmsg_send_result(
        self, msgid: str, userid: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict:
        """Per-customer status: 0 not sent, 1 sent, 2 not a friend, 3 over the customer's cap."""
        body = {"msgid": msgid, "userid": userid, "limit": limit, "cursor": cursor}
        return await self._post("externalcontact/get_groupmsg_send_result", body)

    async def remind_groupmsg_send(self, msgid: str) -> dict:
        """Nudge the members again (WeCom allows 3 reminders per 24 h)."""
        return await self._post("externalcontact/remind_groupmsg_send", {"msgid": msgid}, idempotent=False)

    async def cancel_groupmsg_send(self, msgid: str) -> dict:
        return await self._post("externalcontact/cancel_groupmsg_send", {"msgid": msgid})

    # Tags

    async def mark_tag(
        self,
        userid: str,
        external_userid: str,
        *,
        add_tag: list[str] | None = None,
        remove_tag: list[str] | None = None,
    ) -> dict:
        body = {
            "userid": userid,
            "external_userid": external_userid,
            "add_tag": add_tag,
            "remove_tag": remove_tag,
        }
        return await self._post("externalcontact/mark_tag", body)

    async def get_corp_tag_list(
        self, *, tag_id: list[str] | None = None, group_id: list[str] | None = None
    ) -> dict:
        return await self._post("externalcontact/get_corp_tag_list", {"tag_id": tag_id, "group_id": group_id})

    async def add_corp_tag(
        self,
        *,
        tag: list[dict],
        group_id: str | None = None,
        group_name: str | None = None,
        order: int | None = None,
        **extra,
    ) -> dict:
        """Add tags (`[{"name": …}]`, names ≤30 chars) to a group given by id or by name."""
        body = {"group_id": group_id, "group_name": group_name, "order": order, "tag": tag, **extra}
        return await self._post("externalcontact/add_corp_tag", body, idempotent=False)

    # Customers

    async def get(self, external_userid: str, *, cursor: str | None = None) -> dict:
        """A customer's profile (`external_contact`) and the members following them (`follow_user`)."""
        return await self._get("externalcontact/get", {"external_userid": external_userid, "cursor": cursor})

    async def batch_get_by_user(
        self, userid_list: list[str], *, cursor: str | None = None, limit: int | None = None
    ) -> dict:
        """Customers of up to 100 members, `limit` ≤100 a page, paged by `next_cursor`."""
        body = {"userid_list": userid_list, "cursor": cursor, "limit": limit}
        return await self._post("externalcontact/batch/get_by_user", body)

    # Handovers (≤100 customers a call; effective after 24 h; the customer may refuse)

    async def transfer_customer(
        self,
        handover_userid: str,
        takeover_userid: str,
        external_userid: list[str],
        *,
        transfer_success_msg: str | None = None,
    ) -> dict:
        body = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": external_userid,
            "transfer_success_msg": transfer_success_msg,
        }
        return await self._post("externalcontact/transfer_customer", body, idempotent=False)

    async def resigned_transfer_customer(
        self, handover_userid: str, takeover_userid: str, external_userid: list[str]
    ) -> dict:
        body = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": external_userid,
        }
        return await self._post("externalcontact/resigned/transfer_customer", body, idempotent=False)
