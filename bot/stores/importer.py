"""CSV import of stores and guides: every row validated first, then all written in one transaction.

A file with any bad row imports nothing; the report lists each bad row with its line number and
what is wrong, so the file can be fixed and imported again. Existing codes/userids are updated.

stores: code,name,city,address,lat,lng,coord_system,status,opening_hours
guides: userid,name,store_code,status,daily_add_limit,working_hours,is_backup
Hours cells: empty (always), JSON, or "mon-fri 10:00-22:00; sat-sun 09:00-23:00".
Files are UTF-8 (with or without Excel's BOM) or GB18030/GBK, what Excel saves on a Chinese Windows.
"""

from __future__ import annotations

import csv
import io
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
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, its problems)
    encoding: str = "utf-8"

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            lines = [f"{self.kind}: {len(self.errors)} bad row(s) in {self.rows}; nothing imported"]
            lines += [f"  line {line}: {problem}" for line, problem in self.errors]
            return "\n".join(lines)
        read_as = "" if self.encoding.startswith("utf-8") else f" (read as {self.encoding.upper()})"
        return f"{self.kind}: {self.rows} row(s), {self.created} created, {self.updated} updated{read_as}"


ENCODINGS = ("utf-8-sig", "gb18030")  # utf-8-sig also reads UTF-8 without a BOM


def read_csv_text(path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was read with; ValueError saying how to fix the file."""
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: not UTF-8 or GBK text; in Excel use 另存为 → 「CSV UTF-8（逗号分隔）」"
                     " (Save As → CSV UTF-8) and import that file")


def _rows(path: Path, required: set[str], report: ImportReport) -> Iterator[tuple[int, dict]]:
    text, report.encoding = read_csv_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = required - {name.strip() for name in reader.fieldnames or []}
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    for row in reader:
        # DictReader's line_num is the physical line just read: right even with quoted newlines.
        yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}


def _clean(row: dict) -> tuple[dict, list[str]]:
    """CSV text → the API model's input (empty cells omitted, hours and booleans parsed), and the
    problems of the cells that could not be parsed (left out, so the model reports the rest)."""
    values: dict = {}
    problems: list[str] = []
    for name, text in row.items():
        try:
            if name in HOURS_COLUMNS:
                values[name] = parse_hours_text(text)
            elif name == "is_backup":
                if text.lower() not in BOOLEAN:
                    raise InvalidHours(f"is_backup: {text!r} is not yes/no")
                values[name] = BOOLEAN[text.lower()]
            elif text:
                values[name] = text
        except InvalidHours as exc:
            problems.append(str(exc) if str(exc).startswith(name) else f"{name}: {exc}")
    return values, problems


def _validate(path: Path, model: type[BaseModel], required: set[str], report: ImportReport,
              progress: bool) -> tuple[list[tuple[int, BaseModel]], list[tuple[int, dict]], dict[int, list[str]]]:
    """(valid rows, every row as read, problems by line): all of each row's problems, not the first."""
    valid, raw, problems = [], [], {}
    for line, row in tqdm(_rows(path, required, report), desc=f"checking {report.kind}", unit=" rows",
                          disable=not progress):
        report.rows += 1
        raw.append((line, row))
        values, row_problems = _clean(row)
        try:
            item = model.model_validate(values)
        except ValidationError as exc:
            row_problems += [f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors()]
        else:
            if not row_problems:
                valid.append((line, item))
        if row_problems:
            problems[line] = row_problems
    return valid, raw, problems


def _duplicates(raw: list[tuple[int, dict]], key: str, problems: dict[int, list[str]]) -> None:
    first: dict[str, int] = {}
    for line, row in raw:
        value = row.get(key, "")
        if value and value in first:
            problems.setdefault(line, []).append(f"{key} {value!r} repeats line {first[value]}")
        first.setdefault(value, line)


def _report_problems(problems: dict[int, list[str]], report: ImportReport) -> None:
    report.errors = [(line, "; ".join(found)) for line, found in sorted(problems.items())]


async def import_stores_csv(db, path: Path | str, progress: bool = True) -> ImportReport:
    """Create or update stores from a CSV file; nothing is written if any row is bad."""
    path, report = Path(path), ImportReport("stores")
    valid, raw, problems = _validate(path, StoreIn, {"code", "name"}, report, progress)
    _duplicates(raw, "code", problems)
    _report_problems(problems, report)
    if report.errors:
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
    valid, raw, problems = _validate(path, GuideIn, {"userid", "name", "store_code"}, report, progress)
    _duplicates(raw, "userid", problems)
    async with db.session() as session, session.begin():
        stores = set((await session.scalars(select(Store.code))).all())
        for line, row in raw:
            if row.get("store_code") and row["store_code"] not in stores:
                problems.setdefault(line, []).append(f"store_code {row['store_code']!r} does not exist")
        _report_problems(problems, report)
        if report.errors:
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
