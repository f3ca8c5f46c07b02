"""The built console at /console/ (cache headers, history routing) and the CSV import route."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.console import views
from bot.services import SERVICES
from bot.stores.models import Store

STORE_HEADER = "code,name,city,address,lat,lng,coord_system,status,opening_hours\n"


@pytest.fixture
def built(tmp_path, monkeypatch):
    """A stand-in build, so these tests do not depend on npm having run."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=app></div>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "favicon.ico").write_bytes(b"\0")
    (tmp_path.parent / "secret.txt").write_text("outside the build")
    monkeypatch.setattr(views, "STATIC", tmp_path)
    return tmp_path


async def test_index_is_no_cache_and_hashed_assets_are_immutable(console, built):
    index = await console.get("/console/")
    assert index.status == 200 and "id=app" in await index.text()
    assert index.headers["Cache-Control"] == "no-cache"
    asset = await console.get("/console/assets/index-abc123.js")
    assert asset.status == 200
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"


async def test_app_routes_answer_the_index_and_missing_assets_404(console, built):
    page = await console.get("/console/customers/wmShanghai")
    assert page.status == 200 and page.headers["Cache-Control"] == "no-cache"
    assert (await console.get("/console/assets/gone-000.js")).status == 404
    redirect = await console.get("/console", allow_redirects=False)
    assert redirect.status == 308 and redirect.headers["Location"] == "/console/"


async def test_paths_outside_the_build_are_not_served(console, built):
    answer = await console.get("/console/%2e%2e/secret.txt")
    assert "outside the build" not in await answer.text()


async def test_without_a_build_the_console_says_how_to_build_it(console, tmp_path, monkeypatch):
    monkeypatch.setattr(views, "STATIC", tmp_path / "missing")
    answer = await console.get("/console/")
    assert answer.status == 503
    assert "npm" in await answer.text()


async def count_stores(console) -> int:
    async with console.app[SERVICES].db.session() as session:
        return await session.scalar(select(func.count()).select_from(Store))


async def test_a_csv_with_bad_rows_imports_nothing_and_names_the_lines(sign_in, console):
    hq = await sign_in("hq")
    csv = STORE_HEADER + "GZ001,广州店,广州,,,,gcj02,open,\n,无编码,广州,,,,gcj02,open,\nGZ003,坐标,广州,,91,120,gcj02,open,\n"
    answer = await hq.client.post("/api/v1/imports/stores", json={"csv": csv}, headers=hq.headers())
    assert answer.status == 422
    error = (await answer.json())["error"]
    assert error["code"] == "bad_rows"
    assert [d["line"] for d in error["details"]] == [3, 4]
    assert await count_stores(console) == 2


async def test_a_good_csv_imports_every_row(sign_in, console):
    hq = await sign_in("hq")
    csv = STORE_HEADER + "GZ001,广州店,广州,,,,gcj02,open,mon-fri 10:00-22:00\nSH001,上海人民广场店（新）,上海,,,,gcj02,open,\n"
    answer = await hq.client.post("/api/v1/imports/stores", json={"csv": csv}, headers=hq.headers())
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {"kind": "stores", "rows": 2, "created": 1, "updated": 1}
    assert await count_stores(console) == 3


async def test_a_csv_missing_columns_is_422_naming_them(sign_in):
    hq = await sign_in("hq")
    answer = await hq.client.post("/api/v1/imports/guides", json={"csv": "userid,name\nx,y\n"}, headers=hq.headers())
    assert answer.status == 422
    assert "store_code" in (await answer.json())["error"]["message"]


async def test_store_managers_cannot_import(sign_in):
    sh = await sign_in("sh")
    answer = await sh.client.post("/api/v1/imports/stores", json={"csv": STORE_HEADER}, headers=sh.headers())
    assert answer.status == 403


def test_the_first_app_of_a_process_has_the_import_route():
    """`serve` builds one app: the route must be registered before create_app adds the API table."""
    import subprocess
    import sys

    probe = ("from bot.app import create_app; from bot.config import Settings; "
             "app = create_app(Settings(_env_file=None), run_jobs=False); "
             "print(sorted(r.resource.canonical for r in app.router.routes() if 'imports' in r.resource.canonical))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "['/api/v1/imports/{kind}']"
