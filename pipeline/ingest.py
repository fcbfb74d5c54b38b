"""Read one landed file (every value as received text), or quarantine it with its F rule."""

from __future__ import annotations

import collections
import copy
import errno
import hashlib
import io
import itertools
import json
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from schemas.form import FORM_COLUMNS, UNREADABLE

RAW_META_COLUMNS = ["source_file", "source_row", "source_sha256"]
#: A record (line) longer than this is F306: a parser's memory grows far past the bytes it reads.
MAX_RECORD_BYTES = 2**20
#: A header wider than this is F306: each field becomes a column (the form has 33).
MAX_HEADER_FIELDS = 1000
#: An XLSX has a few dozen members; each one listed costs memory before a byte is inflated.
MAX_ARCHIVE_MEMBERS = 10_000

_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"Rar!", b"\x1f\x8b", b"7z\xbc\xaf")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
#: Control bytes no text file holds (tab, line feed and carriage return are text; NUL is apart).
_CONTROL_BYTES = bytes(set(range(1, 32)) - {9, 10, 13}) + b"\x7f"
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_UNIT_SUFFIX = re.compile(r"\([^()]*\)$")
_INFLATE_CHUNK = 2**20
#: What a landing folder may hold besides regular files; none is followed, opened or read.
_NOT_REGULAR = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class Quarantine(Exception):
    """A file-level finding (rule F3xx): the whole file is set aside with the reason."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule, self.reason = rule, reason


@dataclass
class IngestResult:
    source_file: str
    sha256: str | None = None  # None for what is not a regular file (F307): it is never read
    format: str | None = None
    encoding: str | None = None
    status: str = "read"
    rule: str | None = None
    reason: str | None = None
    rows: int | None = None
    unknown_columns: list[str] = field(default_factory=list)
    blank_rows_skipped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def landed_files(settings: Settings, year: int) -> list[Path]:
    """Every entry of the year's landing folder, in name order: links, folders and pipes too,
    which read_received sets aside (F307) so that nothing landed goes unaccounted."""
    landing = settings.landing_dir(year)
    if not landing.is_dir():
        raise FileNotFoundError(f"no landing folder for {year}: {landing}")
    with os.scandir(landing) as entries:
        return sorted((Path(entry.path) for entry in entries), key=lambda p: p.name)


def received_name(path: Path) -> str:
    """A landed file's name as text: bytes that are not UTF-8 are shown as escapes (\\xb0), so
    the name stays as received and distinct from every other."""
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


def write_working_layer(frames: pl.DataFrame | Iterable[pl.DataFrame], path: Path) -> None:
    """Write a checked/ file whole or not at all, from one frame or from slices of one (each
    slice a row group, written as it comes, so that only one is in memory).

    It is read once, whole, by the next step: fast beats small, and min/max statistics (a third
    of the writing time) would never be used.
    """
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(frames, pl.DataFrame):
        frames = [frames]
    writer = None
    try:
        for frame in frames:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="lz4",
                                          write_statistics=False)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


@dataclass
class Received:
    report: IngestResult
    frame: pl.DataFrame | None = None

    @property
    def status(self) -> str:
        return self.report.status


def read_received(settings: Settings, path: Path | str) -> Received:
    """Judge and read a file in memory: a raw frame, or the F rule that quarantines it."""
    path = Path(path)
    report = IngestResult(source_file=received_name(path))
    try:
        data = _read_regular_file(settings, path, report)
        report.format = sniff_format(data)
        # Read one row past the limit, no more: an oversized file is refused without parsing it all.
        row_cap = settings.max_file_rows + 1
        unreadable: dict[int, list[int]] = {}
        if report.format == "xlsx":
            header, rows, row_numbers = _read_xlsx(settings, data, row_cap)
        else:
            _refuse_nul(data)
            _refuse_long_records(data)
            report.encoding, utf8 = as_utf8(data)
            if report.format == "csv":
                _refuse_wide_header(utf8)
                # No quoted field can span lines, so lines are rows: refuse without parsing.
                _refuse_over_row_limit(settings, _lines_without_quotes(utf8) - 1)
                header, rows, row_numbers = _read_csv(utf8, row_cap)
            else:
                header, rows, row_numbers, unreadable = _read_jsonl(utf8.decode("utf-8"), row_cap)
        _refuse_over_row_limit(settings, rows.height)
        frame, report.unknown_columns, report.blank_rows_skipped = _to_raw_frame(
            header, rows, row_numbers, report, unreadable)
        if frame.height == 0:
            raise Quarantine("F304", "the file has a header but no data rows")
    except Quarantine as q:
        report.status, report.rule, report.reason = "quarantined", q.rule, q.reason
        return Received(report)
    report.rows = frame.height
    return Received(report, frame)


def _read_regular_file(settings: Settings, path: Path, report: IngestResult) -> bytes:
    """The bytes of a regular file (and their sha256 in the report); F307 for anything else, which
    is neither followed (a link) nor opened (a pipe would block, a device could do anything)."""
    kind = _not_regular(os.lstat(path).st_mode)
    if kind:
        raise Quarantine("F307", f"{kind}, not a regular file: never followed, opened or read")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise Quarantine("F307", "a symbolic link (it replaced the file while it was being "
                         "opened), not a regular file: never followed or read") from e
    with os.fdopen(fd, "rb") as f:
        # The entry may have been swapped between the look and the open: judge what was opened.
        opened = os.fstat(f.fileno())
        kind = _not_regular(opened.st_mode)
        if kind:
            raise Quarantine("F307", f"{kind} (it replaced the file while it was being opened), "
                             "not a regular file: never read")
        digest, data = hashlib.sha256(), b""
        if opened.st_size <= settings.max_file_bytes:
            data = f.read(settings.max_file_bytes + 1)  # one byte more: it may have grown since
            digest.update(data)
            if len(data) <= settings.max_file_bytes:
                report.sha256 = digest.hexdigest()
                return data
        # Too large: hashed for the report, never kept whole.
        size = len(data)
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        report.sha256 = digest.hexdigest()
        raise Quarantine("F305", f"file is {size / 2**20:.1f} MB, over the limit of "
                         f"{settings.max_file_bytes / 2**20:.0f} MB")


def _not_regular(mode: int) -> str | None:
    """What an entry is when it is not a regular file, or None."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _NOT_REGULAR if is_kind(mode)),
                f"an entry of an unknown kind (mode {mode:o})")


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
        if _utf16_without_bom(head):
            raise Quarantine("F302", "UTF-16 text without a byte-order mark (a NUL byte in every "
                             "other position): save it as UTF-8 or GB18030")
        if _binary(head):
            raise Quarantine("F301", "binary content (NUL and control bytes), not CSV/XLSX/JSON "
                             "Lines")
        # Otherwise text with a NUL in it: F302, which _refuse_nul words with its place.
    stripped = head.removeprefix(_UTF8_BOM).lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"


