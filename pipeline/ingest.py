"""Read one landed file into the raw layer (every value as received text), or quarantine it."""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from pipeline.config import Settings
from schemas.form import FORM_COLUMNS

RAW_META_COLUMNS = ["source_file", "source_row", "source_sha256"]

_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"Rar!", b"\x1f\x8b", b"7z\xbc\xaf")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UNIT_SUFFIX = re.compile(r"\([^()]*\)$")


class Quarantine(Exception):
    """A file-level finding (rule F3xx): the whole file is set aside with the reason."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule, self.reason = rule, reason


@dataclass
class IngestResult:
    source_file: str
    sha256: str
    format: str | None = None
    encoding: str | None = None
    status: str = "read"
    rule: str | None = None
    reason: str | None = None
    rows: int | None = None
    raw_path: str | None = None
    unknown_columns: list[str] = field(default_factory=list)
    blank_rows_skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def landed_files(settings: Settings, year: int) -> list[Path]:
    """Every regular file in the year's landing folder, in name order."""
    landing = settings.landing_dir(year)
    if not landing.is_dir():
        raise FileNotFoundError(f"no landing folder for {year}: {landing}")
    return sorted((p for p in landing.iterdir() if p.is_file()), key=lambda p: p.name)


def ingest_file(settings: Settings, year: int, path: Path | str) -> dict:
    """Read one file to raw/<year>/<name>.parquet; returns the ingest report (paths and counts)."""
    path = Path(path)
    out_dir = settings.raw_dir(year)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_path = out_dir / f"{path.name}.parquet"
    raw_path.unlink(missing_ok=True)
    result = read_received(settings, path)
    if result.status == "read":
        write_working_layer(result.frame, raw_path)
        result.report.raw_path = str(raw_path)
    report = result.report.to_dict()
    (out_dir / f"{path.name}.ingest.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return report


def write_working_layer(frame: pl.DataFrame, path: Path) -> None:
    """Write a raw/ or checked/ file whole or not at all.

    These layers are read once, whole, by the next step: fast beats small, and min/max
    statistics (a third of the writing time) would never be used.
    """
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp, compression="lz4", statistics=False)
    tmp.replace(path)


@dataclass
class Received:
    report: IngestResult
    frame: pl.DataFrame | None = None

    @property
    def status(self) -> str:
        return self.report.status


def read_received(settings: Settings, path: Path) -> Received:
    """Judge and read a file in memory: a raw frame, or the F rule that quarantines it."""
    size = path.stat().st_size
    report = IngestResult(source_file=path.name, sha256=_sha256(path))
    try:
        if size > settings.max_file_bytes:
            raise Quarantine("F305", f"file is {size / 2**20:.1f} MB, over the limit of "
                             f"{settings.max_file_bytes / 2**20:.0f} MB")
        data = path.read_bytes()
        report.format = sniff_format(data)
        # Read one row past the limit, no more: an oversized file is refused without parsing it all.
        row_cap = settings.max_file_rows + 1
        if report.format == "xlsx":
            header, rows, row_numbers = _read_xlsx(settings, data, size, row_cap)
        else:
            report.encoding, utf8 = as_utf8(data)
            if report.format == "csv":
                # No quoted field can span lines, so lines are rows: refuse without parsing.
                _refuse_over_row_limit(settings, _lines_without_quotes(utf8) - 1)
            if report.format == "jsonl":
                header, rows, row_numbers = _read_jsonl(utf8.decode("utf-8"))
            else:
                header, rows, row_numbers = _read_csv(utf8, row_cap)
        _refuse_over_row_limit(settings, rows.height)
        frame, report.unknown_columns, report.blank_rows_skipped = _to_raw_frame(
            header, rows, row_numbers, report)
        if frame.height == 0:
            raise Quarantine("F304", "the file has a header but no data rows")
    except Quarantine as q:
        report.status, report.rule, report.reason = "quarantined", q.rule, q.reason
        return Received(report)
    report.rows = frame.height
    return Received(report, frame)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(data: bytes) -> str:
    """xlsx, jsonl or csv, judged by content; anything else is F301."""
    head = data[:8192]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "xlsx"
    if head.startswith(_OLE2_MAGIC):
        raise Quarantine("F301", "a legacy Excel (.xls/OLE2) file: save it as .xlsx or CSV")
    if head.startswith(_BINARY_MAGIC):
        raise Quarantine("F301", "a binary file (PDF, image or archive), not CSV/XLSX/JSON Lines")
    if head.startswith(_UTF16_BOMS):
        raise Quarantine("F302", "UTF-16 text: save it as UTF-8 or GB18030")
    if b"\x00" in head:
        raise Quarantine("F301", "binary content (NUL bytes), not CSV/XLSX/JSON Lines")
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"


