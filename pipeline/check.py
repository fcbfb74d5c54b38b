"""Check a batch of landed files in one pass: read, normalise and judge every row, written once.

The landing file is the record of what was received (its sha256 is on every row and in the
manifest, every finding keeps its value_received), so no raw copy of it is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import polars as pl

from pipeline.config import Settings, closed_dir
from pipeline.errors import BatchFailed
from pipeline.ingest import landed_files, read_received, received_name, write_working_layer
from pipeline.validate import check_returns, previous_year_counts

#: Input bytes of a batch: about 240,000 returns of CSV. A batch shares the fixed costs of a
#: task, and of the few hundred polars queries pandera runs on any frame, over its rows.
BATCH_BYTES = 48 * 2**20
#: The head of a text file read to tell, from its lines' length, whether it may be over the row
#: limit; and the share of the limit above which it is counted whole, to be sure.
SAMPLE_BYTES, NEAR_ROW_LIMIT = 64 * 2**10, 0.9
#: Rows checked as one frame: a batch of more (one large file) is checked in equal slices of at
#: most this many, so memory stays flat whatever the files' size (about 0.8 GB per slice).
SLICE_ROWS = 240_000


def landed_batches(settings: Settings, year: int, workers: int = 1,
                   batch_bytes: int = BATCH_BYTES) -> list[list[Path]]:
    """The year's landed files grouped to be checked together: weighed by checked_bytes, a file
    heavier than its share goes alone, and the rest are shared, largest first, among a multiple
    of `workers` batches of about batch_bytes or less, so workers finish together."""
    paths = landed_files(settings, year)
    sizes = {path: checked_bytes(settings, path) for path in paths}
    ordered = sorted(paths, key=lambda p: (-sizes[p], p.name))
    alone, rest = 0, sum(sizes.values())
    while alone < len(ordered):
        count = max(1, -(-rest // batch_bytes))
        count = min(len(ordered) - alone, -(-count // workers) * workers)
        if sizes[ordered[alone]] * count <= rest:
            break
        rest -= sizes[ordered[alone]]
        alone += 1
    batches: list[list[Path]] = [[path] for path in ordered[:alone]]
    shared: list[list[Path]] = [[] for _ in range(count if alone < len(ordered) else 0)]
    totals = [0] * len(shared)
    for path in ordered[alone:]:
        lightest = totals.index(min(totals))
        shared[lightest].append(path)
        totals[lightest] += sizes[path]
    return [sorted(batch, key=lambda p: p.name) for batch in batches + shared if batch]


def checked_bytes(settings: Settings, path: Path) -> int:
    """The bytes of a landed file that its check reads into rows: its size, or none for a CSV
    that F305 refuses on a count of its lines, before any row is checked. Weighed by its size,
    such a file would leave its batch's other files to one worker."""
    # lstat: a link or a folder is weighed as itself, never followed (ingest sets it aside, F307).
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_size > settings.max_file_bytes:
        return info.st_size
    try:
        # As ingest opens it: a pipe or link swapped in since the look is neither waited on nor
        # followed (its check sets it aside, F307).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return info.st_size
            head = f.read(SAMPLE_BYTES)
            if _rows_in_head(head) * info.st_size < NEAR_ROW_LIMIT * settings.max_file_rows:
                return info.st_size
            # It may be near the limit (an exporter's parts often stop just at it): counted.
            rows = _rows_by_lines(head, f)
    except OSError:  # its check says why, for the file
        return info.st_size
    return 0 if rows is not None and rows > settings.max_file_rows else info.st_size


def _rows_in_head(head: bytes) -> float:
    """Rows a byte of the file, as the lines of its head after the header go (0 for no lines
    or an XLSX)."""
    start, end = head.find(b"\n") + 1, head.rfind(b"\n") + 1
    if end == start or head.startswith(b"PK"):
        return 0
    return head.count(b"\n", start, end) / (end - start)


def _rows_by_lines(head: bytes, rest) -> int | None:
    """The data rows as ingest counts a CSV's (its lines, the header apart), read on from the
    head; None when a quote (which can join lines) says lines are not rows."""
    lines, quoted, last = head.count(b"\n"), b'"' in head, head[-1:]
    while chunk := rest.read(2**20):
        lines, quoted, last = lines + chunk.count(b"\n"), quoted or b'"' in chunk, chunk[-1:]
    return None if quoted else lines + (last != b"\n") - 1


def batch_name(paths: list[Path | str]) -> str:
    """A batch's checked file: named by its files, so a batch checked again replaces its own."""
    names = "\n".join(sorted(os.fsencode(Path(p).name).hex() for p in paths))
    return f"batch-{hashlib.sha256(names.encode()).hexdigest()[:16]}.parquet"


def check_batch(settings: Settings, year: int, paths: list[Path | str]) -> list[dict]:
    """Read every file of the batch (or quarantine it with its F rule) and check their rows as
    one frame, written to checked/<year>/batch-….parquet; returns each file's ingest report with
    checked_path, the batch's file (None for a quarantined file). Raises BatchFailed, naming the
    files, when the batch cannot be checked."""
    try:
        # In name order, whatever order the batch was given in: the same rows, the same file.
        return _check_batch(settings, year, sorted((Path(p) for p in paths),
                                                   key=lambda p: p.name))
    except Exception as e:
        raise BatchFailed([received_name(Path(p)) for p in paths], e) from e


def _check_batch(settings: Settings, year: int, paths: list[Path]) -> list[dict]:
    out = closed_dir(settings.checked_dir(year)) / batch_name(paths)
    out.unlink(missing_ok=True)
    received = [read_received(settings, path) for path in paths]
    reports = [r.report.to_dict() for r in received]
    frames = [r.frame for r in received if r.status == "read"]
    del received  # the frames are all that is left of the files: one copy at a time
    if frames:
        rows = pl.concat(frames, how="vertical")
        del frames
        previous = previous_year_counts(settings, year)
        slices = -(-rows.height // SLICE_ROWS)
        size = -(-rows.height // slices)
        write_working_layer((check_returns(rows.slice(start, size), year, previous)
                             for start in range(0, rows.height, size)), out)
    return [{**report, "checked_path": str(out) if report["status"] == "read" else None}
            for report in reports]
