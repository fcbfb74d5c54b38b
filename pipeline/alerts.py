"""Alerts for the people who run the survey: a failed task, a yearly run past its deadline.

Every alert goes to the log and to `<data root>/alerts/alerts.jsonl` (one JSON object per line,
kept with the data); if an Airflow connection `survey_alerts` exists, it is also POSTed as JSON to
that connection's URL (a DingTalk or e-mail gateway webhook, say).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.parse
import urllib.request
from pathlib import Path

from pipeline.config import CLOSED_FILE, Settings, closed_dir

log = logging.getLogger(__name__)
ALERTS_CONNECTION = "survey_alerts"


def alerts_path(settings: Settings) -> Path:
    return settings.data_dir / "alerts" / "alerts.jsonl"


def raise_alert(alert: dict, settings: Settings | None = None) -> Path:
    """Log the alert, append it to the alerts file and send it to the webhook, if one is set."""
    settings = settings or Settings.from_env()
    log.error("ALERT %s: %s", alert.get("kind"), json.dumps(alert, ensure_ascii=False))
    path = alerts_path(settings)
    closed_dir(path.parent)
    # Owner-only even when the callback's process has the default umask: an alert may quote a
    # file name or a rule's finding.
    with open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, CLOSED_FILE), "a",
              encoding="utf-8") as f:
        f.write(json.dumps(alert, ensure_ascii=False, default=str) + "\n")
    _send(alert)
    return path


def _send(alert: dict) -> None:
    url = _webhook_url()
    if not url:
        return
    request = urllib.request.Request(url, data=json.dumps(alert, default=str).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as e:  # the alert is already logged and on disk: a dead webhook must not hide it
        log.error("alert webhook %s failed: %s", ALERTS_CONNECTION, e)


def _webhook_url() -> str | None:
    try:
        from airflow.sdk import Connection

        connection = Connection.get(ALERTS_CONNECTION)
    except Exception:  # no such connection (the usual case), or no Airflow at all
        return None
    return webhook_url(connection.conn_type, connection.host, connection.port,
                       connection.schema, connection.extra_dejson)


def webhook_url(conn_type: str | None, host: str | None, port: int | None,
                schema: str | None, extra: dict) -> str | None:
    """The URL a connection stands for, path and query intact.

    Airflow's get_uri() would quote the path's slashes (robot/send → robot%2Fsend), which a
    DingTalk robot answers with 404; so the URL is put back together from its parts. A host that
    is a whole URL is taken as it is.
    """
    if not host:
        return None
    if "://" in host:
        return host
    scheme = conn_type if conn_type in ("http", "https") else "https"
    url = f"{scheme}://{host}" + (f":{port}" if port else "")
    if schema:
        url += "/" + schema.lstrip("/")
    if extra:
        url += "?" + urllib.parse.urlencode(extra)
    return url


def task_failed(context: dict) -> None:
    """on_failure_callback: which task of which year failed, why, and where its log is."""
    task_instance = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    raise_alert({
        "kind": "task_failed",
        "dag_id": getattr(dag_run, "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None),
        "task_id": getattr(task_instance, "task_id", None),
        "map_index": getattr(task_instance, "map_index", None),
        "try_number": getattr(task_instance, "try_number", None),
        "survey_year": (context.get("params") or {}).get("survey_year"),
        "error": str(context.get("exception") or ""),
        # A failed check task's batch: the landed files to look at.
        "files": getattr(context.get("exception"), "files", None),
        "log_url": getattr(task_instance, "log_url", None),
    })


async def deadline_missed(context: dict | None = None, **kwargs) -> None:
    """DeadlineAlert callback (run by the triggerer): the yearly run is not finished in time."""
    dag_run = (context or {}).get("dag_run") or {}
    # In a thread: the file write and the webhook call must not stall the triggerer's event loop.
    await asyncio.to_thread(raise_alert, {
        "kind": "deadline_missed",
        "dag_id": dag_run.get("dag_id") if isinstance(dag_run, dict) else None,
        "run_id": dag_run.get("run_id") if isinstance(dag_run, dict) else None,
        "deadline": str((context or {}).get("deadline", "")),
        **kwargs,
    })
