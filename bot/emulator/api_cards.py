"""Interactive app cards: the ResponseCode a button tap carries (template_card_event) and
message/update_template_card, which may use it once, within 72 h, for the member who tapped."""

from __future__ import annotations

from .api_base import INVALID_AGENTID, INVALID_PARAMETER, ApiError, Call, api, required
from .state import EmulatorState, new_id

RESPONSE_CODE_SECONDS = 72 * 3600


def issue_response_code(state: EmulatorState, userid: str, task_id: str) -> str:
    code = new_id("rc", 16)
    state.card_responses[code] = {"userid": userid, "task_id": task_id, "issued": state.now(), "used": False}
    return code


def delivered_card(state: EmulatorState, userid: str, task_id: str) -> dict | None:
    """The template_card with this task_id the member received, if any."""
    for entry in reversed(state.outbox):
        card = entry.get("template_card") if entry["channel"] == "app" else None
        if card and entry.get("to") == userid and card.get("task_id") == task_id:
            return card
    return None


@api("message/update_template_card")
def update_template_card(state: EmulatorState, call: Call) -> dict:
    params = call.params
    if params.get("agentid") != state.agent_id:
        raise ApiError(INVALID_AGENTID, "invalid agentid")
    code = required(params, "response_code")
    userids = params.get("userids") or []
    response = state.card_responses.get(code)
    if response is None or response["used"] or state.now() - response["issued"] > RESPONSE_CODE_SECONDS:
        raise ApiError(INVALID_PARAMETER, "invalid response_code (unknown, used or older than 72 h)")
    if userids and userids != [response["userid"]]:
        raise ApiError(INVALID_PARAMETER, "userids must be the member who tapped the card")
    if not params.get("button") and not params.get("template_card"):
        raise ApiError(INVALID_PARAMETER, "button or template_card is required")
    response["used"] = True
    state.deliver("app_card_update", to=response["userid"], task_id=response["task_id"],
                  button=params.get("button"), template_card=params.get("template_card"))
    return {"invaliduser": []}
