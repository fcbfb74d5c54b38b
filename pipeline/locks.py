"""One run of a year at a time: the year's lock, held by every step that reads or writes its
layers."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.config import CLOSED_FILE, Settings, closed_dir
from pipeline.errors import YearBusy


@contextmanager
def year_lock(settings: Settings, year: int, *, shared: bool = False,
              wait: bool = True) -> Iterator[None]:
    """Hold the year's lock: exclusive for a whole run or a step that writes across files,
    shared for steps that each write their own file's layers (the DAG's mapped tasks). Without
    `wait`, a lock held by another run raises YearBusy at once."""
    path = closed_dir(settings.data_dir / "locks") / f"{year}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, CLOSED_FILE)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                        | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise YearBusy(
                f"survey year {year} is being processed by another run"
                + (f" ({holder})" if holder else "")
                + f": wait for it to finish, then run again (lock: {path})") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
