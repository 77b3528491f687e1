"""The status page (README, "Status page"): `GET /` and `GET /runs/{id}` on RUNNER_METRICS_ADDRESS.

One server-rendered page, no external assets, no JavaScript; it reloads itself (meta refresh).
Every value from the database passes through `esc` (html.escape): a client named `<script>` or an
error holding markup is text. The Content-Security-Policy (`CSP`) allows no script at all and this
page's one style block by its hash. Imported only when `serve` has a metrics address.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import datetime
from dataclasses import dataclass
from typing import Callable, Iterable

from batchrunner import clock
from batchrunner.operating import status_data
from batchrunner.operating.status_data import CHECKS_JOB, LOGS_JOB, SNAPSHOT_JOB, Reading, Run
from batchrunner.runs import records
from batchrunner.store.database import Database

REFRESH_SECONDS = 30
CHART_WIDTH, CHART_HEIGHT, BAR = 120, 24, 4  # 30 bars of 4 px
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "abandoned": "#ef6c00", "running": "#1565c0"}
PALE = ' fill-opacity="0.35"'
SEVERITIES = ("critical", "high", "medium", "low", "info")  # shown in this order, others after

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:12px 16px;color:#1b1b1b;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px}
.meta{color:#555;margin:0 0 8px}.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}tr>th:first-child{position:sticky;left:0}td.cell{min-width:128px}
.st{font-weight:600}.succeeded{color:#2e7d32}.failed{color:#c62828}.abandoned{color:#ef6c00}.running{color:#1565c0}
.none{color:#999}ul{padding-left:18px;margin:0}li{margin:0 0 6px}.err{font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}.bad{color:#c62828;font-weight:600}.ok{color:#2e7d32;font-weight:600}.small{font-size:12px;color:#555}pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #ddd;padding:6px;margin:0}
a{color:#0b57d0}
""".strip()
CSP = ("default-src 'none'; "
       f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass
class StatusPage:
    """The page's sources: the database, the scheduler's plan ((job, tenant) -> next fire time) and the clock."""

    db: Database
    next_fires: Callable[[], dict[tuple[str, str], datetime | None]]
    now: Callable[[], datetime]

    def index(self) -> str:
        return index(status_data.read(self.db), self.next_fires(), self.now())

    def run(self, run_id: int) -> str | None:
        """The run's page; None when there is no such run."""
        found = records.history_record(self.db, run_id)
        return None if found is None else run_page(found, self.now())


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, refresh: bool) -> str:
    head = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"{head}<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>")


def index(reading: Reading, next_fires: dict[tuple[str, str], datetime | None], now: datetime) -> str:
    """The overview: `next_fires` is the scheduler's plan, (job, tenant) -> its next fire time."""
    pairs = set(reading.recent) | set(next_fires)
    jobs = sorted({job for job, _ in pairs})
    tenants = sorted({tenant for _, tenant in pairs} | {t for _, t in reading.results})
    body = (f"<h1>runner status</h1><p class=\"meta\">at {_stamp(now)}; reloads every {REFRESH_SECONDS} s</p>"
            + _summary(reading) + "<h2>Jobs</h2>" + _grid(reading, next_fires, jobs, tenants, now)
            + "<h2>Recent failures</h2>" + _failures(reading, now)
            + "<h2>Tenants</h2>" + _tenants(reading, tenants, now))
    return page("runner status", body, refresh=True)


