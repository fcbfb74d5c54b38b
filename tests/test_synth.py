"""Tests of the synthetic survey-year generator: determinism, shapes, rule coverage, exact truth."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from pathlib import Path

import fastexcel
import pytest

from pipeline.synth import Oracle, decide, synthesize
from schemas.form import FORM_COLUMNS

N = 2_000
SEED = 11
MAX_ROWS = 1_000  # keeps the F305 file (max_rows + 1 rows) small
FIRST, SECOND = 2023, 2024

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _check_char(code17: str) -> str:
    # Written out again here from GB 32100 §4 rather than imported: weights 3^(i-1) mod 31.
    total = sum(ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(code17))
    return ALPHABET[(31 - total % 31) % 31]


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


HEADER = {}
for _name, _col in FORM_COLUMNS.items():
    HEADER[_nfkc(_name)] = _name
    HEADER[_nfkc(_col.label_zh)] = _name


def _column(header: str) -> str | None:
    h = _nfkc(header)
    if h in HEADER:
        return HEADER[h]
    bare = re.sub(r"\([^()]*\)$", "", h).strip()  # a unit in brackets
    return HEADER.get(bare)


def read_back(path: Path) -> list[tuple[int, dict]]:
    """(row number, {form column: cell}) of one landing file, read with ordinary readers."""
    data = path.read_bytes()
    if data[:2] == b"PK":
        df = fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()
        names = [_column(h) for h in df.columns]
        return [
            (i + 2, {n: v for n, v in zip(names, row, strict=True) if n})
            for i, row in enumerate(df.iter_rows())
        ]
    if path.suffix == ".jsonl":
        out = []
        for i, line in enumerate(data.decode("utf-8").rstrip("\n").split("\n")):
            obj = json.loads(line)
            out.append((i + 1, {_column(k): v for k, v in obj.items() if _column(k)}))
        return out
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    names = [_column(h) for h in rows[0]]
    return [
        (i + 2, {n: v for n, v in zip(names, row, strict=True) if n})
        for i, row in enumerate(rows[1:])
    ]


def _table(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _generate(root: Path) -> None:
    for year in (FIRST, SECOND):
        synthesize(year, N, SEED, root, max_rows=MAX_ROWS)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth")
    _generate(path)
    return path


@pytest.fixture(scope="module")
def files(root) -> dict[int, dict[str, list[tuple[int, dict]]]]:
    """Read-back rows of every file the truth says was read, per year."""
    out = {}
    for year in (FIRST, SECOND):
        listed = _table(root / "synth" / str(year) / "truth_files.csv")
        out[year] = {
            f["source_file"]: read_back(root / "landing" / str(year) / f["source_file"])
            for f in listed
            if f["status"] == "read"
        }
    return out


def _truth_ids(root: Path, year: int) -> set[str]:
    rows = _table(root / "synth" / str(year) / "truth_rows.csv")
    ids = {r for row in rows for r in row["rule_ids"].split(";") if r}
    ids |= {f["rule"] for f in _table(root / "synth" / str(year) / "truth_files.csv") if f["rule"]}
    return ids


def test_deterministic(root, tmp_path):
    _generate(tmp_path)
    first = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_every_shape_present(root):
    shapes = set()
    for path in (root / "landing" / str(SECOND)).iterdir():
        if path.is_dir():  # the F307 folder
            shapes.add("folder")
            continue
        data = path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            shapes.add("bom")
            if b"\r\n" in data:
                shapes.add("crlf")
        elif data[:2] == b"PK" and path.suffix == ".xlsx":
            shapes.add("xlsx")
        elif path.suffix == ".jsonl":
            json.loads(data.splitlines()[0])
            shapes.add("jsonl")
        elif path.suffix == ".csv":
            try:
                data.decode("utf-8")
                shapes.add("utf8")
            except UnicodeDecodeError:
                if data.startswith(b"\xff\xfe"):  # the UTF-16 file of F302
                    continue
                if "统一社会信用代码" in data.decode("gb18030").splitlines()[0]:
                    shapes.add("gb18030_chinese")
    assert {"bom", "crlf", "xlsx", "jsonl", "utf8", "gb18030_chinese", "folder"} <= shapes


def test_every_rule_present(root):
    ids = _truth_ids(root, SECOND)
    expected = {f"E{i:03d}" for i in range(1, 12)} | {f"W{i}" for i in range(101, 108)}
    expected |= {f"F{i}" for i in range(301, 307)} | {"D201", "D202"}
    assert expected <= ids, sorted(expected - ids)


def test_no_tenfold_rule_without_last_year(root):
    assert "W106" not in _truth_ids(root, FIRST)
    assert "W106" in _truth_ids(root, SECOND)


def test_truth_matches_file_contents(root, files):
    """Re-judging every row as read back from disk gives exactly the truth written."""
    for year in (FIRST, SECOND):
        previous = {}
        if year == SECOND:
            sidecar = _table(root / "synth" / str(FIRST) / "accepted_counts.csv")
            previous = {r.pop("credit_code"): {k: int(v) for k, v in r.items()} for r in sidecar}
        oracle = Oracle(year, previous)
        judged = []
        for name in sorted(files[year]):
            for row, cells in files[year][name]:
                found, key, values = oracle.check(cells)
                judged.append((name, row, found, key, values))
        expected = [
            [n, str(r), o, ids] for (n, r, *_), (o, ids) in zip(judged, decide(judged), strict=True)
        ]
        truth = [list(r.values()) for r in _table(root / "synth" / str(year) / "truth_rows.csv")]
        assert truth == expected
        counts = {
            f["source_file"]: int(f["rows"])
            for f in _table(root / "synth" / str(year) / "truth_files.csv")
            if f["rows"]
        }
        assert counts == {name: len(rows) for name, rows in files[year].items()}


def test_last_year_counts_are_the_accepted_rows(root, files):
    truth = _table(root / "synth" / str(FIRST) / "truth_rows.csv")
    accepted = {
        (t["source_file"], int(t["source_row"])) for t in truth if t["outcome"] == "accepted"
    }
    counts = {}
    for name, rows in files[FIRST].items():
        for row, cells in rows:
            if (name, row) in accepted:
                code = _nfkc(cells["credit_code"]).upper()
                counts[code] = {
                    c: str(int(float(_nfkc(str(cells.get(c) or "0")).replace(",", ""))))
                    for c, m in FORM_COLUMNS.items()
                    if m.kind == "count"
                }
    sidecar = _table(root / "synth" / str(FIRST) / "accepted_counts.csv")
    assert {r.pop("credit_code"): r for r in sidecar} == counts


def test_clean_rows_have_valid_credit_codes(root, files):
    truth = {
        (t["source_file"], int(t["source_row"])): t
        for t in _table(root / "synth" / str(SECOND) / "truth_rows.csv")
    }
    checked = 0
    for name, rows in files[SECOND].items():
        for row, cells in rows:
            t = truth[(name, row)]
            code = _nfkc(cells["credit_code"]).upper()
            if t["outcome"] == "accepted":
                assert len(code) == 18 and set(code) <= set(ALPHABET), (name, row, code)
                assert _check_char(code[:17]) == code[17], (name, row, code)
                checked += 1
            if "E005" in t["rule_ids"]:
                assert _check_char(code[:17]) != code[17]
    assert checked > 0.85 * N


def test_frame_holds_non_filers(root, files):
    frame = _table(root / "frame" / f"{SECOND}.csv")
    assert list(frame[0]) == [
        "credit_code",
        "enterprise_name",
        "region_code",
        "industry_code",
        "size_class",
    ]
    codes = {r["credit_code"] for r in frame}
    assert len(codes) == N
    no_return = {
        r["credit_code"] for r in _table(root / "synth" / str(SECOND) / "truth_no_return.csv")
    }
    assert no_return <= codes
    seen = {
        _nfkc(c["credit_code"]).upper()
        for rows in files[SECOND].values()
        for _, c in rows
        if c.get("credit_code")
    }
    never_filed = codes - seen
    assert 0.03 * N < len(never_filed) < 0.08 * N
    assert never_filed <= no_return


def test_population_is_stable_across_years(root):
    first = (root / "frame" / f"{FIRST}.csv").read_bytes()
    assert first == (root / "frame" / f"{SECOND}.csv").read_bytes()


def test_row_limit_file_has_one_row_too_many(root):
    files = _table(root / "synth" / str(SECOND) / "truth_files.csv")
    (name,) = [f["source_file"] for f in files if f["rule"] == "F305"]
    with open(root / "landing" / str(SECOND) / name, encoding="utf-8", newline="") as f:
        assert sum(1 for _ in csv.reader(f)) - 1 == MAX_ROWS + 1


def test_multiline_cells_count_as_one_row(root, files):
    multiline = [
        (name, row)
        for name, rows in files[SECOND].items()
        for row, cells in rows
        if any("\n" in str(v) for v in cells.values())
    ]
    assert multiline, "expected some quoted cells with line breaks"


def test_csv_only_mode(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    summary = synthesize(FIRST, 600, SEED, first, formats="csv", truth=False, max_rows=500)
    synthesize(FIRST, 600, SEED, second, formats="csv", truth=False, max_rows=500)
    landing = sorted((first / "landing" / str(FIRST)).iterdir())
    assert summary["files"] == len(landing)
    assert not (first / "synth").exists()
    for path in landing:
        assert path.suffix == ".csv"
        data = path.read_bytes()
        assert data == (second / "landing" / str(FIRST) / path.name).read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data
        header = data.decode("utf-8").split("\n", 1)[0]
        assert "credit_code" in unicodedata.normalize("NFKC", header)


def test_csv_only_mode_still_has_faults(tmp_path):
    synthesize(FIRST, N, SEED, tmp_path, formats="csv", max_rows=MAX_ROWS)
    synthesize(SECOND, N, SEED, tmp_path, formats="csv", max_rows=MAX_ROWS)
    ids = _truth_ids(tmp_path, SECOND)
    expected = {f"E{i:03d}" for i in range(1, 12)} | {f"W{i}" for i in range(101, 108)}
    expected |= {"F303", "F304", "F305", "F306", "D201", "D202"}
    assert expected <= ids, sorted(expected - ids)
    assert len(list((tmp_path / "landing" / str(SECOND)).iterdir())) < 25
