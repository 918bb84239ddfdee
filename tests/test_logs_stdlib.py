"""Libraries that log through the standard library (APScheduler, alembic, httpx) reach journald as the same JSON
lines as retsync's own, scrubbed the same way; their per-request and per-job chatter stays out."""

from __future__ import annotations

import io
import json
import logging

from retsync import logs
from retsync.kit.secrets import remember


def test_a_library_warning_is_a_json_line_with_its_logger_and_no_secret() -> None:
    out = io.StringIO()
    remember("tok-9f8e7d6c5b4a")
    logs.configure(level="INFO", fmt="json", stream=out)
    logging.getLogger("apscheduler.executors.default").warning(
        "Execution of job %r skipped: maximum number of running instances reached (%d)", "pull bol", 1)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0016 -> 0017")
    logging.getLogger("somelib").error("token tok-9f8e7d6c5b4a refused")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("apscheduler.executors.default", "warning"), ("alembic.runtime.migration", "info"), ("somelib", "error")]
    assert "maximum number of running instances" in lines[0]["event"] and "timestamp" in lines[0]
    assert "tok-9f8e7d6c5b4a" not in out.getvalue()


def test_per_request_and_per_job_info_lines_stay_out() -> None:
    out = io.StringIO()
    logs.configure(level="INFO", fmt="json", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET https://api.example.com/returns \"HTTP/1.1 200 OK\"")
    logging.getLogger("apscheduler.scheduler").info("Added job \"pull bol\" to job store \"default\"")
    assert out.getvalue() == ""