def _utf16_without_bom(head: bytes) -> bool:
    """NULs at even or at odd positions only, as UTF-16 gives every ASCII character."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) >= len(head) / 20 and min(even, odd) <= max(even, odd) / 20


def _binary(head: bytes) -> bool:
    """Many NULs, or control bytes that text does not hold (random bytes have about 11%)."""
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return head.count(0) > len(head) / 10 or controls > len(head) / 100


def _refuse_nul(data: bytes) -> None:
    position = data.find(b"\x00")
    if position >= 0:
        raise Quarantine("F302", f"a NUL byte at byte {position} (line {_line_of(data, position)})"
                         ": text in UTF-8 or GB18030 holds none")


def _line_of(data: bytes, position: int) -> int:
    """The 1-based physical line holding a byte."""
    return data.count(b"\n", 0, position) + 1


def _line_ends(data: bytes) -> np.ndarray:
    """Offsets of every line feed, found a slice at a time so the masks stay small."""
    view = np.frombuffer(data, dtype=np.uint8)
    step = 1 << 24
    return np.concatenate([np.flatnonzero(view[i:i + step] == 10) + i
                           for i in range(0, len(view), step)] or [np.zeros(0, np.int64)])


def _refuse_long_records(data: bytes) -> None:
    """F306 for a line over MAX_RECORD_BYTES, judged from the line feeds before any parsing."""
    if len(data) <= MAX_RECORD_BYTES:
        return
    ends = _line_ends(data)
    starts = np.concatenate([[0], ends + 1])
    lengths = np.concatenate([ends, [len(data)]]) - starts
    long = np.flatnonzero(lengths > MAX_RECORD_BYTES)
    if len(long):
        line = int(long[0])
        raise Quarantine("F306", f"line {line + 1} (from byte {int(starts[line])}) is "
                         f"{int(lengths[line]):,} bytes long, over the 1 MB limit for a record")


def _refuse_wide_header(utf8: bytes) -> None:
    """F306 for a CSV header record of more than MAX_HEADER_FIELDS fields, or over 1 MB.

    Counted on the bytes, quotes respected, before polars makes a column of every field.
    """
    head = np.frombuffer(utf8, dtype=np.uint8, count=min(len(utf8), MAX_RECORD_BYTES + 1))
    # A quote opens or closes quoting (a doubled one does both); a uint8 sum keeps the parity.
    outside = (np.cumsum(head == ord('"'), dtype=np.uint8) & 1) == 0
    ends = np.flatnonzero((head == ord("\n")) & outside)
    if not len(ends) and len(utf8) > MAX_RECORD_BYTES:
        raise Quarantine("F306", "the header record runs past 1 MB (a quote is never closed?), "
                         "over the 1 MB limit for a record")
    end = int(ends[0]) if len(ends) else len(head)
    fields = int(np.count_nonzero((head[:end] == ord(",")) & outside[:end])) + 1
    if fields > MAX_HEADER_FIELDS:
        raise Quarantine("F306", f"the header has {fields:,} fields, over the limit of "
                         f"{MAX_HEADER_FIELDS:,} (the form has {len(FORM_COLUMNS)} columns)")


def as_utf8(data: bytes) -> tuple[str, bytes]:
    """(encoding detected, the text as UTF-8 bytes): UTF-8 with BOM, UTF-8 or GB18030, one
    encoding throughout; else F302.

    DuckDB and polars read only UTF-8, so GB18030 (GBK is a subset) is transcoded here.
    """
    if data.startswith(_UTF8_BOM):
        try:
            if not _is_utf8(memoryview(data)[3:]):
                data[3:].decode("utf-8")  # raises, saying where
        except UnicodeDecodeError as e:
            bad = e.start + 3
            raise Quarantine("F302", f"line {_line_of(data, bad)} is not UTF-8 (byte {bad}), "
                             "but the file begins with a UTF-8 byte-order mark") from e
        return "utf-8-sig", data[3:]
    try:
        if not _is_utf8(data):
            data.decode("utf-8")  # raises, saying where
        return "utf-8", data
    except UnicodeDecodeError as e:
        _refuse_mixed_lines(data, e.start)
    try:
        return "gb18030", data.decode("gb18030").encode("utf-8")
    except UnicodeDecodeError as e:
        raise Quarantine("F302", f"neither UTF-8 nor GB18030: line {_line_of(data, e.start)} "
                         f"(byte {e.start})") from e


def _is_utf8(data: bytes | memoryview) -> bool:
    """Whether the bytes are UTF-8, judged by Arrow's validator in place: decoding them in
    Python would build a string of the whole file, several times slower."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    text = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        text.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _refuse_mixed_lines(data: bytes, first_bad: int) -> None:
    """F302 when some lines are UTF-8 and others are not (an ASCII line is both).

    first_bad is the first byte that is not UTF-8: every line before its line is UTF-8.
    """
    start = data.rfind(b"\n", 0, first_bad) + 1
    end = data.find(b"\n", first_bad)
    bad_line = _line_of(data, start)
    bad_kind = "GB18030" if _decodes(data[start:end if end >= 0 else len(data)], "gb18030") \
        else "neither UTF-8 nor GB18030"
    earlier = _NON_ASCII.search(data, 0, start)
    if earlier:
        raise Quarantine("F302", f"line {bad_line} is {bad_kind} but line "
                         f"{_line_of(data, earlier.start())} is UTF-8: a file keeps one encoding")
    # Every line so far is ASCII: is a later one UTF-8? Decoding with replacement raises nothing
    # (a million exceptions cost seconds); only in a file that holds a U+FFFD (EF BF BD), which
    # may have been received, is a line with one decoded strictly. Inline: a call per line of a
    # million costs a second more.
    received_fffd = b"\xef\xbf\xbd" in data
    lines = itertools.islice(data.split(b"\n"), bad_line - 1, None)
    utf8 = next((offset for offset, line in enumerate(lines) if not line.isascii() and (
        "\ufffd" not in line.decode("utf-8", "replace")
        or received_fffd and _decodes(line, "utf-8"))), None)
    if utf8 is not None:
        raise Quarantine("F302", f"line {bad_line + utf8} is UTF-8 but line {bad_line} is "
                         f"{bad_kind}: a file keeps one encoding")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


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


