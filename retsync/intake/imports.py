"""Importing a return service's export (CSV or XLSX) into a manual channel, through a column mapping in TOML.

What a merchant gets from Wygodne Zwroty, InPost Szybkie Zwroty, Reet or a shop's returns module is a file, not
an API; the same file (or a later export overlapping it) is imported again and again. So:

- Every row names its return by a natural key (the mapping's `natural_key`, or the channel's): rows with the same
  key are one return (one row per item), and importing them again updates that return, never adds a second.
- A row that cannot be read is reported with its line number (the row number in a spreadsheet) and why; the
  return it belongs to is left out whole (a return is never half-written), and every other return of the file
  is written, all in one transaction.
- Polish exports are read as they come: UTF-8 with or without a BOM, or Windows-1250; `;` or `,` or tabs;
  dates as 06.12.2026 or 2026-12-06 14:30 in the merchant's time zone; amounts as `1 234,56 zł`.
- `dry_run` reads, checks and merges exactly as an import does, and writes nothing.

The mappings shipped (`retsync/intake/mappings/*.toml`) are named in the README; a merchant's own is a TOML file
of the same shape.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from retsync.intake.records import IntakeWriter, Written
from retsync.kit.model import Customer, DecisionKind, Return, ReturnLine, ReturnReason, ReturnStatus
from retsync.kit.reasons import reason_from_words
from retsync.kit.settings import ChannelSettings
from retsync.store.pages import refusal

FIELDS = ("return_id", "order", "sku", "ean", "title", "quantity", "reason", "comment", "email", "name", "phone",
          "postcode", "created_at", "received_at", "tracking", "carrier", "status", "refund_amount", "unit_price",
          "currency")
"""What a column can be mapped to."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""An export larger than this is refused rather than read into memory: no return service exports that much."""


class ImportProblem(ValueError):
    """The file or its mapping cannot be imported at all; nothing was written."""


class ColumnMapping(BaseModel):
    """One mapping file: where each field is found, how the export's words read."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    extends: str | None = None
    natural_key: list[str] = Field(default_factory=lambda: ["return_id"], min_length=1)
    columns: dict[str, list[str]] = Field(default_factory=dict)
    statuses: dict[str, ReturnStatus] = Field(default_factory=dict)
    decisions: dict[str, DecisionKind] = Field(default_factory=dict)
    timezone: str = "Europe/Warsaw"
    currency: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None


def fold(value: str) -> str:
    """A header or a word without case, accents, spaces or punctuation: `Numer zamówienia` = `numer_zamowienia`."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", value.casefold()) if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "", plain.replace("ł", "l"))


def shipped_mappings() -> list[str]:
    folder = resources.files("retsync.intake").joinpath("mappings")
    return sorted(path.name[:-5] for path in folder.iterdir() if path.name.endswith(".toml")) if folder.is_dir() else []


def _read_mapping_text(name: str, base: Path | None) -> tuple[str, str]:
    if name in shipped_mappings():
        return f"the shipped mapping {name}", resources.files("retsync.intake").joinpath(
            "mappings", f"{name}.toml").read_text(encoding="utf-8")
    path = Path(name).expanduser()
    if not path.is_absolute() and base is not None and not path.exists():
        path = base / path
    if not path.exists():
        raise ImportProblem(f"mapping {name!r} is neither a shipped one ({', '.join(shipped_mappings())}) nor a "
                            f"file that exists")
    return str(path), path.read_text(encoding="utf-8")


