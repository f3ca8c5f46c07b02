"""The README's scene, run as written (bash, and zsh when installed) against a real `serve`."""

import json
import shutil
import subprocess
import time

import pytest

from tests.dx.conftest import ROOT, WA

SHELLS = ["bash"] + (["zsh"] if shutil.which("zsh") else [])


def readme_scene() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Play a scene without WeCom"):]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def run_in_shell(shell: str, script: str, cli) -> subprocess.CompletedProcess:
    """Line by line as typed at a prompt: aliases expand; zsh's `#` is no comment and `?` globs."""
    if shell == "bash":
        command = ["bash", "-O", "expand_aliases", "-e", "-s"]
    else:
        command, script = ["zsh", "-f", "-i", "-s"], "setopt err_exit\n" + script
    return subprocess.run(command, input=script, cwd=cli.cwd, env=cli.env, capture_output=True, text=True,
                          timeout=180)


def until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("shell", SHELLS)
def test_the_readme_scene_binds_tags_and_answers(cli, shell):
    import urllib.request

    serve = cli.start("serve")
    cli.wait_until_serving(serve)
    script = (readme_scene()
              .replace("alias wa=.venv/bin/wecom-assistant", f"alias wa={WA}")
              .replace("localhost:8080", f"localhost:{cli.port}")
              + 'echo "TOKEN=$TOKEN"\n')
    result = run_in_shell(shell, script, cli)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '{"error"' not in result.stdout and f"{shell}:" not in result.stderr, result.stderr
    token = result.stdout.rsplit("TOKEN=", 1)[1].strip()

    def outbox():
        lines = cli.run("emulator", "outbox", "--to", "wmLi").stdout.splitlines()
        return len(lines) >= 2 and [json.loads(line) for line in lines]

    welcome, answer = until(outbox)
    assert welcome["channel"] == "welcome" and "新人" in welcome["text"]["content"]
    assert answer["channel"] == "kf" and "100 积分" in answer["text"]["content"]

    def customer():
        request = urllib.request.Request(f"http://127.0.0.1:{cli.port}/api/v1/customers/wmLi",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            body = json.load(response)
        return body["tags"] and body

    body = until(customer)
    assert (body["status"], body["guide_userid"], body["store_code"], body["channel_code"], body["tags"]) == (
        "bound", "zhangsan", "SH01", "poster", ["门店海报"])
