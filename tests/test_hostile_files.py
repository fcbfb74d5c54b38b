"""Hostile files, each built here and given to the real reader: refused with the right F rule, or
read with every odd cell reported; never a traceback, a hang or memory out of proportion."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import struct
import subprocess
import sys
import traceback
import warnings
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from conftest import YEAR, good_return

from pipeline.check import check_batch
from pipeline.config import Settings
from pipeline.ingest import RAW_META_COLUMNS, landed_files, read_received
from pipeline.validate import check_returns
from schemas.form import FORM_COLUMNS, UNREADABLE

ROOT = Path(__file__).resolve().parent.parent
ROWS = [good_return(), good_return(credit_code="91330100799655058B", employees="1,234")]
MB = 2**20


def csv_bytes(rows=ROWS, encoding="utf-8", chinese=False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.label_zh if chinese else c.name for c in FORM_COLUMNS.values()])
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in FORM_COLUMNS])
    return out.getvalue().encode(encoding)


def jsonl_bytes(rows=ROWS) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def xlsx_bytes(rows=ROWS) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, list(FORM_COLUMNS))
    for r, row in enumerate(rows, start=1):
        sheet.write_row(r, 0, ["" if row[c] is None else row[c] for c in FORM_COLUMNS])
    book.close()
    return out.getvalue()


def read(tmp_path: Path, name: str, data: bytes, **limits):
    path = tmp_path / name
    path.write_bytes(data)
    return read_received(Settings(data_dir=tmp_path, **limits), path)


def assert_quarantined(received, rule: str, *words: str) -> str:
    report = received.report
    assert (report.status, report.rule) == ("quarantined", rule), report
    assert received.frame is None
    for word in words:
        assert word in report.reason, report.reason
    return report.reason


def peak_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: Linux carries the parent's peak over
    fork and exec into it, so a child of a large pytest process would report pytest's."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


_READ_IN_A_CHILD = """
import json, sys, time
from pathlib import Path
from pipeline.config import Settings
from pipeline.ingest import read_received
path = Path(sys.argv[1])
start = time.perf_counter()
report = read_received(Settings(data_dir=path.parent), path).report
status = Path("/proc/self/status").read_text()  # VmHWM: see peak_mb
print(json.dumps({"rule": report.rule, "reason": report.reason,
                  "seconds": time.perf_counter() - start,
                  "peak_mb": int(status.split("VmHWM:")[1].split()[0]) / 1024}))
"""


def read_in_a_child(path: Path, timeout: float = 60) -> dict:
    """Read a file in a fresh interpreter: its report, the seconds taken and peak memory (MB)."""
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_CHILD, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# A zip bomb whose sizes lie (issue item 3).


def handmade_zip(members: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A ZIP written byte by byte: (name, method, data as stored, CRC, declared size) each, so
    that the CRC and sizes say whatever the member is meant to claim."""
    out, directory = bytearray(), bytearray()
    for name, method, data, crc, size in members:
        encoded, offset = name.encode(), len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(encoded), 0) + encoded + data
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                 len(data), size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    return bytes(out + directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members),
                                               len(members), len(directory), len(out), 0))


