"""A `tenant-checks` run's report (README, "Tenant checks: `tenant-checks`"): the findings compared with
the previous run's (new, resolved, when each was first seen), written as
`{export_dir}/checks/{run start}.json` and `checks/checks-latest.csv`, a `findings` notification of
what is new, and the run's result, which the metrics read.

The previous run's findings are the job's durable state (JobState `findings`: key -> first seen
and severity). A finding seen before is `new` again when it became more urgent (a warning now critical). A
finding of a rule that was not checked this run (skipped for a scope, or turned
off) is neither resolved nor new: it is carried over untouched until it is checked again.
"""

from __future__ import annotations

import json
from datetime import datetime

from batchrunner.findings.gather import Gathered
from batchrunner.findings.rules import SEVERITIES, severity_order
from batchrunner.operating.notifications import notify
from batchrunner.outputs.atomic import atomic_text, make_folders
from batchrunner.outputs.writers import write_csv

FOLDER = "checks"
COLUMNS = [(name, name) for name in ("rule", "severity", "subject_type", "subject_id", "subject_name", "detail", "first_seen")]
NOTIFY_LIMIT = 20  # findings named in a notification; the rest counted


def compare(found: Gathered, previous: dict, now: datetime) -> tuple[list[dict], list[dict], dict]:
    """(findings with first_seen and status, resolved ones, the state to keep)."""
    stamp = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    rows, state = [], {}
    for finding in sorted(found.findings, key=severity_order):
        before = previous.get(finding.key)
        first = before["first_seen"] if before else stamp
        state[finding.key] = {"first_seen": first, "severity": finding.severity, "rule": finding.rule,
                              "subject_type": finding.subject_type, "subject_id": finding.subject_id,
                              "subject_name": finding.subject_name, "detail": finding.detail}
        rows.append({**finding.as_dict(), "first_seen": first, "status": "new" if _news(finding, before) else "open"})
    resolved = []
    for key, before in sorted(previous.items()):
        if key in state:
            continue
        if (before.get("rule"), before.get("subject_type")) in found.checked:
            resolved.append({k: before.get(k) for k in ("rule", "severity", "subject_type", "subject_id", "subject_name", "detail", "first_seen")})
        else:
            state[key] = before  # not looked at this run: neither resolved nor new
    return rows, resolved, state


def _news(finding, before: dict | None) -> bool:
    """Not seen before, or more urgent than before (a certificate entering the critical window)."""
    if not before:
        return True
    was = before.get("severity")
    return was in SEVERITIES and SEVERITIES.index(finding.severity) < SEVERITIES.index(was)


def counts(rows: list[dict]) -> dict[str, int]:
    return {severity: sum(1 for row in rows if row["severity"] == severity) for severity in SEVERITIES}


def publish(ctx, found: Gathered, now: datetime) -> dict:
    """Write the run's report, keep its findings for the next run, notify what is new; the run's result."""
    rows, resolved, state = compare(found, ctx.state.get("findings", {}) or {}, now)
    new = [row for row in rows if row["status"] == "new"]
    folder = ctx.export_dir / FOLDER
    make_folders(folder)
    path = folder / f"{now:%Y%m%dT%H%M%SZ}.json"
    if path.exists():  # a run started within the same second as the previous one: keep both reports
        path = folder / f"{now:%Y%m%dT%H%M%SZ}-run{ctx.run_id}.json"
    report = {"checked_at": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"), "findings": rows, "resolved": resolved,
              "skipped_checks": found.skipped,
              "expiries": [{"kind": k, "name": n, "expires_at": at} for (k, n), at in sorted(found.expiries.items())]}
    with atomic_text(path, newline="\n") as handle:
        json.dump(report, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    write_csv(folder / "checks-latest.csv", COLUMNS, rows)  # renamed into place whole
    ctx.state.put(findings=state)
    if new or resolved:
        _notify(ctx, new, resolved)
    ctx.log.info("%d findings (%d new, %d resolved), %d checks skipped; report %s", len(rows), len(new), len(resolved),
                 len(found.skipped), path)
    return {"findings": counts(rows), "new": counts(new), "resolved": counts(resolved), "skipped_checks": found.skipped,
            "path": str(path), "expiries": report["expiries"]}


def _notify(ctx, new: list[dict], resolved: list[dict]) -> None:
    named = [f"{row['severity']} {row['rule']}: {row['subject_name'] or row['subject_id']}: {row['detail']}" for row in new[:NOTIFY_LIMIT]]
    more = f" and {len(new) - NOTIFY_LIMIT} more" if len(new) > NOTIFY_LIMIT else ""
    text = (f"tenant-checks: {len(new)} new finding{'' if len(new) == 1 else 's'}{more}, {len(resolved)} resolved"
            + ("\n" + "\n".join(named) if named else ""))
    changes = {"new": [{k: row[k] for k in ("rule", "severity", "subject_type", "subject_id", "subject_name", "detail")} for row in new[:NOTIFY_LIMIT]],
               "new_count": len(new), "resolved_count": len(resolved)}
    notify(ctx, "findings", text, changes=changes)
