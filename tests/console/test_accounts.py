"""Accounts: argon2 hashes, lock-out after wrong passwords, disable, set-password, and the user CLI."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from bot.cli import main
from bot.console.accounts import LOCK_AFTER, AccountError, create_user, disable_user, set_password
from bot.console.models import ConsoleSession, ConsoleUser
from bot.services import SERVICES
from tests.console.conftest import PASSWORD


async def sign_in_status(console, username: str, password: str) -> tuple[int, dict]:
    answer = await console.post("/api/v1/session", json={"username": username, "password": password})
    return answer.status, await answer.json()


async def test_passwords_are_kept_as_argon2id_hashes(console):
    async with console.app[SERVICES].db.session() as session:
        user = await session.scalar(select(ConsoleUser).where(ConsoleUser.username == "hq"))
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_password(console):
    for _ in range(LOCK_AFTER - 1):
        assert (await sign_in_status(console, "hq", "guess"))[0] == 401
    status, body = await sign_in_status(console, "hq", "guess")
    assert status == 423 and body["error"]["code"] == "account_locked"
    assert "locked_until" in body["error"]["details"]
    status, _ = await sign_in_status(console, "hq", PASSWORD)
    assert status == 423
    # Other accounts are not affected.
    assert (await sign_in_status(console, "sh", PASSWORD))[0] == 200


async def test_the_lock_lifts_when_its_time_is_over(console):
    for _ in range(LOCK_AFTER):
        await sign_in_status(console, "hq", "guess")
    async with console.app[SERVICES].db.session() as session, session.begin():
        await session.execute(update(ConsoleUser).values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert (await sign_in_status(console, "hq", PASSWORD))[0] == 200


async def test_a_right_password_resets_the_count_of_wrong_ones(console):
    for _ in range(LOCK_AFTER - 1):
        await sign_in_status(console, "hq", "guess")
    assert (await sign_in_status(console, "hq", PASSWORD))[0] == 200
    for _ in range(LOCK_AFTER - 1):
        assert (await sign_in_status(console, "hq", "guess"))[0] == 401


async def test_parallel_guesses_cannot_slip_past_the_limit(console):
    statuses = await asyncio.gather(*(sign_in_status(console, "hq", f"guess{i}") for i in range(LOCK_AFTER + 3)))
    assert sorted(status for status, _ in statuses).count(423) >= 3
    assert (await sign_in_status(console, "hq", PASSWORD))[0] == 423


async def test_disabling_a_user_ends_their_sessions_and_refuses_sign_in(console, sign_in):
    sh = await sign_in("sh")
    await disable_user(console.app[SERVICES].db, "sh")
    assert (await sh.client.get("/api/v1/stores")).status == 401
    assert (await sign_in_status(console, "sh", PASSWORD))[0] == 401


async def test_a_new_password_ends_sessions_and_lifts_a_lock(console, sign_in):
    hq = await sign_in("hq")
    for _ in range(LOCK_AFTER):
        await sign_in_status(console, "hq", "guess")
    await set_password(console.app[SERVICES].db, "hq", "a brand new secret")
    assert (await hq.client.get("/api/v1/stores")).status == 401
    assert (await sign_in_status(console, "hq", PASSWORD))[0] == 401
    assert (await sign_in_status(console, "hq", "a brand new secret"))[0] == 200


@pytest.mark.parametrize(("username", "password", "role", "stores", "problem"), [
    ("a b", PASSWORD, "hq_admin", [], "username"),
    ("carol", "short", "hq_admin", [], "password"),
    ("carol", PASSWORD, "guide", [], "role"),
    ("carol", PASSWORD, "store_manager", [], "store"),
    ("carol", PASSWORD, "store_manager", ["NOPE"], "store: no store NOPE"),
    ("carol", PASSWORD, "hq_admin", ["SH001"], "hq_admin"),
    ("hq", PASSWORD, "hq_admin", [], "already exists"),
])
async def test_bad_accounts_are_refused_with_what_is_wrong(console, username, password, role, stores, problem):
    db = console.app[SERVICES].db
    with pytest.raises(AccountError, match=problem):
        await create_user(db, username, password, role, stores)
    async with db.session() as session:
        assert (await session.scalars(select(ConsoleUser.username).order_by(ConsoleUser.username))).all() == ["hq", "sh"]


def run_cli(database_url: str, args: list[str], stdin: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(main, args, input=stdin, env={"DATABASE_URL": database_url})
    return result.exit_code, result.output


async def test_user_cli_creates_lists_sets_passwords_and_disables(console, database_url):
    code, out = await asyncio.to_thread(run_cli, database_url, ["user", "create", "li.ming", "--role", "store_manager",
                                                               "--store", "BJ001"], "li-ming-secret\n")
    assert code == 0, out
    assert "created store_manager li.ming for BJ001" in out
    assert "li-ming-secret" not in out
    assert (await sign_in_status(console, "li.ming", "li-ming-secret"))[0] == 200

    code, out = await asyncio.to_thread(run_cli, database_url, ["user", "set-password", "li.ming"], "another-secret\n")
    assert code == 0, out
    assert (await sign_in_status(console, "li.ming", "another-secret"))[0] == 200

    code, out = await asyncio.to_thread(run_cli, database_url, ["user", "disable", "li.ming"])
    assert code == 0, out
    code, out = await asyncio.to_thread(run_cli, database_url, ["user", "list"])
    assert code == 0
    lines = dict(line.split("\t", 1) for line in out.strip().splitlines())
    assert lines == {"hq": "hq_admin\t-\tactive", "li.ming": "store_manager\tBJ001\tdisabled",
                     "sh": "store_manager\tSH001\tactive"}


async def test_user_cli_refuses_a_short_password_and_creates_nothing(console, database_url):
    code, out = await asyncio.to_thread(run_cli, database_url, ["user", "create", "zed", "--role", "hq_admin"], "short\n")
    assert code == 1
    assert "password: at least 8 characters" in out
    assert (await sign_in_status(console, "zed", "short"))[0] == 401
    async with console.app[SERVICES].db.session() as session:
        assert await session.scalar(select(ConsoleSession.id)) is None
