"""`make bench`: check + de-duplicate timed against a scan floor and naive pandas."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from schemas.types import CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS

YEAR = 2025
SEED = 7
ROOT = Path(__file__).resolve().parent.parent
#: The targets `make bench` reports on.
FLOOR_FACTOR, BASELINE_FACTOR, RSS_LIMIT_MB = 5, 10, 3000
#: Above this many rows the naive baseline runs on a sample and is scaled linearly.
BASELINE_DEFAULT_MAX_ROWS = 1_000_000
DERIVED_LAYERS = ("checked", "valid", "output")
_CODE_VALUES = {ch: value for value, ch in enumerate(CREDIT_CODE_ALPHABET)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="synthetic enterprises (about one return each)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--baseline-rows", type=int, default=BASELINE_DEFAULT_MAX_ROWS,
                        help="run the naive baseline on at most this many rows and scale up")
    parser.add_argument("--child", choices=["pipeline", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.work_dir.resolve() / "data"
    if args.child == "pipeline":
        return _emit(measure_pipeline(data_dir))
    if args.child == "baseline":
        return _emit(measure_baseline(data_dir, args.work_dir.resolve(), args.baseline_rows))
    return bench(args.rows, args.work_dir.resolve(), args.baseline_rows)


def bench(rows: int, work_dir: Path, baseline_rows: int) -> int:
    data_dir = prepare_data(work_dir, rows)
    # Other work on the machine skews every timing here; the load average says how much.
    load = os.getloadavg()[0]
    pipeline = run_child("pipeline", work_dir)
    baseline = run_child("baseline", work_dir, "--baseline-rows", str(baseline_rows))
    # The scan floor runs last and in-process: the children are already measured.
    floor, scan_rows = scan_floor(csv_files(data_dir))
    result = summarise(pipeline, baseline, floor)
    result.update(scan_rows=scan_rows, load_average_1m=round(load, 2))
    print_table(result, pipeline, baseline)
    print(json.dumps(result), flush=True)  # plain print: rich would wrap the line
    return 0


# Data ---------------------------------------------------------------------------------------


def prepare_data(work_dir: Path, enterprises: int, max_rows: int | None = None) -> Path:
    """DIR/data with a synthetic year of CSV files (of at most max_rows rows each), reused when
    the marker says it is the same."""
    data_dir = work_dir / "data"
    marker = data_dir / ".bench.json"
    wanted = {"year": YEAR, "enterprises": enterprises, "seed": SEED, "formats": "csv"}
    if max_rows:
        wanted["max_rows"] = max_rows
    if marker.exists() and json.loads(marker.read_text()) == wanted and csv_files(data_dir):
        return data_dir
    from devtools.synth import synthesize

    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"synthesising {enterprises:,} enterprises into {data_dir} …", file=sys.stderr)
    synthesize(year=YEAR, enterprises=enterprises, seed=SEED, data_dir=data_dir,
               formats="csv", truth=False, **({"max_rows": max_rows} if max_rows else {}))
    marker.write_text(json.dumps(wanted))
    return data_dir


def csv_files(data_dir: Path) -> list[Path]:
    landing = data_dir / "landing" / str(YEAR)
    return sorted(p for p in landing.iterdir() if p.is_file()) if landing.is_dir() else []


# Measuring ----------------------------------------------------------------------------------


def run_child(kind: str, work_dir: Path, *extra: str, module: str = "devtools.bench") -> dict:
    """Run one measurement in a fresh interpreter; its last stdout line is its JSON result."""
    command = [sys.executable, "-m", module, "--child", kind,
               "--work-dir", str(work_dir), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"the {kind} measurement failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's own peak RSS.

    VmHWM rather than ru_maxrss: the kernel carries the parent's peak into a child's ru_maxrss
    when it is spawned by vfork + exec (as subprocess does), so the bench's own memory (the
    synthesised data, say) would count against the pipeline.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _emit(result: dict) -> int:
    print(json.dumps(result), flush=True)
    return 0


def measure_pipeline(data_dir: Path) -> dict:
    """The real steps as `survey run` runs them (a batch of files at a time in one process, on
    polars' threads, then one de-duplication); report() is timed apart."""
    from pipeline.config import Settings
    from pipeline.consolidate import deduplicate
    from pipeline.ingest import landed_files
    from pipeline.report import report
    from pipeline.runner import check_files, checked_paths

    settings = Settings(data_dir=data_dir)
    for layer in DERIVED_LAYERS:  # a rerun must not find last run's files
        shutil.rmtree(data_dir / layer / str(YEAR), ignore_errors=True)
    files = landed_files(settings, YEAR)
    start = time.perf_counter()
    ingested = list(check_files(settings, YEAR))
    t0 = time.perf_counter()
    outcomes = deduplicate(settings, YEAR, checked_paths(ingested))
    seconds = time.perf_counter() - start
    steps = {"check": t0 - start, "deduplicate": time.perf_counter() - t0}
    t0 = time.perf_counter()
    report(settings, YEAR, ingested)  # also proves every row is accounted for
    return {
        "rows": sum(r["rows"] or 0 for r in ingested),
        "files": len(files),
        "files_quarantined": sum(r["status"] != "read" for r in ingested),
        "seconds": seconds,
        "steps": steps,
        "report_seconds": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(),
        "outcomes": {k: v for k, v in outcomes.items() if k not in ("valid_dir", "rows")},
    }


def scan_floor(files: list[Path], repeats: int = 3) -> tuple[float, int]:
    """DuckDB counting the rows of the same CSV files and nothing else: (best seconds, rows)."""
    import duckdb

    names = [str(p) for p in files]
    best, rows = float("inf"), 0
    con = duckdb.connect()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            # The files spell and order their headers differently: match columns by name.
            rows = con.execute("select count(*) from read_csv(?, all_varchar = true, "
                               "union_by_name = true)", [names]).fetchall()[0][0]
            best = min(best, time.perf_counter() - t0)
    finally:
        con.close()
    return best, rows


# The naive baseline: pandas + pandera (pandas backend) + a per-row Python check -------------


def measure_baseline(data_dir: Path, work_dir: Path, max_rows: int) -> dict:
    # Everything the baseline touches is imported before the clock starts.
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import pipeline.ingest  # noqa: F401
    import pipeline.validate  # noqa: F401

    schema = _baseline_schema()
    files = csv_files(data_dir)
    out = work_dir / "baseline" / "returns.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    steps, start = {}, time.perf_counter()
    frame, quarantined = _timed(steps, "read", _baseline_read, files, max_rows)
    typed = _timed(steps, "convert", _baseline_types, frame)
    findings = _timed(steps, "validate", _baseline_findings, schema, typed)
    result = _timed(steps, "deduplicate", _baseline_outcomes, typed, findings)
    _timed(steps, "write", result.to_parquet, out, compression="zstd")
    seconds = time.perf_counter() - start
    return {
        "rows": len(frame),
        "files_quarantined": quarantined,
        "seconds": seconds,
        "steps": steps,
        "peak_rss_mb": peak_rss_mb(),
        "outcomes": {str(k): int(v) for k, v in result["outcome"].value_counts().items()},
    }


def _timed(steps: dict, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    steps[name] = time.perf_counter() - t0
    return value


def _baseline_read(files: list[Path], max_rows: int):
    """pandas read_csv(dtype=str) per file, headers mapped to form names, concatenated."""
    import pandas as pd

    from pipeline.config import Settings
    from pipeline.ingest import canonical_column
    from schemas.form import FORM_COLUMNS

    required = {c.name for c in FORM_COLUMNS.values() if c.required}
    frames, quarantined, remaining = [], 0, max_rows
    for path in files:
        if remaining <= 0:
            break
        try:
            # header=None, as the pipeline reads: pandas would rename a repeated header.
            grid = pd.read_csv(path, dtype=str, header=None, keep_default_na=False,
                               na_values=[""])
        except ValueError:  # pandas' empty-file, parser and decoding errors are all ValueErrors
            quarantined += 1
            continue
        names = [canonical_column(str(h)) if isinstance(h, str) else None for h in grid.iloc[0]]
        frame = grid.iloc[1:].set_axis(names, axis=1)
        frame = frame.loc[:, [n is not None for n in names]]
        if (frame.empty or len(frame) > Settings().max_file_rows
                or frame.columns.duplicated().any() or required - set(frame.columns)):
            quarantined += 1
            continue
        frame = frame.reindex(columns=list(FORM_COLUMNS)).iloc[:remaining]
        frame["source_file"] = path.name
        frame["source_row"] = range(2, len(frame) + 2)
        frames.append(frame.dropna(how="all", subset=list(FORM_COLUMNS)))
        remaining -= len(frame)
    return pd.concat(frames, ignore_index=True), quarantined


def _baseline_types(frame):
    """Per-column pandas conversions, keeping each column's cleaned text for E001/E002."""
    import numpy as np
    import pandas as pd

    from pipeline.validate import _ENUM_LABELS
    from schemas.form import FORM_COLUMNS

    typed = frame[["source_file", "source_row"]].copy()
    for column in FORM_COLUMNS.values():
        text = frame[column.name].str.normalize("NFKC").str.strip().replace("", None)
        typed[f"{column.name}__text"] = text
        if column.kind in ("integer", "count", "amount"):
            number = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
            number = number.where(np.isfinite(number))
            if column.kind == "amount":
                value = number.round(2)
            else:
                value = number.where(number == np.floor(number)).astype("Int64")
            if column.blank == "zero":
                value = value.where(text.notna(), 0)
        elif column.kind == "datetime":
            value = _baseline_datetime(text)
        elif column.kind == "enum":
            labels = _ENUM_LABELS[column.name]
            lookup = {**{v: v for v in labels.values()}, **labels}
            value = text.str.lower().map(lookup)
            if column.blank == "none":
                value = value.where(text.notna(), "none")
        elif column.kind == "credit_code":
            value = text.str.upper()
        else:
            value = text
        typed[column.name] = value
    return typed


def _baseline_datetime(text):
    """ISO 8601 local times; those with an offset converted to Asia/Shanghai wall-clock time."""
    import pandas as pd

    # pandas' ISO 8601 reader also takes 2026/02/15, which the form does not.
    text = text.where(text.str.match(r"\d{4}-\d\d-\d\d(?:[ T]|$)", na=False))
    zoned = text.str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", na=False)
    value = pd.to_datetime(text.where(~zoned), format="ISO8601", errors="coerce")
    if zoned.any():
        converted = pd.to_datetime(text[zoned], format="ISO8601", errors="coerce", utc=True)
        value[zoned] = converted.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return value


def credit_code_ok(code) -> bool:
    """GB 32100 check character, one code at a time (malformed codes are E004's, not ours)."""
    if not isinstance(code, str) or len(code) != 18 or any(ch not in _CODE_VALUES for ch in code):
        return True
    total = sum(_CODE_VALUES[ch] * w for ch, w in zip(code[:17], CREDIT_CODE_WEIGHTS, strict=True))
    return code[17] == CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def _baseline_schema():
    """The form's E/W rules as a pandera pandas DataFrameSchema, each check named by rule id.

    W106 is left out: it needs last year's returns, and the bench has none (nor does the
    pipeline, which then skips it too).
    """
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

    from schemas import form, reference
    from schemas.types import CREDIT_CODE_PATTERN

    def check(rule, fn):
        return pa.Check(fn, name=rule)

    def statistical_size(d):
        size = np.full(len(d), "micro", dtype=object)
        for name in ("small", "medium", "large"):
            floor = reference.size_thresholds()[name]
            met = (d["employees"] >= floor["employees"]) & (d["revenue"] >= floor["revenue"])
            size[met.fillna(False).to_numpy(dtype=bool)] = name
        return pd.Series(size, index=d.index)

    sections = reference.class_sections()
    counties, classes = set(reference.county_codes()), set(reference.industry_classes())
    columns = {}
    for column in form.FORM_COLUMNS.values():
        checks = []
        if column.kind == "count":
            ceiling = (form.EMPLOYEES_MAX if column.name == "employees"
                       else form.SECTION_BC_COUNT_MAX)
            checks.append(check("E003", lambda s, hi=ceiling: s.between(0, hi)))
        elif column.kind == "amount":
            checks.append(check("E003", lambda s: s >= 0))
        columns[column.name] = pa.Column(nullable=True, checks=checks)
    columns["enterprise_name"].checks.append(
        check("E003", lambda s: s.str.len().between(*form.NAME_LENGTH)))
    columns["credit_code"].checks.extend([
        check("E004", lambda s: s.str.fullmatch(CREDIT_CODE_PATTERN[1:-1])),
        check("E005", lambda s: s.map(credit_code_ok)),
        check("W103", lambda s: (s.str[2:4] == "33")
              | ~s.str.fullmatch(CREDIT_CODE_PATTERN[1:-1])),
    ])
    columns["region_code"].checks.append(check("E006", lambda s: s.isin(counties)))
    columns["industry_code"].checks.append(check("E007", lambda s: s.isin(classes)))
    columns["survey_year"].checks.append(check("E011", lambda s: s == YEAR))
    columns["contact_phone"].checks.append(check("W107", lambda s: s.str.replace(
        r"[\s()]", "", regex=True).str.fullmatch(form.PHONE_PATTERN[1:-1])))
    opens, closes = pd.Timestamp(YEAR + 1, 1, 1), pd.Timestamp(YEAR + 1, 4, 1)
    columns["submitted_at"].checks.append(check("W104", lambda s: (s >= opens) & (s < closes)))

    wide = []
    for column in form.FORM_COLUMNS.values():
        text = f"{column.name}__text"
        if column.required:
            wide.append(check("E001", lambda d, t=text: d[t].notna()))
        if column.kind in form.PARSED_KINDS or column.kind == "enum":
            rule = "E008" if column.kind == "enum" else "E002"
            wide.append(check(rule, lambda d, t=text, c=column.name: d[t].isna() | d[c].notna()))
    for level in form.STANDARD_LEVELS:
        wide.append(check("E009", lambda d, x=level: ~(d[f"{x}_led"] > d[f"{x}_involved"])
                          .fillna(False)))
    wide += [
        check("E010", lambda d: ~(d["std_staff"] > d["employees"]).fillna(False)),
        check("W101", lambda d: ~(d["std_spending"] > d["revenue"]).fillna(False)),
        check("W105", lambda d: ~(d["leader_standards"] > d["enterprise_declared"])
              .fillna(False)),
        check("W102", lambda d: (d["size_class"] == statistical_size(d))
              | ~d["industry_code"].map(sections).isin(reference.SIZE_RULE_SECTIONS)),
    ]
    return pa.DataFrameSchema(columns, checks=wide, strict=False, coerce=False)


def _baseline_findings(schema, typed):
    """Rule ids per row index, from pandera's lazy failure cases."""
    import pandas as pd
    import pandera.pandas as pa

    try:
        schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return pd.Series(dtype=object)
    cases = cases.dropna(subset=["index"]).astype({"index": "int64"})
    return cases.groupby("index")["check"].agg(lambda ids: sorted(set(ids)))


def _baseline_outcomes(typed, findings):
    """D202 by drop_duplicates, then D201: the latest accepted return per credit code."""
    from schemas.form import FORM_COLUMNS

    form = typed[["source_file", "source_row", *FORM_COLUMNS]].copy()
    form["findings"] = findings.reindex(form.index).map(
        lambda ids: ids if isinstance(ids, list) else [])
    form["rejected"] = form["findings"].map(lambda ids: any(i.startswith("E") for i in ids))
    form = form.sort_values(["source_file", "source_row"])
    first_copies = form.drop_duplicates(subset=list(FORM_COLUMNS), keep="first")
    latest = (first_copies[~first_copies["rejected"]]
              .sort_values(["submitted_at", "source_file", "source_row"])
              .groupby("credit_code", dropna=False).tail(1))
    form["outcome"] = "superseded"
    form.loc[form["rejected"], "outcome"] = "rejected"
    form.loc[latest.index, "outcome"] = "accepted"
    form.loc[~form.index.isin(first_copies.index), "outcome"] = "duplicate"
    return form


# Reporting ----------------------------------------------------------------------------------


def summarise(pipeline: dict, baseline: dict, floor: float) -> dict:
    rows, seconds = pipeline["rows"], pipeline["seconds"]
    extrapolated = baseline["rows"] < rows
    baseline_seconds = baseline["seconds"] * rows / baseline["rows"]
    result = {
        "rows": rows,
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(pipeline["peak_rss_mb"], 1),
        "scan_floor_seconds": round(floor, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "rows_per_second": round(rows / seconds),
        "ratio_to_scan_floor": round(seconds / floor, 2),
        "speedup_vs_baseline": round(baseline_seconds / seconds, 2),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
        "baseline_rows": baseline["rows"],
        "baseline_extrapolated": extrapolated,
        "steps_seconds": {k: round(v, 3) for k, v in pipeline["steps"].items()},
        "baseline_steps_seconds": {k: round(v, 3) for k, v in baseline["steps"].items()},
        "report_seconds": round(pipeline["report_seconds"], 3),
    }
    result["targets_met"] = {
        f"seconds_le_{FLOOR_FACTOR}x_scan_floor": seconds <= FLOOR_FACTOR * floor,
        f"baseline_ge_{BASELINE_FACTOR}x_seconds": baseline_seconds >= BASELINE_FACTOR * seconds,
        f"peak_rss_lt_{RSS_LIMIT_MB}_mb": pipeline["peak_rss_mb"] < RSS_LIMIT_MB,
    }
    return result


def print_table(result: dict, pipeline: dict, baseline: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def mark(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]missed[/]"

    met = list(result["targets_met"].values())
    sample = (f", measured on {result['baseline_rows']:,} rows and scaled"
              if result["baseline_extrapolated"] else "")
    table = Table(title=f"check + de-duplicate: {result['rows']:,} returns read "
                        f"from {pipeline['files']} CSV files ({pipeline['files_quarantined']} "
                        f"quarantined)")
    for name in ("measure", "value", "target"):
        table.add_column(name)
    table.add_row("pipeline wall clock",
                  f"{result['seconds']:.2f} s ({_steps(result['steps_seconds'])})", "")
    table.add_row("throughput", f"{result['rows_per_second']:,} rows/s", "")
    table.add_row("pipeline peak RSS", f"{result['peak_rss_mb']:,.0f} MB",
                  f"< {RSS_LIMIT_MB} MB: {mark(met[2])}")
    table.add_row("DuckDB scan floor", f"{result['scan_floor_seconds']:.2f} s over "
                  f"{result['scan_rows']:,} rows; pipeline / floor = "
                  f"{result['ratio_to_scan_floor']:.1f}", f"≤ {FLOOR_FACTOR}: {mark(met[0])}")
    table.add_row("naive pandas + pandera",
                  f"{result['baseline_seconds']:.2f} s ({_steps(result['baseline_steps_seconds'])}"
                  f"{sample}); baseline / pipeline = {result['speedup_vs_baseline']:.2f}",
                  f"≥ {BASELINE_FACTOR}: {mark(met[1])}")
    table.add_row("baseline peak RSS", f"{result['baseline_peak_rss_mb']:,.0f} MB", "")
    table.add_row("load average (1 min) at start", f"{result['load_average_1m']:.2f}", "")
    table.add_row("report step (not timed above)", f"{result['report_seconds']:.2f} s", "")
    table.add_row("outcomes (pipeline)", _outcomes(pipeline["outcomes"]), "")
    table.add_row("outcomes (baseline)", f"{_outcomes(baseline['outcomes'])}; "
                  f"{baseline['files_quarantined']} files quarantined", "")
    Console(width=120).print(table)


def _steps(seconds: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in seconds.items())


def _outcomes(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
