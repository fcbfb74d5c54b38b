"""Alerts reach the log, the alerts file under the data root and, when set, a webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from pipeline.alerts import alerts_path, deadline_missed, task_failed
from pipeline.check import check_batch
from pipeline.config import Settings
from pipeline.errors import BatchFailed


def failed_task_context() -> dict:
    return {
        "task_instance": SimpleNamespace(task_id="check", map_index=3, try_number=3,
                                         log_url="http://127.0.0.1:8080/log"),
        "dag_run": SimpleNamespace(dag_id="annual_standardisation_survey", run_id="manual-1"),
        "params": {"survey_year": 2025},
        "exception": OSError("disk full"),
    }


def test_a_failed_task_is_logged_and_written_under_the_data_root(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SURVEY_DATA_DIR", str(tmp_path))
    task_failed(failed_task_context())
    alert = json.loads(alerts_path(Settings(data_dir=tmp_path)).read_text().splitlines()[-1])
    assert alert["kind"] == "task_failed" and alert["task_id"] == "check"
    assert alert["map_index"] == 3 and alert["survey_year"] == 2025
    assert alert["error"] == "disk full"
    assert "ALERT task_failed" in caplog.text


def test_a_failed_batch_names_its_landed_files_in_the_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_DATA_DIR", str(tmp_path))
    settings = Settings(data_dir=tmp_path)
    landing = settings.landing_dir(2025)
    landing.mkdir(parents=True)
    for name in ("county_330106.csv", "online_part01.csv"):
        (landing / name).write_text("credit_code\n", encoding="utf-8")
    (tmp_path / "checked").write_text("a file where the checked layer's folder goes")
    with pytest.raises(BatchFailed) as failed:
        check_batch(settings, 2025, sorted(landing.iterdir()))
    task_failed({**failed_task_context(), "exception": failed.value})
    alert = json.loads(alerts_path(settings).read_text().splitlines()[-1])
    assert alert["files"] == ["county_330106.csv", "online_part01.csv"]
    assert "county_330106.csv, online_part01.csv" in alert["error"]


def test_a_missed_deadline_is_written_and_sent_to_the_webhook_connection(tmp_path, monkeypatch):
    received, paths = [], []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            paths.append(self.path)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SURVEY_DATA_DIR", str(tmp_path))
        # A DingTalk-like URL: a path of several segments and a token in the query.
        monkeypatch.setenv("AIRFLOW_CONN_SURVEY_ALERTS",
                           f"http://127.0.0.1:{server.server_port}/robot/send?access_token=abc")
        asyncio.run(deadline_missed(context={"dag_run": {"dag_id": "d", "run_id": "r"}},
                                    deadline_hours=12))
    finally:
        server.shutdown()
    written = json.loads(alerts_path(Settings(data_dir=tmp_path)).read_text())
    assert written["kind"] == "deadline_missed" and written["run_id"] == "r"
    assert received == [written]
    assert paths == ["/robot/send?access_token=abc"]


def test_a_dead_webhook_does_not_lose_the_alert(tmp_path, monkeypatch):
    monkeypatch.setenv("SURVEY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_SURVEY_ALERTS", "http://127.0.0.1:9/nothing-listens")
    task_failed(failed_task_context())
    assert alerts_path(Settings(data_dir=tmp_path)).exists()
