"""企业群发: tasks for members, confirmed by the member, capped per customer (month, or day / week)."""

from __future__ import annotations

from .api_base import (
    EMPTY_TEXT,
    INVALID_GROUPMSG_ID,
    INVALID_PARAMETER,
    MISSING_GROUPMSG_ID,
    NO_RECEIVABLE_CUSTOMER,
    ApiError,
    Call,
    api,
    check_attachments,
    check_member,
    check_text,
    page,
    required,
)
from .state import EmulatorState, new_id
from .world import GroupSend, SendTask

MAX_RECIPIENTS = 10_000
GROUPMSG_TEXT_BYTES = 4000
MAX_REMINDERS_PER_DAY = 3
MAX_LIST_RANGE = 31 * 86400

# Per-customer send result status (get_groupmsg_send_result).
NOT_SENT, SENT, NOT_A_FRIEND, OVER_CAP = 0, 1, 2, 3
TASK_SENT = 2  # get_groupmsg_task: 0 not sent, 2 sent


@api("externalcontact/add_msg_template")
def add_msg_template(state: EmulatorState, call: Call) -> dict:
    params = call.params
    chat_type = params.get("chat_type") or "single"
    if chat_type not in ("single", "group"):
        raise ApiError(INVALID_PARAMETER, "chat_type must be single or group")
    recipients = params.get("external_userid") or []
    if not isinstance(recipients, list) or len(recipients) > MAX_RECIPIENTS:
        raise ApiError(INVALID_PARAMETER, f"external_userid takes at most {MAX_RECIPIENTS} customers")
    content = check_text(params.get("text"), GROUPMSG_TEXT_BYTES)
    attachments = check_attachments(params.get("attachments"))
    if not content and not attachments:
        raise ApiError(EMPTY_TEXT, "text and attachments are both empty")
    sender = params.get("sender")
    if sender is not None or chat_type == "group":
        check_member(state, sender)

    # Each customer goes to the sender's task, or without a sender to every member who has them.
    tasks: dict[str, SendTask] = {}
    fail_list = []
    for external_userid in dict.fromkeys(recipients):
        customer = state.customers.get(external_userid)
        followers = list(customer.follows) if customer else []
        owners = [sender] if sender in followers else ([] if sender else followers)
        if not owners:
            fail_list.append(external_userid)
        for userid in owners:
            task = tasks.setdefault(userid, SendTask(userid, {}))
            task.results[external_userid] = {"status": NOT_SENT, "send_time": 0}
    if chat_type == "group":
        tasks.setdefault(sender, SendTask(sender, {}))
    if not tasks:
        raise ApiError(NO_RECEIVABLE_CUSTOMER, "no receivable customer")
    send = GroupSend(
        new_id("msg", 12), chat_type, state.now(), sender or "", params.get("text"), attachments, tasks
    )
    state.group_sends[send.msgid] = send
    return {"msgid": send.msgid, "fail_list": fail_list}


def _group_send(state: EmulatorState, call: Call) -> GroupSend:
    msgid = required(call.params, "msgid", MISSING_GROUPMSG_ID)
    send = state.group_sends.get(msgid)
    if send is None:
        raise ApiError(INVALID_GROUPMSG_ID, "invalid msgid")
    return send


def confirm_group_send(state: EmulatorState, msgid: str, sender: str | None = None) -> dict:
    """The member taps "send" in their WeCom client: deliver within friendship and the customer's caps."""
    send = state.group_sends.get(msgid)
    if send is None:
        raise KeyError(msgid)
    if send.cancelled:
        raise ValueError("this group send was cancelled")
    tasks = [send.tasks[sender]] if sender else list(send.tasks.values())
    for task in tasks:
        if task.status == TASK_SENT:
            continue
        for external_userid, result in task.results.items():
            customer = state.customers.get(external_userid)
            if customer is None or task.userid not in customer.follows:
                result["status"] = NOT_A_FRIEND
            elif state.over_group_send_cap(external_userid):
                result["status"] = OVER_CAP
            else:
                state.record_group_send_received(external_userid)
                result.update(status=SENT, send_time=state.now())
                state.deliver(
                    "groupmsg",
                    msgid=msgid,
                    sender=task.userid,
                    to=external_userid,
                    text=send.text,
                    attachments=send.attachments,
                )
        task.status, task.send_time = TASK_SENT, state.now()
    return {"msgid": msgid, "tasks": [{"userid": t.userid, "results": t.results} for t in tasks]}


@api("externalcontact/get_groupmsg_list_v2")
def get_groupmsg_list_v2(state: EmulatorState, call: Call) -> dict:
    params = call.params
    start, end = required(params, "start_time"), required(params, "end_time")
    if not 0 <= end - start <= MAX_LIST_RANGE:
        raise ApiError(INVALID_PARAMETER, "start_time..end_time must span at most one month")
    chat_type = required(params, "chat_type")
    sends = [
        s
        for s in state.group_sends.values()
        if s.chat_type == chat_type
        and start <= s.create_time <= end
        and (not params.get("creator") or s.creator == params["creator"])
    ]
    items, next_cursor = page(sends, params, default=50, maximum=100)
    listing = [
        {
            "msgid": s.msgid,
            "creator": s.creator,
            "create_time": s.create_time,
            "create_type": 0,
            "text": s.text,
            "attachments": s.attachments,
        }
        for s in items
    ]
    return {"group_msg_list": listing, "next_cursor": next_cursor}


@api("externalcontact/get_groupmsg_task")
def get_groupmsg_task(state: EmulatorState, call: Call) -> dict:
    send = _group_send(state, call)
    items, next_cursor = page(list(send.tasks.values()), call.params, default=500, maximum=1000)
    tasks = [{"userid": t.userid, "status": t.status, "send_time": t.send_time} for t in items]
    return {"task_list": tasks, "next_cursor": next_cursor}


@api("externalcontact/get_groupmsg_send_result")
def get_groupmsg_send_result(state: EmulatorState, call: Call) -> dict:
    send = _group_send(state, call)
    task = send.tasks.get(required(call.params, "userid"))
    rows = [
        {"external_userid": external_userid, "chat_id": "", "userid": task.userid, **result}
        for external_userid, result in (task.results.items() if task else [])
    ]
    items, next_cursor = page(rows, call.params, default=500, maximum=1000)
    return {"send_list": items, "next_cursor": next_cursor}


@api("externalcontact/remind_groupmsg_send")
def remind_groupmsg_send(state: EmulatorState, call: Call) -> dict:
    send = _group_send(state, call)
    now = state.clock()
    for task in send.tasks.values():
        task.reminders = [t for t in task.reminders if t > now - 86400]
        if task.status != TASK_SENT and len(task.reminders) >= MAX_REMINDERS_PER_DAY:
            raise ApiError(INVALID_PARAMETER, f"at most {MAX_REMINDERS_PER_DAY} reminders per 24 h")
    for task in send.tasks.values():
        if task.status != TASK_SENT:
            task.reminders.append(now)
            state.deliver("reminder", msgid=send.msgid, to=task.userid)
    return {}


@api("externalcontact/cancel_groupmsg_send")
def cancel_groupmsg_send(state: EmulatorState, call: Call) -> dict:
    _group_send(state, call).cancelled = True
    return {}
