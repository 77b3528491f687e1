"""Dead man's switch pings in the Healthchecks.io protocol (README, "Operating it unattended"), which Cronitor and others accept.

`{url}/start?rid=RUN_UUID` when a run starts, `{url}?rid=...` when it succeeds, `{url}/fail?rid=...`
when it fails, with the error line and the last 10,000 bytes of the run's log lines (secrets
redacted) as the body. RUNNER_PING_URL_<JOB> names one job's check; RUNNER_PING_URL is a template
whose `{job}` becomes the job's name (a Healthchecks slug URL: https://hc-ping.com/KEY/{job}). In
either, `{tenant}` becomes the run's tenant (README, "Several tenants"), so each (job, tenant) can
have its check: https://hc-ping.com/KEY/{tenant}-{job}.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from batchrunner import logs
from batchrunner.operating import webhooks
from batchrunner.store.schema import DEFAULT_TENANT

BODY_BYTES = 10_000  # Healthchecks' default PING_BODY_LIMIT; runitor keeps the last 10,000 bytes too
TEMPLATE = "RUNNER_PING_URL"


def variable(job_name: str) -> str:
    return "RUNNER_PING_URL_" + job_name.upper().replace("-", "_")


def url_for(job_name: str, env: Mapping[str, str], tenant: str = DEFAULT_TENANT) -> str | None:
    """The (job, tenant)'s check URL, or None; ConfigError for one that is not https (or http to loopback)."""
    for name in (variable(job_name), TEMPLATE):
        given = env.get(name, "").strip()
        if given:
            return webhooks.checked_url(name, given.replace("{job}", job_name).replace("{tenant}", tenant)).rstrip("/")
    return None


def _with(url: str, suffix: str, rid: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&rid={rid}" if parts.query else f"rid={rid}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path + suffix, query, ""))


class LogTail(logging.Handler):
    """The last BODY_BYTES of one run's log lines (those tagged with its run id), redacted."""

    def __init__(self, run_id: int):
        super().__init__(logging.INFO)
        self.run = str(run_id)
        self.lines: collections.deque[bytes] = collections.deque()
        self.size = 0
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if str(getattr(record, "run", logs._run.get())) != self.run:
            return
        when = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = logs.redact(f"{when} {record.levelname} {record.getMessage()}").replace("\n", "\\n").encode() + b"\n"
        with self._guard:
            self.lines.append(line)
            self.size += len(line)
            while self.size > BODY_BYTES and len(self.lines) > 1:
                self.size -= len(self.lines.popleft())

    def text(self) -> bytes:
        with self._guard:
            return b"".join(self.lines)[-BODY_BYTES:]


class Pinger:
    """The pings of one run."""

    def __init__(self, url: str, rid: str, run_id: int, sender: webhooks.Sender):
        self.url, self.rid, self.sender = url, rid, sender
        self.tail = LogTail(run_id)
        logging.getLogger().addHandler(self.tail)

    def start(self) -> None:
        self.sender.post(_with(self.url, "/start", self.rid), b"", "text/plain", "start ping")

    def finish(self, succeeded: bool, error: str | None) -> None:
        logging.getLogger().removeHandler(self.tail)
        if succeeded:
            self.sender.post(_with(self.url, "", self.rid), b"", "text/plain", "success ping")
            return
        body = logs.redact(error or "failed").encode() + b"\n\n" + self.tail.text()
        self.sender.post(_with(self.url, "/fail", self.rid), body, "text/plain; charset=utf-8", "failure ping")
