"""`wecom-assistant emulator`: run the emulator, and play WeCom's people against a running one."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import click


def _settings():
    from bot.commandline import cli_settings as _settings

    return _settings()


@click.group("emulator", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Port (default EMULATOR_PORT or 8090).")
@click.option("--callback-url", default=None,
              help="Where the emulated corp posts its callbacks (default the service's "
                   "http://127.0.0.1:PORT/wecom/callback).")
@click.pass_context
def emulator_group(ctx: click.Context, host: str, port: int | None, callback_url: str | None) -> None:
    """Run a standalone WeCom emulator (point WECOM_API_BASE_URL at http://HOST:PORT/cgi-bin/)."""
    if ctx.invoked_subcommand is None:
        from bot.emulator import run_emulator

        settings = _settings()
        port = settings.emulator_port if port is None else port
        callback_url = callback_url or f"http://127.0.0.1:{settings.port}/wecom/callback"
        click.echo(f"WeCom emulator on http://{host}:{port}/cgi-bin/ posting callbacks to {callback_url}")
        try:
            run_emulator(host, port, callback_url=callback_url)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _emulator_url(url: str | None) -> str:
    """--url, else the emulator `serve` runs on EMULATOR_PORT."""
    if url:
        return url
    port = _settings().emulator_port
    if port == 0:
        raise click.UsageError("EMULATOR_PORT is 0 (any free port): pass the emulator's --url")
    return f"http://127.0.0.1:{port}"


def _call(url: str | None, method: str, path: str, body: dict | None = None, params: dict | None = None):
    url = _emulator_url(url)

    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url.rstrip("/") + path, json=body, params=params) as response:
                text = await response.text()
                if response.status != 200:
                    raise click.ClickException(f"emulator answered {response.status}: {text.strip()}")
                return json.loads(text)

    try:
        return asyncio.run(run())
    except aiohttp.ClientError as exc:
        raise click.ClickException(f"cannot reach the emulator at {url}: {exc}") from None


url_option = click.option("--url", default=None,
                          help="The emulator's base URL (default http://127.0.0.1:EMULATOR_PORT).")


@emulator_group.command("member")
@click.argument("userid")
@click.argument("name")
@url_option
def add_member(userid: str, name: str, url: str | None) -> None:
    """Add a corp member (a guide) to the emulated corp."""
    click.echo(json.dumps(_call(url, "POST", "/emulator/members", {"userid": userid, "name": name})))


@emulator_group.command("kf-account")
@click.argument("open_kfid")
@click.argument("name")
@url_option
def add_kf_account(open_kfid: str, name: str, url: str | None) -> None:
    """Add a 微信客服 account."""
    click.echo(json.dumps(_call(url, "POST", "/emulator/kf/accounts", {"open_kfid": open_kfid, "name": name})))


@emulator_group.command("drive")
@click.argument("action")
@click.argument("fields", nargs=-1)
@url_option
def drive(action: str, fields: tuple[str, ...], url: str | None) -> None:
    """Make something happen, e.g. `drive customer_adds_guide external_userid=wm1 userid=zhangsan`.

    Actions: customer_adds_guide, customer_scans_contact_way, customer_deletes_guide,
    guide_deletes_customer, customer_writes_kf, customer_enters_kf_session, guide_writes_app,
    guide_taps_menu. Fields are name=value pairs of the driver method.
    """
    body = {}
    for field in fields:
        name, sep, value = field.partition("=")
        if not sep:
            raise click.UsageError(f"expected name=value, got {field!r}")
        body[name] = value
    click.echo(json.dumps(_call(url, "POST", f"/emulator/drive/{action}", body), ensure_ascii=False))


@emulator_group.command("outbox")
@click.option("--to", default=None, help="Only messages to this customer or member.")
@url_option
def outbox(to: str | None, url: str | None) -> None:
    """What the service sent to customers and guides (welcome, 微信客服 and app messages)."""
    for message in _call(url, "GET", "/emulator/outbox", params={"to": to} if to else None):
        click.echo(json.dumps(message, ensure_ascii=False))
