"""The process's resources, opened and closed in one place (web app, worker and CLI share it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot.config import Settings, use_timezone
from bot.dispatcher import Dispatcher
from bot.dispatcher.middleware import customer_lock, db_session, log_context
from bot.jobs.cron import CronJob, seed_cron_jobs
from bot.kv import KeyValueStore, open_store
from bot.storage import Database
from bot.storage.migrate import upgrade
from bot.wecom.client import WeComClient
from bot.wecom.crypto import CallbackCrypto
from bot.wiring import NO_FEATURES, Wiring

log = logging.getLogger("bot")

C = TypeVar("C")


@dataclass
class Services:
    settings: Settings
    db: Database
    kv: KeyValueStore
    http: aiohttp.ClientSession
    wecom: WeComClient
    callback_crypto: CallbackCrypto
    dispatcher: Dispatcher
    wiring: Wiring = NO_FEATURES
    inbox: object | None = None  # the callback InboxWriter of a web process (bot/callback/intake.py)
    runner: object | None = None  # the in-process JobRunner, when this process runs one
    emulator: object | None = field(default=None, repr=False)
    configs: dict[type, Any] = field(default_factory=dict, repr=False)  # the features' settings, by class

    def config(self, kind: type[C]) -> C:
        """This process's settings of one feature (e.g. `services.config(MembersConfig)`): read
        when the services were opened; a class no listed feature declares is read on first use."""
        if kind not in self.configs:
            self.configs[kind] = kind()
        return self.configs[kind]

    def use_config(self, config: object) -> None:
        """Replace the settings of `config`'s class (tests give the service their own)."""
        self.configs[type(config)] = config

    def wake_runner(self) -> None:
        if self.runner is not None:
            self.runner.notify()


SERVICES = web.AppKey("services", Services)


def build_dispatcher(wiring: Wiring = NO_FEATURES) -> Dispatcher:
    return wiring.dispatcher(middlewares=[log_context, customer_lock, db_session])


async def _schedule_recurring_jobs(db: Database, timezone: str, jobs: list[CronJob]) -> None:
    """The next occurrence of every cron job (housekeeping, retention); idempotent per occurrence."""
    try:
        async with db.session() as session, session.begin():
            await seed_cron_jobs(session, timezone, jobs=jobs)
    except Exception as exc:  # the database may be down at start; /readyz says so, WeCom retries
        log.warning("could not schedule the recurring jobs: %s", exc)


def read_configs(kinds: Iterable[type], *, given: Iterable[object] = ()) -> dict[type, Any]:
    """The features' settings by class: the given ones, the others read from the environment."""
    configs = {type(config): config for config in given}
    for kind in kinds:
        if kind not in configs:
            configs[kind] = kind()
    return configs


@asynccontextmanager
async def open_services(settings: Settings, *, wiring: Wiring = NO_FEATURES, migrate: bool | None = None,
                        configs: Iterable[object] = ()):
    """Open DB, KV, HTTP session and WeCom client (starting the emulator when there are no
    WeCom credentials); apply migrations on the embedded default or when asked. `wiring` is the
    features this process serves (bot/features.py): their routers, jobs, recurring jobs and
    settings classes (read from the environment here, once, unless `configs` gives one)."""
    wiring.install_jobs()
    feature_configs = read_configs(wiring.configs, given=configs)
    use_timezone(settings.timezone)  # dates in messages and statistics read it (bot.config.corp_zone)
    emulator = None
    if settings.uses_emulator:
        from bot.emulated_wecom import start_embedded_emulator

        emulator = await start_embedded_emulator(settings)
        settings = settings.with_emulator_credentials(emulator.api_base_url)
        log.warning("no WeCom credentials configured: using the built-in WeCom emulator at %s",
                    emulator.base_url)
    if migrate if migrate is not None else settings.is_sqlite:
        await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    kv = open_store(settings.redis_url, settings.redis_key_prefix)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    secrets = {"app": settings.wecom_secret}
    if settings.wecom_contact_secret:
        secrets["contact"] = settings.wecom_contact_secret
    if settings.wecom_kf_secret:
        secrets["kf"] = settings.wecom_kf_secret
    wecom = WeComClient(
        http, kv,
        base_url=settings.wecom_api_base_url,
        corp_id=settings.wecom_corp_id,
        secrets=secrets,
        agent_id=settings.wecom_agent_id,
        calls_per_minute=settings.wecom_api_calls_per_minute,
    )
    services = Services(
        settings=settings,
        db=db,
        kv=kv,
        http=http,
        wecom=wecom,
        callback_crypto=CallbackCrypto(
            settings.wecom_token, settings.wecom_encoding_aes_key, settings.wecom_corp_id,
            settings.wecom_callback_max_skew_seconds,
        ),
        dispatcher=build_dispatcher(wiring),
        wiring=wiring,
        emulator=emulator,
        configs=feature_configs,
    )
    if emulator is not None:
        emulator.attach(services)
    await _schedule_recurring_jobs(db, settings.timezone, wiring.cron)
    try:
        yield services
    finally:
        await http.close()
        await kv.close()
        await db.dispose()
        if emulator is not None:
            await emulator.stop()