def zeros_deflated(size: int) -> bytes:
    """A raw deflate stream of `size` zero bytes (a whole number of MB), about 1,000 times
    smaller: one compressed MB repeated, each copy standing alone after a full flush."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    one_mb = compressor.compress(b"\0" * MB) + compressor.flush(zlib.Z_FULL_FLUSH)
    return one_mb * (size // MB) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def forged_bomb(inflates_to: int) -> bytes:
    """An XLSX whose sheet declares 1,000 bytes, with the CRC of 1,000 zeros (so a reader that
    trusts the size finds nothing wrong), but inflates to `inflates_to` zeros."""
    sheet = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes())) as book:
        members = [(m.filename, zipfile.ZIP_STORED, book.read(m), zlib.crc32(book.read(m)),
                    m.file_size) for m in book.infolist() if m.filename != sheet]
    members.append((sheet, zipfile.ZIP_DEFLATED, zeros_deflated(inflates_to),
                    zlib.crc32(b"\0" * 1000), 1000))
    return handmade_zip(members)


def test_zip_bomb_with_forged_sizes_is_measured_while_inflating(tmp_path):
    inflates_to = 1024 * MB
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(forged_bomb(inflates_to))
    assert path.stat().st_size < 1.5 * MB
    child = read_in_a_child(path)
    assert child["rule"] == "F306", child
    assert "xl/worksheets/sheet1.xml" in child["reason"] and "1,000 bytes" in child["reason"]
    # At most the limit (100x the file) is inflated, never the GB (a reader that trusted the
    # declared size peaked at 1.2 GB here).
    assert child["peak_mb"] < 400, child


# Long records and wide headers (issue item 4).


def test_a_line_of_four_million_fields_is_refused_at_once_in_little_memory(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a," * 4_000_000)
    child = read_in_a_child(path)
    assert child["rule"] == "F306", child
    assert "line 1 " in child["reason"] and "8,000,000 bytes" in child["reason"]
    assert child["peak_mb"] < 1024 and child["seconds"] < 10, child


def test_a_long_line_deep_in_the_file_is_named(tmp_path):
    rows = [good_return()] * 3 + [good_return(enterprise_name="长" * (MB // 2))]
    reason = assert_quarantined(read(tmp_path, "long.csv", csv_bytes(rows)), "F306", "line 5 ")
    assert "1 MB" in reason


def test_a_json_line_over_1_mb_is_f306(tmp_path):
    rows = [good_return(), good_return(enterprise_name="x" * (MB + 10))]
    assert_quarantined(read(tmp_path, "long.jsonl", jsonl_bytes(rows)), "F306", "line 2 ")


@pytest.mark.parametrize("header", [
    ",".join(FORM_COLUMNS) + ",x" * 1200,
    # quoted line breaks: few commas on the first line, 2,400 fields in the record
    ",".join(FORM_COLUMNS) + ',"\n"' * 2400,
], ids=["plain", "quoted-line-breaks"])
def test_a_header_wider_than_1000_fields_is_f306(tmp_path, header):
    data = (header + "\n").encode() + csv_bytes().split(b"\n", 1)[1]
    assert_quarantined(read(tmp_path, "wide.csv", data), "F306", "the header has", "fields")


def test_json_objects_with_over_1000_distinct_keys_are_f306(tmp_path):
    # Every key is a column of every row: a thousand rows of a thousand new keys each would
    # make a million columns.
    lines = [json.dumps(good_return())] + [json.dumps({f"k{i}_{j}": "1" for j in range(100)})
                                           for i in range(11)]
    assert_quarantined(read(tmp_path, "keys.jsonl", "\n".join(lines).encode()), "F306",
                       "line 11 ", "distinct keys")


def test_deeply_nested_json_is_quarantined_not_a_crash(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for n, line in enumerate([f'{{"employees": {deep}}}', deep]):
        data = (json.dumps(good_return()) + "\n" + line).encode()
        assert_quarantined(read(tmp_path, f"deep{n}.jsonl", data), "F306", "line 2 ")


# One encoding throughout (issue item 6).


def test_a_gb18030_header_with_utf8_rows_is_f302(tmp_path):
    header, rows = csv_bytes(chinese=True).split(b"\n", 1)
    data = header.decode().encode("gb18030") + b"\n" + rows
    reason = assert_quarantined(read(tmp_path, "mixed.csv", data), "F302")
    assert "line 2 is UTF-8 but line 1 is GB18030" in reason
    # ASCII lines are both: between GB18030 lines they change nothing.
    rows = [good_return(), good_return(enterprise_name="Hangzhou Shili Co", contact_name="Li")]
    received = read(tmp_path, "县局.csv", csv_bytes(rows, "gb18030", chinese=True))
    assert received.status == "read" and received.report.encoding == "gb18030"
    assert received.frame["enterprise_name"].to_list() == ["杭州示例标准化有限公司",
                                                           "Hangzhou Shili Co"]


def test_a_utf8_file_with_one_gb18030_row_is_f302(tmp_path):
    rows = [good_return(), good_return(), good_return(enterprise_name="宁波甬江阀门厂")]
    lines = csv_bytes(rows).split(b"\n")
    lines[3] = lines[3].decode().encode("gb18030")
    reason = assert_quarantined(read(tmp_path, "mixed.csv", b"\n".join(lines)), "F302")
    assert "line 4 is GB18030 but line 2 is UTF-8" in reason


# JSON Lines (issue item 7).


def test_json_lines_are_split_on_line_feeds_only(tmp_path):
    names = ["杭州\u2028示例有限公司", "宁波\u2029甬江阀门厂", "温州\x85鞋业有限公司"]
    rows = [good_return(enterprise_name=name) for name in names]
    data = jsonl_bytes(rows).replace(b"\n", b"\r\n", 1)
    received = read(tmp_path, "u2028.jsonl", data)
    assert received.status == "read", received.report
    assert received.frame["enterprise_name"].to_list() == names
    assert received.frame["source_row"].to_list() == [1, 2, 3]


def findings(checked: pl.DataFrame) -> list[set[tuple[str, str, str]]]:
    return [{(f["rule_id"], f["column_name"], f["value_received"]) for f in row}
            for row in checked["findings"]]


def test_a_nested_value_or_a_key_named_twice_is_e002_for_that_row(tmp_path):
    def line(**cells) -> str:
        return json.dumps(good_return(**cells), ensure_ascii=False)

    lines = [
        line(),
        line(employees=[50]),
        line(enterprise_name={"zh": "杭州示例"}),
        line().replace('"credit_code": "913301081234567884"',
                       '"credit_code": "913301081234567884", "credit_code": "91330100799655058B"'),
        line(size_class=["small"]),
        line().replace('"张三"', '"\\ud800张三"'),  # a lone surrogate: no character at all
    ]
    received = read(tmp_path, "odd.jsonl", "\n".join(lines).encode())
    assert received.status == "read", received.report
    assert received.frame[UNREADABLE].to_list() == [
        [], ["employees"], ["enterprise_name"], ["credit_code"], ["size_class"],
        ["contact_name"]]
    checked = check_returns(received.frame, YEAR)
    assert checked["rejected"].to_list() == [False, True, True, True, True, True]
    good, employees, name, code, size, contact = findings(checked)
    assert good == set()
    assert employees == {("E002", "employees", "[50]")}
    assert name == {("E002", "enterprise_name", '{"zh": "杭州示例"}')}
    assert code == {("E002", "credit_code", '"913301081234567884", "91330100799655058B"')}
    # An enum's text that is not one of its values is also E008, as it always was.
    assert ("E002", "size_class", '["small"]') in size
    assert contact == {("E002", "contact_name", '"\\ud800张三"')}
    assert checked["enterprise_name"][2] is None and checked["credit_code"][3] is None


# What is not a regular file (issue item 11).


@pytest.fixture
def landing(tmp_path) -> tuple[Settings, Path]:
    settings = Settings(data_dir=tmp_path / "data")
    folder = settings.landing_dir(YEAR)
    folder.mkdir(parents=True)
    return settings, folder


def test_links_folders_and_pipes_in_landing_are_f307_and_never_read(tmp_path, landing):
    settings, folder = landing
    outside = tmp_path / "outside.csv"  # outside the data root
    outside.write_bytes(csv_bytes())
    (folder / "a.csv").write_bytes(csv_bytes())
    (folder / "link.csv").symlink_to(outside)
    (folder / "dangling.csv").symlink_to(tmp_path / "nothing.csv")
    (folder / "folder.csv").mkdir()
    (folder / "folder.csv" / "inside.csv").write_bytes(csv_bytes())
    os.mkfifo(folder / "pipe.csv")
    landed = landed_files(settings, YEAR)
    assert [p.name for p in landed] == ["a.csv", "dangling.csv", "folder.csv", "link.csv",
                                        "pipe.csv"]
    reports = {r["source_file"]: r for r in check_batch(settings, YEAR, landed)}
    assert reports.pop("a.csv")["rows"] == 2
    kinds = {"dangling.csv": "a symbolic link", "link.csv": "a symbolic link",
             "folder.csv": "a folder", "pipe.csv": "a named pipe"}
    for name, report in reports.items():
        assert (report["status"], report["rule"]) == ("quarantined", "F307"), report
        assert report["reason"].startswith(kinds[name]) and "never" in report["reason"]
        assert report["sha256"] is None and report["rows"] is None
        assert report["checked_path"] is None


# NUL bytes and UTF-16 (issue item 12).


def test_a_nul_byte_after_the_head_is_f302(tmp_path):
    rows = [good_return(enterprise_name=f"杭州示例{i}号有限公司") for i in range(150)]
    data = csv_bytes(rows)
    at = data.index("示例".encode(), 10_000)
    data = data[:at] + b"\x00" + data[at:]
    line = data.count(b"\n", 0, at) + 1
    assert_quarantined(read(tmp_path, "nul.csv", data), "F302", f"byte {at} ", f"line {line})")


def test_utf16_without_a_byte_order_mark_is_f302_and_random_bytes_still_f301(tmp_path):
    data = csv_bytes().decode().encode("utf-16-le")
    assert_quarantined(read(tmp_path, "u16.csv", data), "F302", "UTF-16")
    data = random.Random(7).randbytes(20_000)
    assert_quarantined(read(tmp_path, "random.csv", data), "F301")


# Random and damaged files: read or quarantined, never a traceback.

#: Odd things a person or a program puts in a cell.
ODD_CELLS = ["", " ", "五十", "1e400", "-1", "9" * 30, "NaN", "inf", "-0", "2.5", "1,2,3",
             "１２３", "\u3000", "\u200b50", "\ufeff50", "0x10", "1_000", "=1+1", "大型", "LARGE",
             "  small ", "省级", "2026-02-30 10:00", "0000-00-00", "9999-12-31T23:59:59+14:00",
             "2026-02-03", "913301081234567884", "９１３３０１０８１２３４５６７８８４", "330106 ",
             "\u2028", '"', "\r", "\n", "a\nb", "\x85", "x" * 300, "🏭", "\U000e0001", "null"]


def _odd_rows(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(rng.randint(1, 6)):
        row = good_return()
        for column in rng.sample(list(FORM_COLUMNS), rng.randint(0, 6)):
            row[column] = rng.choice([*ODD_CELLS, None])
        rows.append(row)
    return rows


def _odd_xlsx(rng: random.Random, rows: list[dict]) -> bytes:
    """An XLSX whose cells are text, numbers or dates at random."""
    import datetime as dt

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    date = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet.write_row(0, 0, list(FORM_COLUMNS))
    for r, row in enumerate(rows, start=1):
        for c, name in enumerate(FORM_COLUMNS):
            roll = rng.random()
            if roll < 0.1:
                sheet.write_number(r, c, rng.choice([0, -1, 2.5, 1e15, 1e300, -0.0, 50, 3e-9]))
            elif roll < 0.15:
                sheet.write_datetime(r, c, dt.datetime(rng.randint(1900, 9999), 1, 1), date)
            elif roll < 0.18:
                sheet.write_boolean(r, c, rng.random() < 0.5)
            elif row[name] is not None:
                sheet.write_string(r, c, row[name])
    book.close()
    return out.getvalue()


def _valid(rng: random.Random, kind: str) -> bytes:
    rows = _odd_rows(rng)
    if kind == "csv":
        return csv_bytes(rows)
    if kind == "gb18030":
        return csv_bytes(rows, "gb18030", chinese=True)
    if kind == "jsonl":
        return jsonl_bytes(rows)
    return _odd_xlsx(rng, rows)


def _damaged(rng: random.Random, data: bytes, kind: str) -> tuple[bytes, list[str]]:
    """None to three random damages done to `data`; returns it and their names."""
    done = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        name = rng.choice(_DAMAGES[kind] + _DAMAGES["any"])
        data = _DAMAGE[name](rng, data)
        done.append(name)
    return data, done


def _at(rng: random.Random, data: bytes) -> int:
    return rng.randint(0, len(data))


def _insert(data: bytes, at: int, what: bytes) -> bytes:
    return data[:at] + what + data[at:]


def _set_byte(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1:]


def _lines(rng: random.Random, data: bytes, change) -> bytes:
    lines = data.split(b"\n")
    change(lines, rng.randrange(len(lines)))
    return b"\n".join(lines)


def _json_value(rng: random.Random, data: bytes) -> bytes:
    odd = rng.choice([b"[50]", b'{"a": [1, {"b": 2}]}', b"1e999", b'"\\ud800"', b"NaN",
                      b"true", b"null", b"9" * 5000, b"[" * 5000 + b"]" * 5000, b'"\\u0000"',
                      b'""', b"-0.0", b"12345678901234567890", b"{}", b"[]"])
    if rng.random() < 0.5:
        return data.replace(b'"50"', odd, 1)
    return data.replace(b'"employees": "50"', b'"employees": "50", "employees": ' + odd, 1)


def _json_key(rng: random.Random, data: bytes) -> bytes:
    key = rng.choice([b'"\\ud800"', b'""', b'"employees"', b'"\xe4\xbc\x81\xe4\xb8\x9a"',
                      b'"x\\u0000"', b'"' + b"k" * 5000 + b'"'])
    return data.replace(b'"revenue"', key, 1)


def _member(rng: random.Random, data: bytes) -> bytes:
    """A member of the archive damaged inside, the archive itself well formed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            members = [(m, book.read(m)) for m in book.infolist()]
    except Exception:
        return data
    out = io.BytesIO()
    victim = rng.randrange(len(members))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name", which is the point
        for i, (member, content) in enumerate(members):
            if i == victim:
                action = rng.choice(["flip", "drop", "truncate", "twice", "garbage", "stored"])
                if action == "drop":
                    continue
                if action == "flip" and content:
                    at = rng.randrange(len(content))
                    content = _set_byte(content, at, content[at] ^ 0xFF)
                elif action == "truncate":
                    content = content[:rng.randint(0, len(content))]
                elif action == "twice":
                    book.writestr(member.filename, content)
                elif action == "garbage":
                    content = rng.randbytes(rng.randint(0, 3000))
                elif action == "stored":
                    book.writestr(member.filename, content, zipfile.ZIP_STORED)
                    continue
            book.writestr(member.filename, content)
    return out.getvalue()


