"""Worker processes that stop with the process that started them."""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

#: How often a worker looks for its parent: a killed run's workers are gone within this.
_WATCH_SECONDS = 0.2


def die_with_parent(parent: int) -> None:
    """A pool's initializer: exit as soon as `parent` is gone, so a killed `survey run` or
    Airflow task leaves no worker behind to finish (and write) its batch."""

    def watch() -> None:
        # A child whose parent died is handed to another (init or a subreaper): the pid changes.
        while os.getppid() == parent:
            time.sleep(_WATCH_SECONDS)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


@contextmanager
def without_main_script():
    """Start processes that do not run this one's main script again. A spawned process runs it
    first thing (it may define what the process is to run); ours need only pipeline's modules,
    and an Airflow task's main script, the airflow command, cannot start outside its runner."""
    main = sys.modules["__main__"]
    script = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if script is not None:
            main.__file__ = script