def as_utf8(data: bytes) -> tuple[str, bytes]:
    """(encoding detected, the text as UTF-8 bytes): UTF-8 with BOM, UTF-8, GB18030; else F302.

    DuckDB and polars read only UTF-8, so GB18030 (GBK is a subset) is transcoded here.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            data[3:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise Quarantine("F302", f"UTF-8 BOM but invalid UTF-8 at byte {e.start + 3}") from e
        return "utf-8-sig", data[3:]
    try:
        data.decode("utf-8")
        return "utf-8", data
    except UnicodeDecodeError:
        pass
    try:
        return "gb18030", data.decode("gb18030").encode("utf-8")
    except UnicodeDecodeError as e:
        raise Quarantine("F302", f"neither UTF-8 nor GB18030 (bad byte at {e.start})") from e


def _refuse_over_row_limit(settings: Settings, rows: int) -> None:
    if rows > settings.max_file_rows:
        raise Quarantine("F305", f"more than {settings.max_file_rows} rows, the limit")


def _lines_without_quotes(utf8: bytes) -> int:
    """Lines in a text with no quote character (0 where quotes make lines and rows differ)."""
    if b'"' in utf8:
        return 0
    return utf8.count(b"\n") + (not utf8.endswith(b"\n"))


def _read_csv(utf8: bytes, row_cap: int) -> tuple[list[str], pl.DataFrame, pl.Series]:
    try:
        grid = pl.read_csv(utf8, has_header=False, n_rows=row_cap + 1,
                           infer_schema=False, quote_char='"', raise_if_empty=False)
    except pl.exceptions.ComputeError as e:
        if "more fields" in str(e):
            raise Quarantine("F306", "a row has more fields than the header") from e
        raise Quarantine("F306", f"unreadable CSV: {str(e).splitlines()[0]}") from e
    except pl.exceptions.NoDataError as e:
        raise Quarantine("F304", "the file is empty") from e
    if grid.height == 0:
        raise Quarantine("F304", "the file is empty")
    header = [v or "" for v in grid.row(0)]
    rows = grid.slice(1)
    return header, rows, pl.int_range(2, rows.height + 2, eager=True)


def _read_jsonl(text: str) -> tuple[list[str], pl.DataFrame, pl.Series]:
    records, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise Quarantine("F306", f"line {number} is not a JSON object: {e.msg}") from e
        if not isinstance(record, dict):
            raise Quarantine("F306", f"line {number} is not a JSON object")
        records.append(record)
        numbers.append(number)
    if not records:
        raise Quarantine("F304", "the file has no JSON objects")
    header = list(dict.fromkeys(k for record in records for k in record))
    columns = {
        f"column_{i}": [_json_text(r.get(key)) for r in records] for i, key in enumerate(header)
    }
    frame = pl.DataFrame(columns, schema={c: pl.Utf8 for c in columns})
    return header, frame, pl.Series(numbers, dtype=pl.Int64)


def _json_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)


def _read_xlsx(settings: Settings, data: bytes, size: int,
               row_cap: int) -> tuple[list[str], pl.DataFrame, pl.Series]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except zipfile.BadZipFile as e:
        raise Quarantine("F306", f"broken XLSX/ZIP: {e}") from e
    expanded = sum(m.file_size for m in members)
    limit = min(settings.max_expansion_ratio * size, settings.max_expanded_bytes)
    if expanded > limit:
        raise Quarantine("F306", f"the archive would expand to {expanded / 2**20:.0f} MB, "
                         f"over {limit / 2**20:.1f} MB (100x its size or 1 GiB)")
    if "xl/workbook.xml" not in {m.filename for m in members}:
        raise Quarantine("F301", "a ZIP archive that is not an XLSX workbook")
    import fastexcel

    try:
        sheet = fastexcel.read_excel(data).load_sheet(0, header_row=None, dtypes="string",
                                                      n_rows=row_cap + 1)
        grid = sheet.to_polars()
    except Exception as e:  # fastexcel raises its own error types for every kind of damage
        raise Quarantine("F306", f"broken XLSX: {e}") from e
    if grid.height == 0:
        raise Quarantine("F304", "the first worksheet is empty")
    header = [v or "" for v in grid.row(0)]
    rows = grid.slice(1)
    return header, rows, pl.int_range(2, rows.height + 2, eager=True)


def header_key(text: str) -> str:
    """A header as matched: NFKC, no spaces, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _header_aliases() -> dict[str, str]:
    aliases = {}
    for column in FORM_COLUMNS.values():
        aliases[header_key(column.name)] = column.name
        aliases[header_key(column.label_zh)] = column.name
    return aliases


_ALIASES = _header_aliases()


def canonical_column(header: str) -> str | None:
    """The form column a header names (English or Chinese, units in brackets), or None."""
    key = header_key(header)
    while key:
        if key in _ALIASES:
            return _ALIASES[key]
        stripped = _UNIT_SUFFIX.sub("", key)
        if stripped == key:
            return None
        key = stripped
    return None


def _to_raw_frame(header: list[str], rows: pl.DataFrame, row_numbers: pl.Series,
                  report: IngestResult) -> tuple[pl.DataFrame, list[str], int]:
    mapped, unknown, seen = {}, [], {}
    for position, text in enumerate(header):
        name = canonical_column(text)
        if name is None:
            if text.strip():
                unknown.append(text)
            continue
        if name in seen:
            raise Quarantine("F303", f"header for {name} appears twice: "
                             f"{seen[name]!r} and {text!r}")
        seen[name] = text
        mapped[rows.columns[position]] = name
    missing = [c.name for c in FORM_COLUMNS.values() if c.required and c.name not in seen]
    if missing:
        raise Quarantine("F303", "required columns missing: " + ", ".join(missing))
    frame = rows.select(pl.col(src).alias(dst) for src, dst in mapped.items())
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias(c) for c in FORM_COLUMNS if c not in seen
    )
    frame = frame.with_columns(
        pl.lit(report.source_file).alias("source_file"),
        row_numbers.alias("source_row"),
        pl.lit(report.sha256).alias("source_sha256"),
    ).select(*RAW_META_COLUMNS, *FORM_COLUMNS)
    # A row with nothing in it is not a return (spreadsheets pad with empty lines).
    keep = rows.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    return frame.filter(keep), unknown, int((~keep).sum())