def _zip_field(rng: random.Random, data: bytes) -> bytes:
    """A field of a local header or directory entry set to something else: method, flags (say,
    encrypted), CRC or sizes."""
    headers = [i for sig in (b"PK\x03\x04", b"PK\x01\x02") for i in range(len(data))
               if data.startswith(sig, i)]
    if not headers:
        return data
    at = rng.choice(headers)
    local = data.startswith(b"PK\x03\x04", at)
    field, width = rng.choice([(6, 2), (8, 2), (14, 4), (18, 4), (22, 4)] if local else
                              [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4)])
    value = rng.choice([0, 1, 99, 0xFFFF, 2**31, 2**32 - 1, 12, 14]) % (256**width)
    return data[:at + field] + value.to_bytes(width, "little") + data[at + field + width:]


_DAMAGE = {
    "flip": lambda rng, d: bytes(b ^ (rng.randrange(1, 256) if rng.random() < 0.002 else 0)
                                 for b in d),
    "flip-one": lambda rng, d: _set_byte(d, rng.randrange(len(d)), rng.randrange(256)) if d
    else d,
    "insert": lambda rng, d: _insert(d, _at(rng, d), rng.randbytes(rng.randint(1, 40))),
    "delete": lambda rng, d: d[:(at := _at(rng, d))] + d[at + rng.randint(1, 200):],
    "truncate": lambda rng, d: d[:_at(rng, d)],
    "nul": lambda rng, d: _insert(d, _at(rng, d), b"\x00"),
    "quote": lambda rng, d: _insert(d, _at(rng, d), b'"'),
    "u2028": lambda rng, d: _insert(d, _at(rng, d), "\u2028".encode()),
    "crlf": lambda rng, d: d.replace(b"\n", b"\r\n"),
    "cr-only": lambda rng, d: d.replace(b"\n", b"\r"),
    "bom": lambda rng, d: b"\xef\xbb\xbf" + d,
    "comma": lambda rng, d: _insert(d, _at(rng, d), b"," * rng.randint(1, 5)),
    "huge-line": lambda rng, d: _insert(d, _at(rng, d), b"x" * (MB + rng.randint(0, 100))),
    "blank-lines": lambda rng, d: _insert(d, _at(rng, d), b"\n" * rng.randint(1, 5)),
    "duplicate-line": lambda rng, d: _lines(rng, d, lambda ls, i: ls.insert(i, ls[i])),
    "drop-line": lambda rng, d: _lines(rng, d, lambda ls, i: ls.pop(i)),
    "swap-lines": lambda rng, d: _lines(rng, d, lambda ls, i: ls.insert(0, ls.pop(i))),
    "gb18030-line": lambda rng, d: _lines(
        rng, d, lambda ls, i: ls.__setitem__(i, "杭州示例".encode("gb18030") + ls[i])),
    "json-value": _json_value,
    "json-key": _json_key,
    "member": _member,
    "zip-field": _zip_field,
}
_DAMAGES = {
    "any": ["flip", "flip-one", "insert", "delete", "truncate", "nul"],
    "csv": ["quote", "u2028", "crlf", "cr-only", "bom", "comma", "huge-line", "blank-lines",
            "duplicate-line", "drop-line", "swap-lines", "gb18030-line"],
    "jsonl": ["quote", "u2028", "crlf", "bom", "huge-line", "blank-lines", "duplicate-line",
              "drop-line", "swap-lines", "gb18030-line", *["json-value"] * 8, *["json-key"] * 3],
    "xlsx": ["member", "member", "member", "zip-field", "zip-field"],
}


