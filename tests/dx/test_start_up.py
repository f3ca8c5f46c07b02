"""Start-up problems are one line naming the cause, never a traceback."""

import logging
import socket

import pytest

from bot.config import Settings, public_base_url_is_loopback, warn_about_risky_settings


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_an_unknown_log_level_is_named(cli):
    error = one_line_error(cli.run("serve", LOG_LEVEL="LOUD"))
    assert "LOG_LEVEL" in error and "INFO" in error


def test_a_public_url_that_is_no_url_is_named():
    from bot.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL: must be an http"):
        load_settings(_env_file=None, public_base_url="guide.example.com")
    assert load_settings(_env_file=None, public_base_url="https://a.example.com/").public_base_url == (
        "https://a.example.com")


def test_the_service_port_in_use_is_named(cli):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", cli.port))
        taken.listen()
        error = one_line_error(cli.run("serve"))
    assert f"PORT: port {cli.port} is already in use" in error


def test_the_emulator_port_in_use_is_named(cli):
    emulator_port = int(cli.env["EMULATOR_PORT"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", emulator_port))
        taken.listen()
        error = one_line_error(cli.run("serve"))
    assert f"EMULATOR_PORT: port {emulator_port} is already in use" in error


@pytest.mark.parametrize("command", [["serve"], ["worker", "--burst"], ["db", "upgrade"],
                                     ["token", "create", "--role", "hq_admin"]])
def test_an_unreachable_database_is_named_without_its_password(cli, command):
    error = one_line_error(cli.run(*command, DATABASE_URL="postgresql://postgres:s3cret@127.0.0.1:1/wa"))
    assert "DATABASE_URL: cannot reach the database" in error and "127.0.0.1:1/wa" in error
    assert "s3cret" not in error


def test_an_unreachable_redis_is_named(cli):
    error = one_line_error(cli.run("worker", "--burst", REDIS_URL="redis://127.0.0.1:1/0"))
    assert "REDIS_URL: cannot reach Redis" in error


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8080", True), ("http://localhost:8080", True), ("http://[::1]:8080/", True),
    ("http://0.0.0.0:8080", True), ("https://guide.example.com", False), ("http://10.0.0.5:8080", False),
])
def test_public_base_url_on_loopback_is_recognised(url, loopback):
    assert public_base_url_is_loopback(Settings(_env_file=None, public_base_url=url)) is loopback


REAL = dict(wecom_corp_id="ww1", wecom_agent_id=1, wecom_secret="s", wecom_token="t",
            wecom_encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")


def test_real_credentials_with_a_loopback_public_url_warn(caplog):
    log = logging.getLogger("test.dx")
    with caplog.at_level(logging.WARNING, "test.dx"):
        warn_about_risky_settings(Settings(_env_file=None, **REAL), log)
        warn_about_risky_settings(Settings(_env_file=None), log)  # the emulator: localhost is right
        warn_about_risky_settings(Settings(_env_file=None, public_base_url="https://a.example.com", **REAL), log)
    assert [r.getMessage().split(" is ")[0] for r in caplog.records] == ["PUBLIC_BASE_URL"]


def test_serve_warns_at_start_up_about_a_loopback_public_url(cli):
    real = {name.upper(): str(value) for name, value in REAL.items()}
    process = cli.start("serve", "--no-jobs", **real)
    cli.wait_until_serving(process)
    (output,) = cli.stop_all()
    assert "PUBLIC_BASE_URL is http://127.0.0.1:8080 while real WeCom credentials are set" in output


def test_a_standalone_emulator_on_a_port_in_use_says_so(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = one_line_error(cli.run("emulator", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in error and "already in use" in error
