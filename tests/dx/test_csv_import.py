"""CSV import reads what Excel saves on a Chinese Windows (GBK) and reports every problem of a row."""

import pytest

from bot.stores.importer import import_guides_csv, import_stores_csv

STORES = "code,name,city,lat,lng,opening_hours\nSH01,人民广场店,上海,31.2304,121.4737,mon-fri 10:00-22:00\n"


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
async def test_utf8_and_gbk_files_are_read(db, tmp_path, encoding):
    path = tmp_path / "stores.csv"
    path.write_bytes(STORES.encode(encoding))
    report = await import_stores_csv(db, path, progress=False)
    assert report.ok and report.created == 1, report.summary()
    assert ("read as GB18030" in report.summary()) is encoding.startswith("gb")
    async with db.session() as session:
        from bot.stores.models import Store

        assert (await session.get(Store, 1)).name == "人民广场店"


async def test_a_file_in_neither_encoding_says_how_to_save_it(db, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_bytes(b"code,name\nS1,\xff\xfe\x80\x80\n")
    with pytest.raises(ValueError, match="CSV UTF-8"):
        await import_stores_csv(db, path, progress=False)


async def test_every_problem_of_a_row_is_reported(db, tmp_path):
    (tmp_path / "stores.csv").write_text("code,name\nSH01,静安店\n", encoding="utf-8")
    await import_stores_csv(db, tmp_path / "stores.csv", progress=False)
    guides = tmp_path / "guides.csv"
    guides.write_text("userid,name,store_code,status,daily_add_limit,working_hours,is_backup\n"
                      "ann,安娜,SH01,active,30,,no\n"
                      "ann,,SH404,away,-1,mon 10:00-25:00,maybe\n", encoding="utf-8")
    report = await import_guides_csv(db, guides, progress=False)
    ((line, problems),) = report.errors
    assert line == 3
    for field in ("working_hours", "is_backup", "name", "status", "daily_add_limit", "repeats line 2", "SH404"):
        assert field in problems, problems


async def test_a_bad_hours_cell_does_not_hide_the_other_problems_of_a_store(db, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_text("code,name,status,opening_hours\nSH01,,closed-ish,mon 10:00-25:00\n", encoding="utf-8")
    report = await import_stores_csv(db, path, progress=False)
    ((line, problems),) = report.errors
    assert line == 2 and "opening_hours" in problems and "name" in problems and "status" in problems
