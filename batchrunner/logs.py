"""Log lines on stderr: time, level, job, run id and tenant, message; text or JSON (for log shippers).

JSON lines always carry `tenant` (null outside a job); text lines carry `tenant=NAME` after the
run id for a named tenant's runs only, so the lines of one tenant (`default`) read as before tenants
(README, "Several tenants").

Secrets registered with `redact_secret` are replaced wherever they would appear in a log line
or a recorded error (README, "Configuration": secrets never appear in output, logs or the database).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
from datetime import datetime, timezone

from batchrunner import progress

DEFAULT_TENANT = "default"  # store.schema's; not imported: this module loads before SQLAlchemy is wanted

_job = contextvars.ContextVar("job", default="-")
_run = contextvars.ContextVar("run", default="-")
_tenant = contextvars.ContextVar("tenant", default="-")
_secrets: set[str] = set()
_json = False  # set by setup()


def redact_secret(secret: str) -> None:
    if secret and len(secret) >= 4:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "[redacted]")
    return text


def about(job: str, tenant: str = DEFAULT_TENANT) -> dict:
    """`extra=` for a log line about a (job, tenant) written outside its run (the scheduler's own lines)."""
    return {"job": job, "run": "-", "tenant": tenant}


def tagged(call):
    """`call`, to run in another thread with this thread's log tags (job, run id, tenant)."""
    return functools.partial(contextvars.copy_context().run, call)


def bind(job: str, run_id: int | None, tenant: str = DEFAULT_TENANT) -> None:
    """Tag this thread's (or task's) log lines with a job, run id and tenant."""
    _job.set(job)
    _run.set(str(run_id) if run_id is not None else "-")
    _tenant.set(tenant if job != "-" else "-")


class _Formatter(logging.Formatter):
    """One line per event, so the journal keeps each event whole: a traceback's line breaks are escaped in text."""

    def __init__(self, as_json: bool):
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        message = redact(message)
        when = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        job, run = getattr(record, "job", _job.get()), getattr(record, "run", _run.get())
        tenant = getattr(record, "tenant", _tenant.get() if job == _job.get() else DEFAULT_TENANT)
        if self.as_json:
            return json.dumps(
                {"time": when, "level": record.levelname, "job": None if job == "-" else job,
                 "run": int(run) if str(run).isdigit() else None, "tenant": None if tenant == "-" else tenant,
                 "logger": record.name, "message": message},
                ensure_ascii=False,
            )
        named = f" tenant={tenant}" if tenant not in ("-", DEFAULT_TENANT) else ""
        return f"{when} {record.levelname:<7} job={job} run={run}{named} {message}".replace("\n", "\\n")


class _Handler(logging.StreamHandler):
    """Ends a progress line on the terminal first, so a log line never continues it."""

    def emit(self, record: logging.LogRecord) -> None:
        with progress.LOCK:
            progress.end_line()
            super().emit(record)


def as_json() -> bool:
    """True once `setup` chose JSON lines: a command's own closing line is then one too."""
    return _json


def setup(level: str = "INFO", fmt: str = "text", stream=None) -> None:
    global _json
    _json = fmt == "json"
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel("WARNING")
