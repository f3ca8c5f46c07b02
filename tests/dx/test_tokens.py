"""`token create` checks its store and guide; `token list` and `token revoke`."""

import json


def import_store_and_guide(cli, tmp_path) -> None:
    (tmp_path / "stores.csv").write_text("code,name\nSH01,静安店\n", encoding="utf-8")
    (tmp_path / "guides.csv").write_text("userid,name,store_code\nzhangsan,张三,SH01\n", encoding="utf-8")
    for kind in ("stores", "guides"):
        result = cli.run("import", kind, str(tmp_path / f"{kind}.csv"), "--quiet")
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_token_for_a_store_or_guide_that_does_not_exist_is_refused(cli, tmp_path):
    import_store_and_guide(cli, tmp_path)
    result = cli.run("token", "create", "--role", "store_manager", "--store", "SH01", "--store", "NOPE")
    assert result.returncode == 2 and "--store: no store with code 'NOPE'" in result.stderr
    result = cli.run("token", "create", "--role", "guide", "--guide", "lisi")
    assert result.returncode == 2 and "--guide: no guide with userid 'lisi'" in result.stderr
    assert cli.run("token", "list").stdout == ""  # nothing was created

    assert cli.run("token", "create", "--role", "store_manager", "--store", "SH01").returncode == 0
    assert cli.run("token", "create", "--role", "guide", "--guide", "zhangsan").returncode == 0


def test_tokens_are_listed_without_their_secret_and_revoked_by_id(cli):
    created = cli.run("token", "create", "--role", "hq_admin", "--name", "总部")
    secret = created.stdout.split()[-1]
    listing = cli.run("token", "list").stdout
    listed = [json.loads(line) for line in listing.splitlines()]
    assert [(t["role"], t["name"], t["revoked_at"]) for t in listed] == [("hq_admin", "总部", None)]
    assert secret not in listing and "hash" not in listing

    revoked = cli.run("token", "revoke", str(listed[0]["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert cli.run("token", "list").stdout == ""
    (row,) = [json.loads(line) for line in cli.run("token", "list", "--all").stdout.splitlines()]
    assert row["revoked_at"] is not None

    again = cli.run("token", "revoke", str(listed[0]["id"]))
    assert again.returncode == 1 and "does not exist or is already revoked" in again.stderr

