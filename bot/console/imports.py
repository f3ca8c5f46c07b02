"""CSV import through the API (the console's 导入 button): the CLI's importer, all rows or none.

The console reads the file in the browser and sends its text; a file with bad rows answers 422
with one {line, problem} per bad row and imports nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Role
from bot.api.errors import ApiError
from bot.api.spec import ApiCall, api
from bot.stores.directory import stores_changed
from bot.stores.importer import import_guides_csv, import_stores_csv

IMPORTERS = {"stores": import_stores_csv, "guides": import_guides_csv}


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str = Field(min_length=1, max_length=1_500_000, description="the CSV file's text (UTF-8)")


class ImportOut(BaseModel):
    kind: str
    rows: int
    created: int
    updated: int


@api.route("POST", "/api/v1/imports/{kind}", summary="Import stores or guides from CSV text (all rows or none)",
           roles=[Role.HQ_ADMIN], body=ImportIn, response=ImportOut)
async def import_csv(call: ApiCall) -> ImportOut:
    kind = call.path["kind"]
    if kind not in IMPORTERS:
        raise ApiError(404, "unknown_import", "import stores or guides")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{kind}.csv"
        await asyncio.to_thread(path.write_text, call.body.csv, "utf-8")
        try:
            report = await IMPORTERS[kind](call.services.db, path, progress=False)
        except ValueError as exc:  # a missing column
            raise ApiError(422, "bad_csv", str(exc).replace(str(path), f"{kind}.csv"),
                           [{"field": "csv", "problem": str(exc).replace(str(path), f"{kind}.csv")}]) from None
    if not report.ok:
        raise ApiError(422, "bad_rows", f"{len(report.errors)} bad row(s) in {report.rows}; nothing imported",
                       [{"line": line, "problem": problem} for line, problem in report.errors])
    if kind == "stores":
        await stores_changed(call.services.kv)
    return ImportOut(kind=kind, rows=report.rows, created=report.created, updated=report.updated)
