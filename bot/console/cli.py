"""`wecom-assistant user create|list|disable|set-password` (bot/cli.py adds this group).

Passwords are never arguments (they would sit in shell history and `ps`): read from standard
input, or on a terminal prompted twice.
"""

from __future__ import annotations

import asyncio
import sys

import click

from bot.console import accounts
from bot.storage import utcnow


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _run(action):
    """Run `action(db)` against the configured database (migrated first on SQLite, as serve does)."""
    from bot.commandline import cli_settings as _settings
    from bot.storage import Database
    from bot.storage.migrate import upgrade

    settings = _settings()

    async def run():
        if settings.is_sqlite:
            await asyncio.to_thread(upgrade, settings.database_url)
        db = Database(settings.database_url)
        try:
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("user")
def user_group() -> None:
    """Console users (people who sign in at /console/)."""


@user_group.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in accounts.USER_ROLES]))
@click.option("--store", "stores", multiple=True, help="Store code (store_manager; repeatable).")
def user_create(username: str, role: str, stores: tuple[str, ...]) -> None:
    """Create a user; the password comes from standard input."""
    password = _read_password()
    _run(lambda db: accounts.create_user(db, username, password, role, list(stores)))
    click.echo(f"created {role} {username}" + (f" for {', '.join(stores)}" if stores else ""))


@user_group.command("list")
def user_list() -> None:
    """Users with role, stores and state."""
    for user in _run(accounts.list_users):
        locked = user.locked_until and user.locked_until > utcnow()
        state = "disabled" if user.disabled_at else "locked" if locked else "active"
        click.echo(f"{user.username}\t{user.role}\t{','.join(user.store_codes or []) or '-'}\t{state}")


@user_group.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Stop a user signing in; their open sessions end now."""
    _run(lambda db: accounts.disable_user(db, username))
    click.echo(f"disabled {username}")


@user_group.command("set-password")
@click.argument("username")
def user_set_password(username: str) -> None:
    """Set a new password (from standard input); ends the user's sessions and lifts a lock-out."""
    password = _read_password()
    _run(lambda db: accounts.set_password(db, username, password))
    click.echo(f"password set for {username}")