def fuzz(seed: int, cases: int, folder: str) -> dict:
    """Read `cases` random and damaged files; every way the reader failed to answer (a
    traceback, or an answer outside its contract), with the file kept to replay it."""
    rng = random.Random(seed)
    settings = Settings(data_dir=Path(folder))
    failures, frames, answers = [], [], {}
    for case in range(cases):
        kind = rng.choice(["csv", "gb18030", "jsonl", "xlsx", "random"])
        if kind == "random":
            data, done = rng.randbytes(rng.choice([0, 1, 10, 100, 5000, 50_000])), ["random"]
        else:
            data, done = _damaged(rng, _valid(rng, kind), "csv" if kind == "gb18030" else kind)
        label = f"{case}-{kind}-{'+'.join(done)}"
        path = Path(folder) / f"{label}.bin"
        path.write_bytes(data)
        try:
            received = read_received(settings, path)
            report = received.report
            answer = report.rule or "read"
            if received.status == "read":
                assert received.frame.columns == [*RAW_META_COLUMNS, *FORM_COLUMNS, UNREADABLE]
                assert received.frame.height == report.rows > 0
                frames.append((label, received.frame))
            else:
                assert received.status == "quarantined" and received.frame is None
                assert report.rule in ("F301", "F302", "F303", "F304", "F305", "F306")
                assert isinstance(report.reason, str) and report.reason
        except BaseException:  # noqa: B036 - a panic from Rust is a BaseException
            failures.append({"case": label, "file": str(path), "error": traceback.format_exc()})
            continue
        answers[answer] = answers.get(answer, 0) + 1
        path.unlink()
    try:
        checked = check_returns(pl.concat([frame for _, frame in frames]), YEAR)
        assert checked.height == sum(frame.height for _, frame in frames)
    except BaseException:  # noqa: B036
        for label, frame in frames:  # which file, then
            try:
                assert check_returns(frame, YEAR).height == frame.height
            except BaseException:  # noqa: B036
                failures.append({"case": label, "error": traceback.format_exc()})
    return {"failures": failures, "answers": answers,
            "peak_mb": peak_mb()}


