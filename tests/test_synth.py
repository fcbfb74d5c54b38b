"""Tests of the synthetic survey-year generator: determinism, shapes, rule coverage, exact truth."""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import tomllib
import unicodedata
from collections import Counter
from pathlib import Path

import fastexcel
import pytest

from devtools.oracle import Oracle, credit_code_ok, decide
from devtools.synth import LEDGER, TRUTH_FILES, ForeignFiles, main, synthesize
from schemas import reference
from schemas.form import FORM_COLUMNS
from schemas.tables import MAGNITUDES

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


def _generate(root: Path) -> dict[int, dict]:
    return {year: synthesize(year, N, SEED, root, max_rows=MAX_ROWS) for year in (FIRST, SECOND)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[int, dict]]:
    path = tmp_path_factory.mktemp("synth")
    return path, _generate(path)


@pytest.fixture(scope="module")
def root(generated) -> Path:
    return generated[0]


@pytest.fixture(scope="module")
def summaries(generated) -> dict[int, dict]:
    return generated[1]


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


def _frame_codes(root: Path, year: int) -> set[str]:
    """The frame's enterprises: codes normalised as survey-form §6 says, N402 rows left out."""
    junk = {int(r["source_row"]) for r in _table(root / "synth" / str(year) / "truth_frame.csv")}
    frame = _table(root / "frame" / f"{year}.csv")
    return {_nfkc(r["credit_code"]).upper() for i, r in enumerate(frame) if i + 2 not in junk}


def test_frame_holds_non_filers(root, files):
    frame = _table(root / "frame" / f"{SECOND}.csv")
    assert list(frame[0]) == [
        "credit_code",
        "enterprise_name",
        "region_code",
        "industry_code",
        "size_class",
    ]
    # Codes in other spellings, N402 rows and a repeated enterprise are in the file too.
    assert len(frame) > N
    codes = _frame_codes(root, SECOND)
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
    assert [p.name for p in (first / "synth" / str(FIRST)).iterdir()] == [LEDGER]
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


# ---------------------------------------------------------------------------------------------
# Non-response, the population's truth and the frame's variants
# ---------------------------------------------------------------------------------------------


def _population(root: Path, year: int) -> dict[str, dict]:
    rows = _table(root / "synth" / str(year) / "truth_population.csv")
    return {r["credit_code"]: r for r in rows}


def _sizes(root: Path, year: int) -> dict[str, str]:
    return {
        _nfkc(r["credit_code"]).upper(): r["size_class"]
        for r in _table(root / "frame" / f"{year}.csv")
    }


def test_non_filers_are_mostly_small_and_micro(root, summaries):
    for year in (FIRST, SECOND):
        population, sizes = _population(root, year), _sizes(root, year)
        non_filers = [c for c, r in population.items() if r["files"] == "0"]
        assert len(non_filers) == summaries[year]["non_filers"]
        assert 0.04 * N < len(non_filers) < 0.08 * N
        by_size = Counter(sizes[c] for c in non_filers)
        assert by_size["micro"] + by_size["small"] >= 0.9 * len(non_filers), by_size
        rate = {
            s: by_size[s] / sum(1 for c in population if sizes[c] == s) for s in ("micro", "small")
        }
        assert rate["micro"] > rate["small"], rate
        # A non-filer has no accepted return; "no_return" counts every frame enterprise without.
        assert all(population[c]["accepted"] == "0" for c in non_filers)
        no_return = sum(1 for r in population.values() if r["accepted"] == "0")
        assert no_return == summaries[year]["no_return"] > len(non_filers)


def test_second_year_non_filers_partly_filed_the_year_before(root):
    before, now = _population(root, FIRST), _population(root, SECOND)
    non_filers = [c for c, r in now.items() if r["files"] == "0"]
    filed_before = [c for c in non_filers if before[c]["files"] == "1"]
    # Most missed one year (ratio imputation); a persistent core never files (donor).
    assert 0.4 * len(non_filers) < len(filed_before) < 0.9 * len(non_filers)
    accepted_before = [c for c in non_filers if before[c]["accepted"] == "1"]
    assert 0 < len(accepted_before) < len(non_filers)


def test_population_truth_covers_the_frame(root):
    for year in (FIRST, SECOND):
        rows = _table(root / "synth" / str(year) / "truth_population.csv")
        assert list(rows[0]) == [
            "credit_code",
            "files",
            "accepted",
            *MAGNITUDES,
            "innovation_award",
        ]
        codes = [r["credit_code"] for r in rows]
        assert codes == sorted(codes) and set(codes) == _frame_codes(root, year)
        assert len(codes) == N
        accepted = {r["credit_code"] for r in rows if r["accepted"] == "1"}
        no_return = _table(root / "synth" / str(year) / "truth_no_return.csv")
        assert {r["credit_code"] for r in no_return} == set(codes) - accepted
        counts = _table(root / "synth" / str(year) / "accepted_counts.csv")
        assert {r["credit_code"] for r in counts} == accepted
        # Its count columns are the accepted counts, enterprise by enterprise.
        population = {r["credit_code"]: r for r in rows}
        for r in counts:
            for c in MAGNITUDES:
                if c in r:
                    assert population[r["credit_code"]][c] == r[c], (r["credit_code"], c)
        for r in rows:
            for lv in ("intl", "national", "industry", "local", "group"):
                assert 0 <= int(r[f"{lv}_led"]) <= int(r[f"{lv}_involved"])
            assert re.fullmatch(r"[0-9]+\.[0-9]{2}", r["std_spending"])
            assert r["innovation_award"] in ("none", "county", "city", "province")


