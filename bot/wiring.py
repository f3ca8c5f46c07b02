"""What a feature adds to the service, as a value; the app's composition (bot/features.py) lists them.

A feature package exposes one `Feature`: its dispatcher routers, its job functions (declared with
`@tasks`), its API route functions (declared with `@api.route`), its recurring jobs (`cron(...)`),
its model modules (for the metadata), its web pages and CLI commands, and its configuration
classes (read from the environment once, when the process opens its services). Nothing registers
itself when imported: `Wiring` puts the lists together for `create_app`, the worker and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bot.dispatcher import Dispatcher, Router
from bot.jobs.cron import CronJob, install_cron_jobs
from bot.jobs.registry import tasks


@dataclass(frozen=True)
class Feature:
    name: str
    routers: Sequence[Router] = ()  # in the order the dispatcher tries them
    jobs: Sequence[Callable] = ()  # functions declared with @tasks(kind, ...)
    routes: Sequence[Callable] = ()  # functions declared with @api.route(...)
    cron: Sequence[CronJob] = ()
    models: Sequence[ModuleType] = ()  # modules whose tables join Base.metadata
    pages: Sequence[Callable[[Any], None]] = ()  # setup(app) for web routes outside the admin API
    commands: Sequence[Any] = ()  # click commands added to `wecom-assistant`
    sign_in: Callable | None = None  # (request, db) -> Principal | None for a caller without a token
    # Settings classes (pydantic BaseSettings, e.g. MEMBERS_*): `open_services` reads each once and
    # the feature's code asks its services for it (`services.config(MembersConfig)`).
    configs: Sequence[type] = ()
    # What this feature does for a lower one that asks by name (the lower one cannot import it):
    # e.g. the members feature gives the customers' welcome its new-member benefit.
    provides: Mapping[str, Callable] = field(default_factory=dict)


@dataclass(frozen=True)
class Wiring:
    """The features of one process, put together."""

    features: tuple[Feature, ...]

    def _all(self, name: str) -> list:
        return [item for feature in self.features for item in getattr(feature, name)]

    @property
    def routers(self) -> list[Router]:
        return self._all("routers")

    @property
    def jobs(self) -> list[Callable]:
        return self._all("jobs")

    @property
    def routes(self) -> list[Callable]:
        return self._all("routes")

    @property
    def cron(self) -> list[CronJob]:
        return self._all("cron")

    @property
    def pages(self) -> list[Callable]:
        return self._all("pages")

    @property
    def commands(self) -> list:
        return self._all("commands")

    @property
    def configs(self) -> list[type]:
        return list(dict.fromkeys(self._all("configs")))  # once each, in the features' order

    @property
    def sign_in(self) -> Callable | None:
        found = [feature.sign_in for feature in self.features if feature.sign_in is not None]
        if len(found) > 1:
            raise ValueError("two features say how a person signs in")
        return found[0] if found else None

    def provided(self, name: str) -> Callable | None:
        """What a feature of this process provides under `name`; None when none does."""
        found = [feature.provides[name] for feature in self.features if name in feature.provides]
        if len(found) > 1:
            raise ValueError(f"two features provide {name!r}")
        return found[0] if found else None

    def dispatcher(self, middlewares: list) -> Dispatcher:
        dispatcher = Dispatcher(middlewares=middlewares)
        for router in self.routers:
            dispatcher.include_router(router)
        return dispatcher

    def install_jobs(self) -> None:
        """Make this process able to run (and enqueue with their options) the features' jobs."""
        tasks.install(self.jobs)
        install_cron_jobs(self.cron)


NO_FEATURES = Wiring(())


def provided(services, name: str) -> Callable | None:
    """What a feature of `services`' process provides under `name` (None without one)."""
    wiring = getattr(services, "wiring", None)
    return wiring.provided(name) if wiring is not None else None
