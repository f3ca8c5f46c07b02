"""Deployment files: every setting documented in .env.example with its real default; health checks
only where something answers HTTP."""

import re

import pytest

from bot.config import Settings
from bot.members.config import MembersConfig
from sop.engine.config import SopConfig
from sop.outreach.config import OutreachConfig
from tests.dx.conftest import ROOT

EXAMPLE = dict(re.findall(r"(?m)^# ([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(encoding="utf-8")))


SETTINGS = [(Settings, "", name) for name in Settings.model_fields] + [
    (MembersConfig, "MEMBERS_", name) for name in MembersConfig.model_fields] + [
    (OutreachConfig, "OUTREACH_", name) for name in OutreachConfig.model_fields] + [
    (SopConfig, "SOP_", name) for name in SopConfig.model_fields]


@pytest.mark.parametrize(("model", "prefix", "field"), SETTINGS, ids=[p + f.upper() for _, p, f in SETTINGS])
def test_every_setting_is_in_env_example_with_its_default(monkeypatch, model, prefix, field):
    name = prefix + field.upper()
    assert name in EXAMPLE, f"{name} is missing from .env.example"
    for variable in [*EXAMPLE, name]:
        monkeypatch.delenv(variable, raising=False)
    default = getattr(model(_env_file=None), field)
    if EXAMPLE[name] == "":
        assert default in ("", None), f"{name}: .env.example shows it unset, the default is {default!r}"
    else:
        monkeypatch.setenv(name, EXAMPLE[name])
        assert getattr(model(_env_file=None), field) == default, f"{name}: .env.example says {EXAMPLE[name]}"


def services(compose: str) -> dict[str, str]:
    body = compose.split("\nservices:\n", 1)[1].split("\nvolumes:", 1)[0]
    return dict(re.findall(r"(?ms)^  ([a-z0-9]+):\n(.*?)(?=^  [a-z0-9]+:\n|\Z)", body))


def test_health_checks_only_on_the_web_services():
    assert not re.search(r"(?m)^HEALTHCHECK", (ROOT / "Dockerfile").read_text())  # the image also runs workers
    blocks = services((ROOT / "docker-compose.yml").read_text())
    assert {name for name, block in blocks.items() if "healthcheck: *web-healthcheck" in block} == {"web1", "web2"}
    assert all("healthcheck" not in blocks[name] for name in ("worker1", "worker2", "migrate"))