def _typed(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def test_population_truth_is_the_accepted_returns_as_read_back(root, files):
    """An accepted enterprise's row holds its accepted return's values (as read from disk);
    one whose rows were all rejected holds what it would have filed: its rejected row but
    for the faulted cell."""
    population = _population(root, SECOND)
    truth = {
        (t["source_file"], int(t["source_row"])): t["outcome"]
        for t in _table(root / "synth" / str(SECOND) / "truth_rows.csv")
    }
    oracle = Oracle(SECOND, {})
    columns = [*MAGNITUDES, "innovation_award"]
    seen, near = set(), set()
    for name, rows in files[SECOND].items():
        for row, cells in rows:
            _, _, values = oracle.check(cells)
            code = values["credit_code"]
            if truth[(name, row)] == "accepted":
                assert [population[code][c] for c in columns] == [
                    _typed(values[c]) for c in columns
                ], (name, row)
                seen.add(code)
            elif code in population and population[code]["accepted"] == "0":
                differ = [
                    c
                    for c in columns
                    if values[c] is not None and _typed(values[c]) != population[code][c]
                ]
                assert len(differ) <= 1, (name, row, differ)
                near.add(code)
    assert seen == {c for c, r in population.items() if r["accepted"] == "1"}
    rejected = {c for c, r in population.items() if r["files"] == "1" and r["accepted"] == "0"}
    # Rejected for a mangled credit code, an enterprise is not found under its own code.
    assert len(near) > 0.6 * len(rejected) and near <= rejected


def test_frame_variants_and_rejected_rows(root, summaries):
    path = root / "frame" / f"{SECOND}.csv"
    with open(path, encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == [
        "credit_code",
        "enterprise_name",
        "region_code",
        "industry_code",
        "size_class",
    ]
    written = [line[0] for line in lines[1:]]
    lower = [c for c in written if c != c.upper()]
    full = [c for c in written if any("\uff10" <= ch <= "\uff5a" for ch in c)]
    spaced = [c for c in written if c != c.strip()]
    assert lower and full and spaced, (len(lower), len(full), len(spaced))
    assert len(lower) + len(full) + len(spaced) < 0.05 * N

    junk = _table(root / "synth" / str(SECOND) / "truth_frame.csv")
    assert list(junk[0]) == ["source_row", "credit_code"]
    assert len(junk) == max(2, round(0.0002 * N)) == summaries[SECOND]["frame_rejected"]
    real = _frame_codes(root, SECOND)
    counties, classes = set(reference.county_codes()), set(reference.industry_classes())
    for j in junk:
        line = lines[int(j["source_row"]) - 1]  # the header is row 1
        assert line[0] == j["credit_code"]
        code = _nfkc(line[0]).upper()
        assert not credit_code_ok(code) and _check_char(code[:17]) != code[17]
        assert len(code) == 18 and set(code) <= set(ALPHABET)  # E005, not E004
        assert code not in real
        assert line[2] in counties and line[3] in classes
        assert line[4] in ("large", "medium", "small", "micro")
    # A code listed twice counts once: normalised, some real code appears on two rows.
    listed = Counter(_nfkc(c).upper() for c in written)
    twice = [c for c, k in listed.items() if k > 1]
    assert twice and set(twice) <= real
    assert len(written) == N + len(junk) + sum(listed[c] - 1 for c in twice)
    # Every written code of the population normalises to a valid code.
    assert all(credit_code_ok(c) for c in real)


def test_no_truth_removes_every_truth_file(tmp_path):
    synthesize(FIRST, 400, SEED, tmp_path, max_rows=500)
    folder = tmp_path / "synth" / str(FIRST)
    assert {"truth_population.csv", "truth_frame.csv"} <= set(TRUTH_FILES)
    assert all((folder / name).exists() for name in TRUTH_FILES)
    summary = synthesize(FIRST, 400, SEED, tmp_path, max_rows=500, truth=False)
    assert not any((folder / name).exists() for name in TRUTH_FILES)
    assert summary["frame_rejected"] == 2 and summary["non_filers"] > 0
    assert "no_return" not in summary


# ---------------------------------------------------------------------------------------------
# Re-runs: the generator replaces only what it wrote (synth/<year>/written.json), unchanged
# ---------------------------------------------------------------------------------------------

SMALL = 400


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }


def test_a_rerun_replaces_its_own_files(tmp_path):
    again, fresh = tmp_path / "again", tmp_path / "fresh"
    synthesize(FIRST, SMALL, SEED, again, max_rows=500)
    before = set((again / "landing" / str(FIRST)).iterdir())
    synthesize(FIRST, SMALL, SEED + 1, again, max_rows=500)
    synthesize(FIRST, SMALL, SEED + 1, fresh, max_rows=500)
    # Another seed lands in other counties' files: none of the first run's is left behind.
    assert before != set((again / "landing" / str(FIRST)).iterdir())
    assert _snapshot(again) == _snapshot(fresh)
    ledger = json.loads((again / "synth" / str(FIRST) / LEDGER).read_text())["files"]
    assert set(ledger) == set(_snapshot(again)) - {f"synth/{FIRST}/{LEDGER}"}


@pytest.mark.parametrize(
    "folder, foreign, after_a_run",
    [
        # A county's file named the way the generator names its own, before any run.
        (f"landing/{FIRST}", f"county_330102_{FIRST}.csv", False),
        (f"landing/{FIRST}", f"county_330102_{FIRST}_补报.csv", True),
        (f"landing/{FIRST}", "县局补报/returns.csv", True),  # named by its folder
        ("frame", f"{FIRST}.csv", False),  # the office's own frame
    ],
)
def test_a_file_it_did_not_write_is_refused_and_kept(tmp_path, folder, foreign, after_a_run):
    if after_a_run:
        synthesize(FIRST, SMALL, SEED, tmp_path, max_rows=500)
    path = tmp_path / folder / foreign
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("统一社会信用代码\n真实的县局文件\n".encode())
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignFiles) as refused:
        synthesize(FIRST, SMALL, SEED + 1, tmp_path, max_rows=500)
    named = foreign.split("/")[0]
    assert f"{tmp_path / folder} holds {named} (not written by the generator)" in str(
        refused.value
    )
    assert _snapshot(tmp_path) == before