class _Repeated(dict):
    """A JSON object that names some key more than once; .repeats holds each such key's values."""

    repeats: dict[str, list]


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    record = dict(pairs)
    if len(record) == len(pairs):
        return record
    # json.loads keeps the last value of a key named twice: keep them all, the row says which.
    record = _Repeated(record)
    seen: dict[str, list] = {}
    for key, value in pairs:
        seen.setdefault(key, []).append(value)
    record.repeats = {key: values for key, values in seen.items() if len(values) > 1}
    return record


def _read_jsonl(text: str, row_cap: int
                ) -> tuple[list[str], pl.DataFrame, pl.Series, dict[int, list[int]]]:
    """Header, rows, line numbers, and per row the header positions of cells that are not one
    value (a nested array or object, a key named twice): E002 for the validator."""
    cells: dict[str, tuple[int, list[int], list[str | None]]] = {}  # key → position, rows, texts
    numbers: list[int] = []
    unreadable: dict[int, list[int]] = {}
    # Only a \ud800-\udfff escape makes a lone surrogate: most files need no look for one.
    escapes = _SURROGATE_ESCAPE.search(text) is not None
    # JSON Lines ends lines with \n only: U+2028, U+0085 and the like may sit inside a string.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        row = len(numbers)
        try:
            record = json.loads(line, object_pairs_hook=_json_object)
            if not isinstance(record, dict):
                raise Quarantine("F306", f"line {number} is not a JSON object")
            for key, value in record.items():
                if isinstance(record, _Repeated) and key in record.repeats:
                    cell, readable = ", ".join(_json_dump(v) for v in record.repeats[key]), False
                else:
                    cell, readable = _json_cell(value, escapes)
                if key not in cells:
                    if len(cells) == MAX_HEADER_FIELDS:
                        raise Quarantine("F306", f"line {number} brings the JSON objects over "
                                         f"{MAX_HEADER_FIELDS:,} distinct keys (the form has "
                                         f"{len(FORM_COLUMNS)} columns)")
                    cells[key] = (len(cells), [], [])
                position, rows, texts = cells[key]
                rows.append(row)
                texts.append(cell)
                if not readable:
                    unreadable.setdefault(row, []).append(position)
        except RecursionError as e:
            raise Quarantine("F306", f"line {number} nests arrays or objects too deeply to "
                             "read") from e
        except ValueError as e:  # JSONDecodeError, and an integer of more than 4,300 digits
            reason = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            raise Quarantine("F306", f"line {number} is not a JSON object: {reason}") from e
        numbers.append(number)
        if len(numbers) == row_cap:
            break
    if not numbers:
        raise Quarantine("F304", "the file has no JSON objects")
    columns = []
    for position, rows, texts in cells.values():
        column = pl.Series(f"column_{position}", texts, dtype=pl.Utf8)
        if len(rows) < len(numbers):  # a key some objects leave out
            column = pl.Series(column.name, [None], dtype=pl.Utf8).new_from_index(
                0, len(numbers)).scatter(rows, column)
        columns.append(column)
    header = [_without_surrogates(key) for key in cells] if escapes else list(cells)
    return header, pl.DataFrame(columns), pl.Series(numbers, dtype=pl.Int64), unreadable


