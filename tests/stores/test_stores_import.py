"""CSV import: line-numbered reports, all-or-nothing, updates, datums, and the click commands."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.stores.cli import import_group
from bot.stores.importer import import_guides_csv, import_stores_csv
from bot.stores.models import Guide, Store

STORES_CSV = """code,name,city,address,lat,lng,coord_system,status,opening_hours
SH001,人民广场店,上海,南京东路1号,31.2304,121.4737,gcj02,open,mon-fri 10:00-22:00; sat-sun 09:00-23:00
SH002,静安寺店,上海,"南京西路1618号, 3楼",31.2236,121.4452,,paused,
BJ001,王府井店,北京,王府井大街1号,39.911954,116.377817,wgs84,open,"{""mon"": [""10:00-21:00""]}"
"""

BAD_STORES_CSV = """code,name,city,address,lat,lng,coord_system,status,opening_hours
OK1,好店,上海,,31.23,121.47,gcj02,open,
BAD1,坐标错,上海,,95,121.47,gcj02,open,
BAD2,,上海,,31.23,121.47,gcj02,open,
BAD3,时间错,上海,,31.23,121.47,gcj02,open,mon 10:00-25:00
OK1,重复,上海,,31.23,121.47,gcj02,open,
BAD4,坐标系错,上海,,31.23,121.47,utm,open,
"""


async def stores(db) -> dict[str, Store]:
    async with db.session() as session:
        return {s.code: s for s in (await session.scalars(select(Store))).all()}


async def test_import_stores_converts_datums_and_parses_hours(db, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_text(STORES_CSV, encoding="utf-8")
    report = await import_stores_csv(db, path, progress=False)
    assert report.ok and (report.rows, report.created, report.updated) == (3, 3, 0), report.summary()
    rows = await stores(db)
    assert rows["SH001"].opening_hours["sat"] == ["09:00-23:00"] and "sun" in rows["SH001"].opening_hours
    assert rows["SH002"].opening_hours is None and rows["SH002"].status == "paused"
    assert rows["SH002"].address == "南京西路1618号, 3楼"
    # eviltransform's Beijing vector: stored in GCJ-02.
    assert (rows["BJ001"].lat, rows["BJ001"].lng) == pytest.approx((39.91334545536069, 116.38404722455657), abs=1e-9)

    path.write_text(STORES_CSV.replace("人民广场店", "人民广场旗舰店"), encoding="utf-8")
    again = await import_stores_csv(db, path, progress=False)
    assert (again.created, again.updated) == (0, 3)
    assert (await stores(db))["SH001"].name == "人民广场旗舰店"


async def test_a_bad_row_imports_nothing_and_names_every_line(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_STORES_CSV, encoding="utf-8")
    report = await import_stores_csv(db, path, progress=False)
    assert not report.ok and await stores(db) == {}
    lines = dict(report.errors)
    assert sorted(lines) == [3, 4, 5, 6, 7]
    assert "latitude" in lines[3] and "name" in lines[4] and "not HH:MM-HH:MM" in lines[5]
    assert "repeats line 2" in lines[6] and "coord_system" in lines[7]
    assert "nothing imported" in report.summary() and "line 5:" in report.summary()


async def test_guides_need_existing_stores(db, tmp_path):
    (tmp_path / "stores.csv").write_text(STORES_CSV, encoding="utf-8")
    await import_stores_csv(db, tmp_path / "stores.csv", progress=False)
    guides = tmp_path / "guides.csv"
    guides.write_text("userid,name,store_code,status,daily_add_limit,working_hours,is_backup\n"
                      "ann,安娜,SH001,active,30,mon-sun 10:00-22:00,no\n"
                      "bo,薄波,SH404,active,30,,yes\n"
                      "cy,陈阳,SH001,away,-1,,maybe\n", encoding="utf-8")
    report = await import_guides_csv(db, guides, progress=False)
    assert [line for line, _ in report.errors] == [3, 4]
    assert "SH404" in report.errors[0][1] and "is_backup" in report.errors[1][1]
    async with db.session() as session:
        assert (await session.scalars(select(Guide))).all() == []

    guides.write_text("userid,name,store_code,daily_add_limit,is_backup\nann,安娜,SH001,30,是\n", encoding="utf-8")
    report = await import_guides_csv(db, guides, progress=False)
    assert report.ok and report.created == 1
    async with db.session() as session:
        ann = await session.scalar(select(Guide))
    assert (ann.daily_add_limit, ann.is_backup, ann.working_hours) == (30, True, None)


async def test_missing_columns_is_a_clear_error(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("code,city\nS1,上海\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        await import_stores_csv(db, path, progress=False)


async def test_cli_commands_exit_non_zero_on_bad_rows(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(STORES_CSV, encoding="utf-8")
    bad.write_text(BAD_STORES_CSV, encoding="utf-8")
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, import_group, ["stores", str(bad), "--quiet"])
    assert result.exit_code == 1 and "line 3:" in result.output
    result = await asyncio.to_thread(runner.invoke, import_group, ["stores", str(good)])
    assert result.exit_code == 0 and "3 created" in result.output
    result = await asyncio.to_thread(runner.invoke, import_group, ["guides", str(tmp_path / "none.csv")])
    assert result.exit_code == 2  # click: the file does not exist