def test_random_and_damaged_files_are_read_or_quarantined_never_a_traceback(tmp_path):
    # In a child: its peak memory is the reading's alone.
    code = ("import json, sys; import test_hostile_files as t; "
            "print(json.dumps(t.fuzz(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", code, "20250401", "500", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["failures"] == [], "\n\n".join(
        f"{f['case']} ({f.get('file')}):\n{f['error']}" for f in result["failures"])
    # Both answers happen often enough for the test to mean something.
    assert result["answers"].get("read", 0) > 100, result["answers"]
    assert sum(result["answers"].values()) == 500
    assert result["peak_mb"] < 1536, result


def test_random_files_landed_together_are_all_accounted_for(tmp_path, landing):
    """A year of damaged files, names with pattern characters, links, a folder and a pipe, run
    through to the manifest: every entry is read or quarantined, and the rows add up."""
    from pipeline.runner import run_year

    settings, folder = landing
    rng = random.Random(20251231)
    for case in range(40):
        kind = rng.choice(["csv", "gb18030", "jsonl", "xlsx", "random"])
        data = rng.randbytes(rng.choice([0, 10, 5000])) if kind == "random" else _damaged(
            rng, _valid(rng, kind), "csv" if kind == "gb18030" else kind)[0]
        (folder / f"{case}-{kind}[{rng.choice('*?')}].dat").write_bytes(data)
    # Distinct returns the year can publish, so publication is reached.
    (folder / "good.csv").write_bytes(csv_bytes([
        good_return(credit_code="913301081234567884"),
        good_return(credit_code="91330100799655058B")]))
    (folder / "link.csv").symlink_to(folder / "good.csv")
    (folder / "folder").mkdir()
    (folder / "folder" / "inside.csv").write_bytes(csv_bytes())
    os.mkfifo(folder / "pipe.csv")
    accounting = run_year(settings, YEAR)  # raises AccountingError if rows go missing
    assert accounting["files_received"] == len(list(folder.iterdir())) == 44
    outcomes = ("accepted", "rejected", "superseded", "duplicate")
    for entry in accounting["files"]:
        if entry["status"] == "read":
            assert entry["rows_read"] == sum(entry[k] for k in outcomes) > 0, entry
        else:
            assert entry["rule"] in ("F301", "F302", "F303", "F304", "F305", "F306", "F307")
    total = accounting["total"]
    assert total["rows_read"] == sum(total[k] for k in outcomes)
    inputs = {i["name"]: i for i in accounting["manifest"]["inputs"]}
    assert {name for name, i in inputs.items() if i["rule"] == "F307"} == {
        "link.csv", "folder", "pipe.csv"}
    assert inputs["link.csv"]["sha256"] is None and inputs["good.csv"]["status"] == "read"
