"""The `survey` command: run, check, query, audit and report, without Airflow."""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.config import Settings, close_new_files

# Piped or in `make`, there is no terminal to size to: tables are wide, so allow them room.
# Returns and queries print names and values as received: rich's markup ("[/x]"), emoji codes
# (":x:") and highlighting must not apply to them, so all three are off and styles are explicit.
_WIDTH = shutil.get_terminal_size((140, 40)).columns
console = Console(width=_WIDTH, markup=False, emoji=False, highlight=False)
stderr = Console(width=_WIDTH, markup=False, emoji=False, highlight=False, stderr=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="survey", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="data root (default $SURVEY_DATA_DIR "
                        "or ./data)")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="every step of a year in-process, through publication")
    run.add_argument("--year", type=int, required=True)
    run.add_argument("--allow-shrink", action="store_true",
                     help="publish even with under half the accepted returns of the published "
                     "version (a year with no readable row is never published)")
    run.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    accounting = commands.add_parser("accounting", help="print a processed year's accounting")
    accounting.add_argument("--year", type=int, required=True)
    accounting.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    check = commands.add_parser("check", help="check files before sending them")
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument("--year", type=int, help="the survey year (default: the file's own)")
    check.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    audit = commands.add_parser("audit", help="audit a published year's disclosure control "
                                "against both intruders of monitoring-tables.md §3")
    audit.add_argument("--year", type=int, required=True)
    audit.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    report = commands.add_parser("report", help="write a published year's report for the "
                                 "leadership (published/report/<year>/index.html)")
    report.add_argument("--year", type=int, required=True)
    report.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    query = commands.add_parser("query", help="SQL over the published tables "
                                "(published/monitoring.duckdb: one view per table, every year)")
    query.add_argument("sql")
    query.add_argument("--restricted", action="store_true",
                       help="also the restricted tables (enterprises, follow_up, cells), for "
                       "users with access to their folder")
    query.add_argument("--data-dir", type=Path, dest="sub_data_dir")

    args = parser.parse_args(argv)
    commands = {"run": _run, "accounting": _accounting, "check": _check, "audit": _audit,
                "query": _query, "report": _report}
    try:
        close_new_files()
        settings = Settings.from_env(data_dir=getattr(args, "sub_data_dir", None)
                                     or args.data_dir)
        return commands[args.command](settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        sentence = _sentence(e)
        if sentence is None:
            raise  # a bug: its traceback is what a developer needs
        stderr.print(f"survey {args.command}: {sentence}", style="red", soft_wrap=True)
        return 1


def _sentence(error: Exception) -> str | None:
    """One line for an error a person can act on (a refusal, a missing or unwritable path, a
    full disk); None for anything else."""
    from pipeline.disclosure import DisclosureError
    from pipeline.errors import BatchFailed, SurveyError
    from pipeline.report import AccountingError

    if isinstance(error, SurveyError | DisclosureError | AccountingError):
        return str(error)
    if isinstance(error, BatchFailed) and isinstance(error.__cause__, Exception):
        cause = _sentence(error.__cause__)
        return f"{cause} (checking {', '.join(error.files)})" if cause else None
    if isinstance(error, OSError):
        if error.strerror and error.filename:
            return f"{error.strerror}: {error.filename}"
        return str(error)
    # DuckDB and polars report a failed read or write (a read-only or full disk) as their own
    # I/O errors.
    if type(error).__name__ in ("IOException", "PermissionException") or (
            type(error).__module__.startswith("polars") and _io_words(str(error))):
        return str(error).splitlines()[0]
    return None


def _io_words(message: str) -> bool:
    return any(w in message.lower() for w in ("no space left", "read-only file system",
                                              "permission denied", "disk quota"))


def _run(settings: Settings, args) -> int:
    from pipeline.ingest import landed_files
    from pipeline.runner import run_year

    files = landed_files(settings, args.year)
    progress = Progress(TextColumn("{task.description}", markup=False, style="bold"),
                        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    with progress:
        task = progress.add_task(f"ingest + validate {args.year}", total=len(files))
        accounting = run_year(settings, args.year, on_file=lambda name: progress.advance(task),
                              allow_shrink=args.allow_shrink)
    print_accounting(settings, accounting)
    return 0


def _accounting(settings: Settings, args) -> int:
    import json

    path = settings.output_dir(args.year) / "accounting.json"
    if not path.exists():
        stderr.print(f"{args.year} has not been processed: no {path}", style="red")
        return 1
    print_accounting(settings, json.loads(path.read_text(encoding="utf-8")) | {"path": str(path)})
    return 0


def print_accounting(settings: Settings, accounting: dict) -> None:
    table = Table(title=f"Survey year {accounting['survey_year']}: every row accounted for")
    for column in ("file", "status", "rows_read", "accepted", "rejected", "superseded",
                   "duplicate"):
        table.add_column(column, justify="left" if column in ("file", "status") else "right")
    for f in accounting["files"]:
        status = f["status"] if f["status"] == "read" else f"{f['rule']} quarantined"
        table.add_row(f["source_file"], status,
                      *(f"{f.get(k, 0) or 0:,}" if f["status"] == "read" else "–"
                        for k in ("rows_read", "accepted", "rejected", "superseded",
                                  "duplicate")))
    total = accounting["total"]
    table.add_section()
    table.add_row(f"total ({accounting['files_received']} files, "
                  f"{accounting['files_quarantined']} quarantined)", "",
                  *(f"{total[k]:,}" for k in ("rows_read", "accepted", "rejected", "superseded",
                                              "duplicate")))
    console.print(table)
    console.print(
        f"rows_read {total['rows_read']:,} = accepted {total['accepted']:,} + rejected "
        f"{total['rejected']:,} + superseded {total['superseded']:,} + duplicate "
        f"{total['duplicate']:,}")
    console.print(f"valid layer: {settings.valid_dir(accounting['survey_year'])}")
    console.print(f"follow-up:   {accounting['follow_up']['csv']} "
                  f"({accounting['follow_up']['rows']:,} findings)")
    if "workbooks" in accounting:
        console.print(f"workbooks:   {accounting['workbooks']['workbooks']} county follow-up "
                      f"workbook(s) in {accounting['workbooks']['folder']}")
    console.print(f"accounting:  {accounting['path']}")
    if "steps_seconds" in accounting:  # workbooks are written beside aggregate … yearly_report
        console.print("seconds:     " + ", ".join(
            f"{step} {seconds:.1f}" for step, seconds in accounting["steps_seconds"].items()))
    manifest_path = settings.published_dir / "manifest" / f"{accounting['survey_year']}.json"
    if manifest_path.exists():
        import json

        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        hidden = manifest["disclosure"]["hidden"]
        console.print(
            f"published:   {settings.published_dir}/ ({len(manifest['tables'])} tables, "
            f"manifest {manifest_path.name}); {manifest['disclosure']['hidden_share']:.1%} of "
            f"magnitude cells hidden: {hidden['frequency']:,} with under 3 contributors, "
            f"{hidden['dominance']:,} dominated, {hidden['secondary']:,} to protect them")
        population = manifest.get("population") or {}
        if population.get("frame_enterprises") is not None:
            console.print(
                f"population:  {population['frame_enterprises']:,} frame enterprises, "
                f"{population['frame_responded']:,} answered "
                f"({population['response_rate'] or 0:.1%}); "
                f"{population['imputed_ratio']:,} imputed from last year's return × the trend, "
                f"{population['imputed_donor']:,} from a donor; "
                f"{population['frame_rejected_codes']:,} frame row(s) left out (N402)")
        else:
            console.print("population:  no survey frame, so nothing imputed: totals are the "
                          "accepted returns' sums")
        page = settings.published_dir / "report" / str(accounting["survey_year"]) / "index.html"
        if page.exists():
            console.print(f"report:      {page}")
        record = settings.statistical_dir(accounting["survey_year"]) / "disclosure.json"
        if record.exists():
            seconds = json.loads(record.read_text(encoding="utf-8"))["seconds"]
            console.print(f"disclosure control, audit included, took {seconds:.1f} s "
                          f"(`survey audit --year {accounting['survey_year']}` re-audits the "
                          "published year)")


def _audit(settings: Settings, args) -> int:
    """Exit 1 when a cell is recoverable, or the tables disagree with each other or the truth."""
    from pipeline.protect import audit_year

    with console.status(f"auditing the published year {args.year}"):
        report = audit_year(settings, args.year)
    table = Table(title=f"Disclosure audit of {args.year} (monitoring-tables.md §3): the "
                        "narrowest interval an intruder finds, as a share of the true value")
    for column in ("indicator", "primary", "hidden", "narrowest lower", "narrowest upper",
                   "floors", "recoverable"):
        table.add_column(column, justify="left" if column == "indicator" else "right")
    for indicator, found in report["indicators"].items():
        audited, hidden = found["audit"], found["hidden"]
        table.add_row(indicator, f"{audited['primary_cells']:,}", f"{sum(hidden.values()):,}",
                      _share(audited["narrowest_lower_share"]),
                      _share(audited["narrowest_upper_share"]), str(audited["floors"]),
                      str(audited["recoverable"]))
    console.print(table)
    console.print(f"{report['hidden_share']:.1%} of {report['magnitude_cells']:,} magnitude "
                  f"cells hidden: " + ", ".join(f"{n:,} {rule}" for rule, n in
                                                report["hidden"].items()))
    console.print("floors: lower bounds that figures always published (enterprise counts, "
                  "zeros) give by themselves, which no suppression can widen")
    for cell in report["recoverable_cells"]:
        console.print(f"RECOVERABLE {cell['indicator']} of cell {cell['cell']} ({cell['rule']}): "
                      f"{cell['recovered']} bound within 15% of {cell['truth']:g}, "
                      f"[{cell['lower']}, {cell['upper']}], by the {cell['intruder']}",
                      style="red")
    for problem in report["disagreements"]:
        console.print(f"DISAGREEMENT {problem}", style="red")
    if report["recoverable_cells"] or report["disagreements"]:
        return 1
    console.print(f"no recoverable cell: every primary cell of {args.year} holds against the "
                  "outsider and every respondent")
    return 0


def _report(settings: Settings, args) -> int:
    from pipeline.yearly_report import write_yearly_report

    with console.status(f"writing the report of {args.year}"):
        written = write_yearly_report(settings, args.year)
    console.print(f"report: {written['path']} (snapshot {written['snapshot']})")
    return 0


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _query(settings: Settings, args) -> int:
    """SQL that reads the published tables, in a DuckDB that can read nothing else."""
    import duckdb

    from pipeline.publish import query_connection, reading_statements

    con = query_connection(settings, restricted=args.restricted)
    try:
        statements = reading_statements(con, args.sql)
        if not statements:
            return 0
        for statement in statements[:-1]:
            con.execute(statement.query)
        result = con.sql(statements[-1].query)
        table = Table()
        for column in result.columns:
            table.add_column(column)
        shown = _number_text(result.columns, _decimals(con))
        for row in result.fetchall():
            table.add_row(*shown(row))
    except duckdb.Error as e:
        stderr.print(str(e), style="red")
        if isinstance(e, duckdb.CatalogException) and not args.restricted:
            from schemas.tables import published_tables

            restricted = [name for scope, name in published_tables() if scope == "restricted"]
            stderr.print(f"the restricted tables ({', '.join(restricted)}) need --restricted, "
                         "and access to their folder")
        return 1
    finally:
        con.close()
    console.print(table)
    return 0


#: Columns holding the value of the row's indicator, in its unit.
_VALUE_COLUMNS = ("value", "prev_value")
#: Shares between 0 and 1, shown to 4 decimals.
_SHARE_COLUMNS = ("imputed_share", "response_rate")


def _decimals(con) -> dict[str, int]:
    """Indicator → decimals to show: 2 for amounts (万元), 0 for counts, as the published
    `indicators` table gives their units."""
    import duckdb

    from schemas.tables import AMOUNT_UNIT, INDICATORS

    try:
        units = dict(con.execute("select indicator, unit from indicators").fetchall())
    except duckdb.CatalogException:  # a snapshot published before the table existed
        from schemas.tables import indicators

        units = dict(indicators().select("indicator", "unit").iter_rows())
    return {i: 2 if units.get(i) == AMOUNT_UNIT else 0 for i in INDICATORS}


def _number_text(columns: list[str], decimals: dict[str, int]):
    """A row's cells as text: an indicator's value (a column `value` beside `indicator`, or a
    column named after the indicator) as a whole number or with 2 decimals by its unit."""
    where = columns.index("indicator") if "indicator" in columns else None

    def text(row: tuple) -> list[str]:
        indicator = row[where] if where is not None else None
        cells = []
        for column, value in zip(columns, row, strict=True):
            places = 2
            if column in _VALUE_COLUMNS and indicator in decimals:
                places = decimals[indicator]
            elif column in decimals:
                places = decimals[column]
            elif column in _SHARE_COLUMNS:
                places = 4
            if value is None:
                cells.append("")
            elif isinstance(value, float):
                cells.append(f"{value:,.{places}f}")
            else:
                cells.append(str(value))
        return cells

    return text


def _check(settings: Settings, args) -> int:
    import polars as pl

    from pipeline.ingest import read_received
    from pipeline.validate import check_returns, previous_year_counts
    from schemas.form import FORM_COLUMNS
    from schemas.rules import rules

    failed = False
    for path in args.files:
        if not path.exists() or path.is_dir():
            stderr.print(f"{path}: " + ("a folder, not a file" if path.is_dir() else
                                        "no such file"), style="red")
            failed = True
            continue
        received = read_received(settings, path)
        report = received.report
        if received.status != "read":
            rule = rules()[report.rule]
            console.print(f"{path}: {report.rule} quarantined", style="bold red", end="")
            console.print(f" — {report.reason}\n  {rule['message_zh']}\n  {rule['message_en']}")
            failed = True
            continue
        year = args.year or _file_year(received.frame) or date.today().year - 1
        checked = check_returns(received.frame, year, previous_year_counts(settings, year))
        findings = (
            checked.select("source_row", "findings").explode("findings").drop_nulls("findings")
            .unnest("findings").sort("source_row", "rule_id")
        )
        table = Table(title=f"{path} ({report.format}, {report.encoding or 'xlsx'}, "
                      f"{report.rows} rows, survey year {year})")
        for column in ("行 row", "列 column", "规则 rule", "收到的值 value", "说明", "message"):
            table.add_column(column, overflow="fold")
        for f in findings.iter_rows(named=True):
            rule = rules()[f["rule_id"]]
            column = FORM_COLUMNS.get(f["column_name"])
            table.add_row(str(f["source_row"]),
                          f"{column.name} {column.label_zh}" if column else "", f["rule_id"],
                          f["value_received"] or "", rule["message_zh"], rule["message_en"])
        if report.unknown_columns:
            console.print(f"columns ignored: {', '.join(report.unknown_columns)}")
        console.print(table)
        errors = findings.filter(pl.col("severity") == "E").height
        warnings = findings.filter(pl.col("severity") == "W").height
        console.print(f"{path}: {errors} errors (E), {warnings} warnings (W) in "
                      f"{checked['rejected'].sum()} of {checked.height} rows rejected")
        failed = failed or errors > 0
    return 1 if failed else 0


def _file_year(frame) -> int | None:
    """The survey year most rows of a file give, read as the validator reads it."""
    from schemas.types import READINGS, read_columns

    _, values = read_columns(frame.select("survey_year"), {"survey_year": READINGS["integer"]})
    years = values.to_series()
    mode = years.drop_nulls().mode()
    return int(mode.sort()[-1]) if len(mode) else None


if __name__ == "__main__":
    sys.exit(main())