def _json_cell(value, escapes: bool) -> tuple[str | None, bool]:
    """A JSON value as received text, and whether it is one value (not an array or object)."""
    if isinstance(value, (list, dict)):
        return _json_dump(value), False
    if value is None:
        return None, True
    if isinstance(value, str):
        if escapes and _SURROGATE.search(value):
            return _json_dump(value), False  # an escaped lone surrogate: not a character
        return value, True
    if isinstance(value, float) and value.is_integer():
        return (str(int(value)) if abs(value) < 1e15 else repr(value)), True
    return str(value), True


def _json_dump(value) -> str:
    """A value as JSON text, characters as they are (lone surrogates escaped: UTF-8 has none)."""
    return _without_surrogates(json.dumps(value, ensure_ascii=False))


def _without_surrogates(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _read_xlsx(settings: Settings, data: bytes,
               row_cap: int) -> tuple[list[str], pl.DataFrame, pl.Series]:
    limit = int(min(settings.max_expansion_ratio * len(data), settings.max_expanded_bytes))
    stored = _inflated_copy(data, limit)
    import fastexcel

    try:
        sheet = fastexcel.read_excel(stored).load_sheet(0, header_row=None, dtypes="string",
                                                        n_rows=row_cap + 1)
        grid = sheet.to_polars()
    except Exception as e:  # fastexcel raises its own error types for every kind of damage
        raise Quarantine("F306", f"broken XLSX: {e}") from e
    if grid.height == 0:
        raise Quarantine("F304", "the first worksheet is empty")
    header = [v or "" for v in grid.row(0)]
    rows = grid.slice(1)
    return header, rows, pl.int_range(2, rows.height + 2, eager=True)


def _inflated_copy(data: bytes, limit: int) -> bytes:
    """The archive rebuilt uncompressed from the bytes its members really inflate to, counted
    while inflating: F306 past `limit`, whatever sizes the archive declares.

    The reader (calamine) then inflates nothing: what it reads is what was measured here.
    """
    listed = data.count(b"PK\x01\x02")  # central directory entries (or more, never fewer)
    if listed > MAX_ARCHIVE_MEMBERS:
        raise Quarantine("F306", f"the archive lists about {listed:,} members, over the limit of "
                         f"{MAX_ARCHIVE_MEMBERS:,} (an XLSX workbook has a few dozen)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as e:  # BadZipFile, and value or struct errors from a damaged directory
        raise Quarantine("F306", f"broken XLSX/ZIP: {e}") from e
    names = [m.filename for m in members]
    if "xl/workbook.xml" not in names:
        raise Quarantine("F301", "a ZIP archive that is not an XLSX workbook")
    twice = [name for name, count in collections.Counter(names).items() if count > 1]
    if twice:  # which of the two would a reader take?
        raise Quarantine("F306", f"broken XLSX/ZIP: the archive holds {twice[0]!r} twice")
    declared = sum(m.file_size for m in members)
    if declared > limit:
        raise Quarantine("F306", f"the archive would expand to {declared / 2**20:.0f} MB, "
                         f"over {limit / 2**20:.1f} MB (100x its size or 1 GiB)")
    out = io.BytesIO()
    inflated = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as rebuilt:
        for member in members:
            # Python stops at the declared size, which may be a lie: read to the end of the data
            # (the count below stops it past the limit).
            unbounded = copy.copy(member)
            unbounded.file_size = 1 << 62
            try:
                with archive.open(unbounded) as source, \
                        rebuilt.open(member.filename, "w") as target:
                    while chunk := source.read(_INFLATE_CHUNK):
                        inflated += len(chunk)
                        if inflated > limit:
                            raise Quarantine(
                                "F306", f"the archive inflates past {limit / 2**20:.1f} MB "
                                f"(100x its size or 1 GiB) at member {member.filename!r}, which "
                                f"declares {member.file_size:,} bytes (all members: "
                                f"{declared:,} bytes)")
                        target.write(chunk)
            except Quarantine:
                raise
            except Exception as e:  # bad CRC, damaged stream, encrypted, unknown compression …
                raise Quarantine("F306", f"broken XLSX/ZIP: member {member.filename!r}: "
                                 f"{type(e).__name__}: {e}") from e
    return out.getvalue()


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
                  report: IngestResult, unreadable: dict[int, list[int]]
                  ) -> tuple[pl.DataFrame, list[str], int]:
    mapped, unknown, seen, named = {}, [], {}, {}
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
        mapped[rows.columns[position]] = named[position] = name
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
    ).select(*RAW_META_COLUMNS, *FORM_COLUMNS).with_columns(_marks(unreadable, named, rows.height))
    # A row with nothing in it is not a return (spreadsheets pad with empty lines).
    keep = rows.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    return frame.filter(keep), unknown, int((~keep).sum())


def _marks(unreadable: dict[int, list[int]], named: dict[int, str], height: int) -> pl.Series:
    """Per row, the form columns whose cell is not one value; every reader gives the column,
    so that raw files of any format stack into one frame."""
    marks = pl.Series(UNREADABLE, [[]], dtype=pl.List(pl.Utf8)).new_from_index(0, height)
    if unreadable:
        rows = [[]] * height
        for row, positions in unreadable.items():
            rows[row] = [named[p] for p in positions if p in named]
        marks = pl.Series(UNREADABLE, rows, dtype=pl.List(pl.Utf8))
    return marks