def run_page(run: dict, now: datetime) -> str:
    """One run as `runner history --json` has it (records.public): nothing the history does not show."""
    seconds = (run["finished_at"] - run["started_at"]).total_seconds() if run["finished_at"] else None
    rows = [("job", esc(run["job"])), ("tenant", esc(run["tenant"])), ("status", _status(run["status"])),
            ("trigger", esc(run["trigger"])), ("scheduled for", _at(run["scheduled_for"], now)),
            ("started", _at(run["started_at"], now)), ("finished", _at(run["finished_at"], now)),
            ("duration", esc(_duration(seconds)) if seconds is not None else _none()), ("host", esc(f"{run['host']} pid {run['pid']}"))]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    body = (f'<p><a href="/">&larr; status</a></p><h1>run {esc(run["id"])}: {esc(run["job"])}</h1>'
            f'<div class="scroll"><table>{table}</table></div>'
            + "".join(f"<h2>{name}</h2>{_pre(run[key])}" for name, key in (("error", "error"), ("params", "params"), ("result", "result"))))
    return page(f"run {run['id']}: {run['job']}", body, refresh=run["status"] == "running")


def not_found(what: str) -> str:
    return page("not found", f'<h1>not found</h1><p>{esc(what)}</p><p><a href="/">status</a></p>', refresh=False)


def _summary(reading: Reading) -> str:
    """First what needs a person: the (job, tenant)s whose latest run failed, else that none did."""
    failing = sorted((runs[0] for runs in reading.recent.values() if runs[0].status in ("failed", "abandoned")),
                     key=lambda r: (r.tenant, r.job))
    if not failing:
        return f'<p class="ok">no job&#39;s latest run failed ({len(reading.recent)} job and tenant pairs with runs)</p>'
    links = ", ".join(f'<a href="/runs/{r.id}">{esc(r.job)} for {esc(r.tenant)}</a>' for r in failing)
    return f'<p><span class="bad">{len(failing)} failing now:</span> {links}</p>'


def _grid(reading: Reading, next_fires, jobs: list[str], tenants: list[str], now: datetime) -> str:
    if not jobs:
        return '<p class="none">no runs recorded and no job scheduled</p>'
    head = "<tr><th>tenant</th>" + "".join(f"<th>{esc(job)}</th>" for job in jobs) + "</tr>"
    rows = []
    for tenant in tenants:
        cells = "".join(_cell(reading, next_fires, job, tenant, now) for job in jobs)
        rows.append(f"<tr><th>{esc(tenant)}</th>{cells}</tr>")
    return f'<div class="scroll"><table class="grid">{head}{"".join(rows)}</table></div>'


def _cell(reading: Reading, next_fires, job: str, tenant: str, now: datetime) -> str:
    key = (job, tenant)
    recent = reading.recent.get(key, [])
    if not recent and key not in next_fires:
        return '<td class="cell none">&ndash;</td>'
    parts = []
    if recent:
        latest = recent[0]
        parts.append(f'<a href="/runs/{latest.id}">{_status(latest.status)}</a> {_when(latest.started_at, now)}')
    else:
        parts.append('<span class="none">never run</span>')
    success = reading.last_success.get(key)
    parts.append(f'<span class="small">last success {_when(success, now) if success else _none("never")}</span>')
    if key in next_fires:
        upcoming = next_fires[key]
        parts.append(f'<span class="small">next {_when(upcoming, now) if upcoming else _none("off")}</span>')
    if recent:
        parts.append(chart(recent))
    return f'<td class="cell">{"<br>".join(parts)}</td>'


def chart(recent: list[Run]) -> str:
    """The last runs oldest first, one bar each: its height the duration against the longest, its
    colour the outcome; a running run is a full pale bar. One path per colour, not a rect per bar:
    500 charts of 30 bars made the page a megabyte."""
    runs = recent[::-1]
    longest = max((r.seconds or 0.0 for r in runs), default=0.0) or 1.0
    paths: dict[tuple[str, bool], list[str]] = {}
    for n, run in enumerate(runs):
        top = 0 if run.seconds is None else CHART_HEIGHT - max(2, round(run.seconds / longest * CHART_HEIGHT))
        paths.setdefault((COLOURS.get(run.status, "#777"), run.seconds is None), []).append(f"M{n * BAR} {top}h{BAR - 1}V{CHART_HEIGHT}h-{BAR - 1}z")
    label = f"last {len(runs)} runs: {_counts(r.status for r in runs)}; longest {_duration(longest)}"
    shapes = "".join(f'<path fill="{colour}"{PALE if pale else ""} d="{"".join(d)}"/>' for (colour, pale), d in paths.items())
    return (f'<svg role="img" aria-label="{esc(label)}" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{esc(label)}</title>{shapes}</svg>')


