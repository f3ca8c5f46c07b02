"""The address book (通讯录) as the app sees it: `user/get` for one member."""

from __future__ import annotations

from .base import APIGroup

USERID_NOT_FOUND = 60111


class UserAPI(APIGroup):
    secret_name = "app"

    async def get(self, userid: str) -> dict:
        """The member (`userid`, `name`, `status`: 1 active, 2 disabled, 4 not activated, 5 left);
        WeComAPIError 60111 when the corp has no such member."""
        return await self._get("user/get", {"userid": userid})
