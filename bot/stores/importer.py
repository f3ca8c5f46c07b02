"""CSV import of stores and guides: every row validated first, then all written in one transaction.

A file with any bad row imports nothing; the report lists each bad row with its line number and
what is wrong, so the file can be fixed and imported again. Existing codes/userids are updated.

stores: code,name,city,address,lat,lng,coord_system,status,opening_hours
guides: userid,name,store_code,status,daily_add_limit,working_hours,is_backup
Hours cells: empty (always), JSON, or "mon-fri 10:00-22:00; sat-sun 09:00-23:00".
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from tqdm import tqdm

from bot.stores.hours import InvalidHours, parse_hours_text
from bot.stores.models import Guide, Store
from bot.stores.schemas import GuideIn, StoreIn

HOURS_COLUMNS = {"opening_hours", "working_hours"}
BOOLEAN = {"": False, "0": False, "false": False, "no": False, "否": False,
           "1": True, "true": True, "yes": True, "是": True}


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, problem)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            lines = [f"{self.kind}: {len(self.errors)} bad row(s) in {self.rows}; nothing imported"]
            lines += [f"  line {line}: {problem}" for line, problem in self.errors]
            return "\n".join(lines)
        return f"{self.kind}: {self.rows} row(s), {self.created} created, {self.updated} updated"


def _rows(path: Path, required: set[str]) -> Iterator[tuple[int, dict]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel writes a BOM
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            # DictReader's line_num is the physical line just read: right even with quoted newlines.
            yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}


def _clean(row: dict) -> dict:
    """CSV text → the API model's input: empty cells omitted, hours and booleans parsed."""
    values: dict = {}
    for name, text in row.items():
        if name in HOURS_COLUMNS:
            values[name] = parse_hours_text(text)
        elif name == "is_backup":
            if text.lower() not in BOOLEAN:
                raise InvalidHours(f"is_backup: {text!r} is not yes/no")
            values[name] = BOOLEAN[text.lower()]
        elif text:
            values[name] = text
    return values


def _validate(path: Path, model: type[BaseModel], required: set[str], report: ImportReport,
              progress: bool) -> list[tuple[int, BaseModel]]:
    valid = []
    for line, row in tqdm(_rows(path, required), desc=f"checking {report.kind}", unit=" rows",
                          disable=not progress):
        report.rows += 1
        try:
            valid.append((line, model.model_validate(_clean(row))))
        except InvalidHours as exc:
            report.errors.append((line, str(exc)))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
                                 for e in exc.errors())
            report.errors.append((line, problems))
    return valid


def _duplicates(valid: list[tuple[int, BaseModel]], key: str, report: ImportReport) -> None:
    first: dict[str, int] = {}
    for line, item in valid:
        value = getattr(item, key)
        if value in first:
            report.errors.append((line, f"{key} {value!r} repeats line {first[value]}"))
        first.setdefault(value, line)


async def import_stores_csv(db, path: Path | str, progress: bool = True) -> ImportReport:
    """Create or update stores from a CSV file; nothing is written if any row is bad."""
    path, report = Path(path), ImportReport("stores")
    valid = _validate(path, StoreIn, {"code", "name"}, report, progress)
    _duplicates(valid, "code", report)
    if report.errors:
        report.errors.sort()
        return report
    async with db.session() as session, session.begin():
        existing = {s.code: s for s in (await session.scalars(select(Store))).all()}
        for _, item in tqdm(valid, desc="writing stores", unit=" rows", disable=not progress):
            values = item.model_dump(exclude={"coord_system"})
            _upsert(session, existing.get(item.code), Store, values, report)
    return report


async def import_guides_csv(db, path: Path | str, progress: bool = True) -> ImportReport:
    """Create or update guides from a CSV file; their stores must exist already."""
    path, report = Path(path), ImportReport("guides")
    valid = _validate(path, GuideIn, {"userid", "name", "store_code"}, report, progress)
    _duplicates(valid, "userid", report)
    async with db.session() as session, session.begin():
        stores = set((await session.scalars(select(Store.code))).all())
        for line, item in valid:
            if item.store_code not in stores:
                report.errors.append((line, f"store_code {item.store_code!r} does not exist"))
        if report.errors:
            report.errors.sort()
            return report
        existing = {g.userid: g for g in (await session.scalars(select(Guide))).all()}
        for _, item in tqdm(valid, desc="writing guides", unit=" rows", disable=not progress):
            _upsert(session, existing.get(item.userid), Guide, item.model_dump(), report)
    return report


def _upsert(session, row, model, values: dict, report: ImportReport) -> None:
    if row is None:
        session.add(model(**values))
        report.created += 1
    else:
        for name, value in values.items():
            setattr(row, name, value)
        report.updated += 1