def _failures(reading: Reading, now: datetime) -> str:
    if not reading.failures:
        return '<p class="none">none</p>'
    # A list, not a table: on a phone the error line keeps the width.
    items = "".join(
        f'<li><a href="/runs/{f.run.id}">run {f.run.id}</a> {esc(f.run.job)} for {esc(f.run.tenant)} '
        f'{_status(f.run.status)} {_when(f.run.started_at, now)}<br><span class="err">{esc(f.error)}</span></li>'
        for f in reading.failures)
    return f"<ul>{items}</ul>"


def _tenants(reading: Reading, tenants: list[str], now: datetime) -> str:
    checks = any(job == CHECKS_JOB for job, _ in reading.results)
    head = "<tr><th>tenant</th><th>log archive reaches</th><th>latest drift</th>" + ("<th>findings</th>" if checks else "") + "</tr>"
    rows = []
    for tenant in tenants:
        cells = [_reach(reading.results.get((LOGS_JOB, tenant)), now), _drift(reading.results.get((SNAPSHOT_JOB, tenant)))]
        if checks:
            cells.append(_findings(reading.results.get((CHECKS_JOB, tenant))))
        rows.append(f"<tr><th>{esc(tenant)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _reach(latest, now: datetime) -> str:
    newest = clock.parse(latest.result.get("newest_event_at")) if latest else None
    if newest is None:
        return _none()
    return f'{_when(newest, now)} <a class="small" href="/runs/{latest.run_id}">run {latest.run_id}</a>'


def _drift(latest) -> str:
    changes = latest.result.get("changes") if latest else None
    if not isinstance(changes, dict):
        return _none()
    text = ", ".join(f"{esc(kind)} {esc(n)}" for kind, n in changes.items()) or "no changes"
    return f'{text} <a class="small" href="/runs/{latest.run_id}">run {latest.run_id}</a>'


def _findings(latest) -> str:
    findings = latest.result.get("findings") if latest else None
    if not isinstance(findings, dict):
        return _none()
    order = sorted(findings, key=lambda s: (SEVERITIES.index(s.lower()) if s.lower() in SEVERITIES else len(SEVERITIES), s))
    text = ", ".join(f"{esc(severity)} {esc(findings[severity])}" for severity in order) or "none"
    extra = "".join(f"; {key} {esc(latest.result[key])}" for key in ("new", "resolved") if isinstance(latest.result.get(key), (int, float)))
    return f'{text}{extra} <a class="small" href="/runs/{latest.run_id}">run {latest.run_id}</a>'


def _status(status: str) -> str:
    return f'<span class="st {esc(status)}">{esc(status)}</span>'


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return _none()
    seconds = (now - at).total_seconds()
    words = "just now" if abs(seconds) < 1 else f"{_duration(abs(seconds))} ago" if seconds >= 0 else f"in {_duration(-seconds)}"
    return f'<time datetime="{esc(at.isoformat())}" title="{esc(_stamp(at))}">{esc(words)}</time>'


def _at(at: datetime | None, now: datetime) -> str:
    """The time itself, then how long ago: a run's page is read for its timings."""
    return _none() if at is None else f"{esc(_stamp(at))} ({_when(at, now)})"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def _counts(statuses: Iterable[str]) -> str:
    tally: dict[str, int] = {}
    for status in statuses:
        tally[status] = tally.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in tally.items())


def _pre(value) -> str:
    if value in (None, "", {}):
        return _none()
    text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
    return f"<pre>{esc(text)}</pre>"


def _none(word: str = "none") -> str:
    return f'<span class="none">{esc(word)}</span>'