def load_mapping(name: str, base: Path | None = None, _seen: tuple[str, ...] = ()) -> ColumnMapping:
    """A mapping by shipped name or path; `extends` takes another's keys (its tables merged key by key)."""
    where, source = _read_mapping_text(name, base)
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise ImportProblem(f"{where}: not valid TOML: {exc}") from None
    parent = raw.get("extends")
    if isinstance(parent, str):
        if parent in _seen:
            raise ImportProblem(f"{where}: `extends` goes round in a circle ({' -> '.join((*_seen, parent))})")
        base_mapping = load_mapping(parent, base, (*_seen, name)).model_dump(mode="json")
        for key, value in raw.items():
            if isinstance(value, dict) and isinstance(base_mapping.get(key), dict):
                base_mapping[key] = {**base_mapping[key], **value}
            else:
                base_mapping[key] = value
        raw = base_mapping
    try:
        mapping = ColumnMapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ImportProblem(f"{where}: {problems}") from None
    unknown = sorted(set(mapping.columns) - set(FIELDS)) + sorted(set(mapping.natural_key) - set(FIELDS))
    if unknown:
        raise ImportProblem(f"{where}: no field {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    try:
        ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportProblem(f"{where}: timezone {mapping.timezone!r} is not a time zone (e.g. Europe/Warsaw)") from None
    return mapping


# --- reading the file ---------------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    values: dict[str, Any]


def decode(data: bytes, encoding: str | None) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1250, the two encodings Polish exports come in."""
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ImportProblem(f"the file is not {encoding}: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1250", errors="replace")


def csv_rows(data: bytes, mapping: ColumnMapping) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty record; the line is where the record starts."""
    text = decode(data, mapping.encoding)
    delimiter = mapping.delimiter
    if delimiter is None:
        first = next((line for line in text.splitlines() if line.strip()), "")
        delimiter = max((";", ",", "\t", "|"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field beyond the csv module's limit, a quote never closed: no way past it
            raise ImportProblem(f"line {start}: the file cannot be read from here on ({exc}); nothing was "
                                f"imported") from None
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def xlsx_rows(path: Path, mapping: ColumnMapping) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise ImportProblem(f"{path.name} is not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        if mapping.sheet is not None and mapping.sheet not in book.sheetnames:
            raise ImportProblem(f"{path.name} has no sheet {mapping.sheet!r} (its sheets: {', '.join(book.sheetnames)})")
        sheet = book[mapping.sheet] if mapping.sheet else book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            if any(cell is not None and str(cell).strip() for cell in cells):
                yield number, ["" if cell is None else cell for cell in cells]
    finally:
        book.close()


def header_columns(header: Sequence[Any], mapping: ColumnMapping) -> dict[str, int]:
    """Field -> column index, by the first of its header names present in the file."""
    folded = [fold(str(cell)) for cell in header]
    found: dict[str, int] = {}
    for name, candidates in mapping.columns.items():
        for candidate in candidates:
            key = fold(candidate)
            if key in folded:
                found[name] = folded.index(key)
                break
    return found


# --- reading values -----------------------------------------------------------------------------------------

_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                 "%d-%m-%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y.%m.%d")


def read_moment(value: Any, zone: ZoneInfo) -> datetime:
    """A date or time as Polish exports write it; without a zone it is the merchant's local time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        moment = None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            for pattern in _DATE_FORMATS:
                try:
                    moment = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise ValueError(f"{text!r} is not a date (write 06.12.2026, 06.12.2026 14:30 or 2026-12-06)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(timezone.utc)


def read_amount(value: Any) -> int:
    """Minor units of `1 234,56 zł`, `1.234,56`, `1234.56` or a spreadsheet number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = Decimal(str(value))
    else:
        text = re.sub(r"[^\d,.\-]", "", str(value).replace("\u00a0", " "))
        if "," in text and "." in text:
            text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
        elif "," in text:
            text = text.replace(",", ".") if text.count(",") == 1 else text.replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{str(value)!r} is not an amount (write 123,45 or 123.45)") from None
    if not number.is_finite():
        raise ValueError(f"{str(value)!r} is not an amount")
    return int((number * 100).quantize(Decimal("1")))


def read_quantity(value: Any) -> int:
    text = str(value).strip().replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"quantity {str(value)!r} is not a whole number") from None
    if number != number.to_integral_value() or number < 1:
        raise ValueError(f"quantity {str(value)!r} is not a whole number of at least 1")
    if number > 2**31 - 1:
        raise ValueError(f"quantity {str(value)!r} is more than any return holds")
    return int(number)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an EAN or an order number a spreadsheet made a number of
    text = str(value).strip()
    return text or None


# --- from rows to returns -----------------------------------------------------------------------------------


@dataclass
class BadRow:
    line: int
    problem: str
    key: str | None = None


@dataclass
class ImportResult:
    file: str
    channel: str
    mapping: str
    rows: int = 0
    returns: int = 0
    written: Written = field(default_factory=Written)
    bad_rows: list[BadRow] = field(default_factory=list)
    left_out: dict[str, list[int]] = field(default_factory=dict)
    """Returns not imported because one of their rows is bad -> the lines of their rows."""
    where: str = "line"


def _row_line(record: Mapping[str, Any], mapping: ColumnMapping, zone: ZoneInfo, settings: ChannelSettings,
              index: int) -> tuple[dict[str, Any], ReturnLine]:
    """What one row says about its return, and the item it names."""
    values: dict[str, Any] = {}
    for name in ("created_at", "received_at"):
        if record.get(name):
            values[name] = read_moment(record[name], zone)
    currency = _cell(record.get("currency")) or mapping.currency
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a three-letter code (PLN, EUR)")
    currency = currency.upper() if currency else None
    if record.get("refund_amount"):
        values["refund_amount"] = read_amount(record["refund_amount"])
    status_word = _cell(record.get("status"))
    if status_word:
        values["channel_status"] = status_word
        values["status"] = {fold(k): v for k, v in mapping.statuses.items()}.get(fold(status_word),
                                                                                 ReturnStatus.REQUESTED)
        values["decision"] = {fold(k): v for k, v in mapping.decisions.items()}.get(fold(status_word))
    for name in ("order", "reason", "email", "name", "phone", "postcode", "tracking", "carrier"):
        if _cell(record.get(name)):
            values[name] = _cell(record.get(name))
    values["currency"] = currency
    sku, ean = _cell(record.get("sku")), _cell(record.get("ean"))
    reason_text = _cell(record.get("reason"))
    quantity = read_quantity(record["quantity"]) if _cell(record.get("quantity")) else 1
    decision = values.get("decision")
    line = ReturnLine(
        external_id=sku or ean or f"item-{index}", sku=sku, ean=ean, title=_cell(record.get("title")),
        quantity=quantity, reason=reason_from_words(reason_text) if reason_text else ReturnReason.UNKNOWN,
        channel_reason=reason_text, customer_comment=_cell(record.get("comment")),
        channel_status=status_word,
        unit_price=read_amount(record["unit_price"]) if _cell(record.get("unit_price")) else None, currency=currency,
        channel_decision=decision, channel_decision_quantity=quantity if decision else None)
    return values, line


def _build(key_value: str, parts: Sequence[tuple[dict[str, Any], ReturnLine]], now: datetime,
           settings: ChannelSettings) -> Return:
    first: dict[str, Any] = {}
    for values, _ in parts:
        for name, value in values.items():
            if value is not None:
                first.setdefault(name, value)
    lines = {line.external_id: line for _, line in parts}
    tracking = first.get("tracking")
    return Return(
        external_id=key_value, order_external_id=first.get("order"),
        status=first.get("status", ReturnStatus.REQUESTED), channel_status=first.get("channel_status"),
        reason=reason_from_words(first["reason"]) if first.get("reason") else ReturnReason.UNKNOWN,
        channel_reason=first.get("reason"), created_at=first.get("created_at", now),
        received_at=first.get("received_at"), refund_amount=first.get("refund_amount"),
        currency=first.get("currency"),
        customer=Customer(email=first.get("email"), name=first.get("name"), phone=first.get("phone"),
                          postcode=first.get("postcode")),
        tracking_number=tracking,
        carrier=(first.get("carrier") or getattr(settings, "tracking_carrier", None)) if tracking else None,
        lines=tuple(lines.values()),
    )


def _carrier_word(carrier: str | None) -> str | None:
    """`InPost`, `Paczkomaty InPost` -> inpost: the tracker follows carriers by their short name."""
    if carrier and "inpost" in fold(carrier):
        return "inpost"
    return carrier.lower() if carrier else None


def read_returns(rows: Iterator[tuple[int, list[Any]]], mapping: ColumnMapping, natural_key: Sequence[str],
                 settings: ChannelSettings, now: datetime, result: ImportResult) -> list[Return]:
    """The file's rows as returns, each whole or (with a bad row) left out and reported."""
    header_at, header = next(rows, (0, []))
    if not header:
        raise ImportProblem("the file is empty: no header row")
    columns = header_columns(header, mapping)
    missing = [name for name in natural_key if name not in columns]
    if missing:
        looked = "; ".join(f"{name}: {', '.join(mapping.columns.get(name, [])) or 'no header names mapped'}"
                           for name in missing)
        raise ImportProblem(f"the header (line {header_at}) has no column for the natural key field "
                            f"{', '.join(missing)} (looked for {looked}); map it in the mapping's [columns], or set "
                            f"natural_key to fields the export has")
    zone = ZoneInfo(mapping.timezone)
    groups: dict[str, list[tuple[dict[str, Any], ReturnLine]]] = {}
    lines_of: dict[str, list[int]] = {}
    broken: set[str] = set()
    for line_no, cells in rows:
        result.rows += 1
        record = {name: cells[index] if index < len(cells) else None for name, index in columns.items()}
        parts = [_cell(record.get(name)) for name in natural_key]
        if any(part is None for part in parts):
            empty = [name for name, part in zip(natural_key, parts, strict=True) if part is None]
            result.bad_rows.append(BadRow(line_no, f"no {', '.join(empty)} (the natural key) in this row"))
            continue
        key_value = "/".join(str(part) for part in parts)
        lines_of.setdefault(key_value, []).append(line_no)
        try:
            values, item = _row_line(record, mapping, zone, settings, len(groups.get(key_value, [])) + 1)
            values["carrier"] = _carrier_word(values.get("carrier"))
        except ValueError as exc:
            problem = str(exc).splitlines()[0]
            result.bad_rows.append(BadRow(line_no, problem, key_value))
            broken.add(key_value)
            continue
        groups.setdefault(key_value, []).append((values, item))
    returns = []
    for key_value, parts in groups.items():
        if key_value in broken:
            result.left_out[key_value] = lines_of[key_value]
            continue
        try:
            record = _build(key_value, parts, now, settings)
        except ValidationError as exc:
            result.bad_rows.append(BadRow(lines_of[key_value][0], exc.errors()[0]["msg"], key_value))
            result.left_out[key_value] = lines_of[key_value]
            continue
        problem = refusal(record)
        if problem:
            result.bad_rows.append(BadRow(lines_of[key_value][0], problem, key_value))
            result.left_out[key_value] = lines_of[key_value]
            continue
        returns.append(record)
    result.returns = len(returns)
    return returns


def import_file(db: Engine, channel: str, settings: ChannelSettings, path: Path, *, fmt: str | None = None,
                mapping: str | None = None, dry_run: bool = False, now: datetime, base: Path | None = None,
                source: str | None = None) -> ImportResult:
    """Import one export into `channel`; raises ImportProblem when the file cannot be imported at all."""
    chosen = mapping or getattr(settings, "mapping", None) or "generic"
    column_mapping = load_mapping(chosen, base)
    natural_key = list(getattr(settings, "natural_key", None) or column_mapping.natural_key)
    bad = sorted(set(natural_key) - set(FIELDS))
    if bad:
        raise ImportProblem(f"natural_key names no field {', '.join(bad)}; the fields are {', '.join(FIELDS)}")
    kind = (fmt or getattr(settings, "import_format", None) or path.suffix.lower().lstrip(".")).lower()
    if kind not in ("csv", "xlsx"):
        raise ImportProblem(f"{path.name}: give --format csv or xlsx (the file's extension says neither)")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise ImportProblem(f"{path.name} is {size} bytes; exports larger than {MAX_FILE_BYTES} bytes are not read")
    result = ImportResult(file=path.name, channel=channel, mapping=chosen, where="line" if kind == "csv" else "row")
    if kind == "csv":
        rows: Iterator[tuple[int, list[Any]]] = csv_rows(path.read_bytes(), column_mapping)
    else:
        rows = xlsx_rows(path, column_mapping)
    returns = read_returns(rows, column_mapping, natural_key, settings, now, result)
    writer = IntakeWriter(db, channel, settings, source=source or f"import:{path.name}"[:200],
                          orders_from=getattr(settings, "orders_from", ()))
    result.written = writer.write(returns, now, dry_run=dry_run)
    return result


def report_text(result: ImportResult, *, dry_run: bool = False) -> str:
    """What the merchant reads after an import (and what lies beside a file in done/ or failed/)."""
    written = result.written
    verb = "would be" if dry_run else "were"
    lines = [f"{result.file} into {result.channel} (mapping {result.mapping}){' (dry run: nothing written)' if dry_run else ''}: "
             f"{result.rows} rows, {result.returns} returns: {len(written.new)} new, {len(written.updated)} updated, "
             f"{len(written.unchanged)} unchanged; {len(result.bad_rows)} bad rows"]
    for external_id in written.new:
        lines.append(f"  new        {external_id}")
    for external_id in written.updated:
        lines.append(f"  updated    {external_id}")
    for external_id, order in written.linked.items():
        lines.append(f"  linked     {external_id} to order {order}")
    for external_id, why in written.unlinked.items():
        lines.append(f"  not linked {external_id}: {why}")
    for bad in result.bad_rows:
        lines.append(f"{result.where} {bad.line}: {bad.problem}")
    for key, at in result.left_out.items():
        lines.append(f"{result.where} {', '.join(str(n) for n in at)}: return {key} {verb} not imported, because "
                     f"one of its rows is bad; fix the row and import the file again (rows already imported are "
                     f"not duplicated)")
    return "\n".join(lines)
