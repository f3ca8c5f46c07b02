"""`serve --no-jobs` + `worker` without credentials: one emulator (serve's), and the worker uses it.
The emulator commands find it on EMULATOR_PORT."""

import json
import time


def outbox_to(cli, external_userid: str) -> list[dict]:
    result = cli.run("emulator", "outbox", "--to", external_userid)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_worker_sends_through_the_emulator_that_serve_runs(cli):
    serve = cli.start("serve", "--no-jobs")
    cli.wait_until_serving(serve)
    worker = cli.start("worker")

    assert cli.run("emulator", "member", "zhangsan", "张三").returncode == 0
    drive = cli.run("emulator", "drive", "customer_adds_guide", "external_userid=wmLi", "userid=zhangsan",
                    "name=李女士")
    assert drive.returncode == 0 and json.loads(drive.stdout)["http_status"] == 200, drive.stdout + drive.stderr

    deadline = time.monotonic() + 30
    while not (messages := outbox_to(cli, "wmLi")) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert worker.poll() is None  # still running: it did not start a second emulator on the same port
    serve_log, worker_log = cli.stop_all()
    assert [m["channel"] for m in messages] == ["welcome"], serve_log + worker_log
    assert "address already in use" not in worker_log
    assert f"emulator of `serve` at http://127.0.0.1:{cli.env['EMULATOR_PORT']}/cgi-bin/" in worker_log


def test_emulator_commands_without_a_running_emulator_name_its_url(cli):
    result = cli.run("emulator", "member", "zhangsan", "张三")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot reach the emulator at http://127.0.0.1:{cli.env['EMULATOR_PORT']}" in result.stderr


def test_a_worker_cannot_find_an_emulator_on_any_free_port(cli):
    result = cli.run("worker", "--burst", EMULATOR_PORT="0")
    assert result.returncode == 1 and "EMULATOR_PORT" in result.stderr and "Traceback" not in result.stderr