def test_a_file_it_wrote_and_someone_changed_is_refused_and_kept(tmp_path):
    synthesize(FIRST, SMALL, SEED, tmp_path, max_rows=500)
    ledger = json.loads((tmp_path / "synth" / str(FIRST) / LEDGER).read_text())["files"]
    changed = tmp_path / min(f for f in ledger if f.startswith("landing/"))
    changed.write_bytes(changed.read_bytes() + b"\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ForeignFiles, match=f"{changed.name} \\(changed since the generator"):
        synthesize(FIRST, SMALL, SEED, tmp_path, max_rows=500)
    assert _snapshot(tmp_path) == before


def test_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SURVEY_DATA_DIR", str(tmp_path))  # the default data dir
    with pytest.raises(SystemExit) as usage:
        main(["--year", str(FIRST), "--enterprises", "-5"])
    assert usage.value.code == 2
    assert "--enterprises: must be a whole number of 1 or more, not '-5'" in capsys.readouterr().err
    args = ["--year", str(FIRST), "--enterprises", str(SMALL), "--max-rows", "500"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["enterprises"] == SMALL
    foreign = tmp_path / "landing" / str(FIRST) / f"county_330102_{FIRST}_补报.csv"
    foreign.write_text("credit_code\n")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and foreign.name in err
    assert foreign.read_text() == "credit_code\n"


def test_the_product_never_imports_devtools():
    """devtools is not in the wheel (pyproject) or the image: an import of it would fail there."""
    root = Path(__file__).resolve().parent.parent
    with open(root / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
            "pipeline",
            "schemas",
        ]
    for path in sorted(p for folder in ("pipeline", "schemas", "dags")
                       for p in (root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "devtools" for n in names), path


@pytest.mark.parametrize("seed", [1, 2])
def test_rare_things_are_rare(seed):
    """As in the province's figures (55 international, 2,819 national standards led over the
    pilot years): a year of 50,000 leads tens of international standards, mostly in large
    enterprises, and national ones in the low hundreds. The year's values before any fault."""
    from devtools.synth import _population, _year_values

    population = _population(seed, 50_000)
    values = _year_values(population, seed, SECOND)
    size = population["size_class"].to_numpy()
    assert 20 <= values["intl_led"].sum() <= 60
    assert 100 <= values["national_led"].sum() <= 400
    involved = values["intl_involved"] > 0
    assert involved.sum() < 100 and (size[involved] == "large").mean() > 0.5
    assert values["intl_tc_posts"].sum() < 50 and values["intl_registered_experts"].sum() < 200
    for lv in ("intl", "national", "industry", "local", "group"):
        assert (values[f"{lv}_led"] <= values[f"{lv}_involved"]).all()
    assert values["intl_led"].sum() < values["national_led"].sum() < values["group_led"].sum()
