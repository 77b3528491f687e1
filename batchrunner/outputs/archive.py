"""A checkpointed archive (README, "The log archive: `export-logs`"): every item of a checkpoint list kept exactly once, in
gzip JSON Lines files, with the checkpoint in the runner's database.

Exactly once, whatever is killed when: items are streamed into a hidden file; every `per_file`
items (and at the end) the file is published together with the checkpoint (the id of its last
item) by `JobState.publish`, whose intent record lets the next run finish or undo a publish that a
kill cut short (state.py). A file is in place exactly when the checkpoint covers its items, so no
run archives an item again and none is skipped.

The folder says which archive it holds and how far its files reach (archive_folder.py): a run on
another folder or tenant than the checkpoint's refuses, and a checkpoint the database lost or rolled
back is brought up to the newest file before paging.

With `logins` (the log archive), each user's newest login event among a file's events is saved in
the database before the file is published, and files archived before that was kept are read once
(last_seen.py): users-cleanup's "last seen".

A gap (the tenant no longer holds the checkpoint's item: retention passed while the archive was
not running) is found before paging (`GET {path}/{checkpoint}` answers 404) or by the list's `400`
to the `from`; the run then archives from the oldest item held and ends failed, naming the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator

from batchrunner.auth0 import lists
from batchrunner.cli.render import plural
from batchrunner.errors import ApiError, JobFailed
from batchrunner.operating import notifications as alerts
from batchrunner.outputs import archive_folder as folder
from batchrunner.outputs import last_seen
from batchrunner.outputs.atomic import atomic_file, clean_leftovers, make_folders, prepare_export_dir
from batchrunner.outputs.dated_csv import terminal_progress
from batchrunner.outputs.writers import jsonl_gz_into

STARTS = ("oldest", "now")


@dataclass(frozen=True)
class Archive:
    path: str  # the checkpoint list under /api/v2/: "logs"
    id_field: str  # what the checkpoint is: "log_id"
    date_field: str  # "date"
    folder: str  # under the export directory: "logs"
    per_file: int = 10_000
    logins: bool = False  # keep each user's newest login event as files are published (last_seen.py)


def run(ctx, archive: Archive, start: str, retention_days: float) -> dict:
    """Archive what is new since the checkpoint; the run's result (JobFailed on a gap)."""
    state = ctx.state
    root = ctx.export_dir / archive.folder
    tenant = folder.tenant_name(ctx.api.base_url)
    recorded, mark = state.get("archive"), folder.read_mark(root)
    folder.check(recorded, mark, tenant, root, ctx.tenant and ctx.tenant.name)  # before settling an intent: it may be another disk's
    done = state.recover()
    if done:
        ctx.log.info("%s", done)
    prepare_export_dir(root, ctx.log)  # made 0750 and checked writable before Auth0 is asked for anything
    for leftover in clean_leftovers(root):
        ctx.log.info("removed %s, left by an interrupted run", leftover.name)
    checkpoint = _reconcile(ctx, archive, root, mark)
    if recorded is None:
        checkpoint = _begin(ctx, archive, root, mark, tenant, start if checkpoint is None else "oldest") or checkpoint
    if archive.logins:
        last_seen.catch_up(state, root, checkpoint, ctx.log)  # files archived before the table was kept, once
    result = {"events": 0, "files": 0, "checkpoint": checkpoint, "newest_event_at": state.get("newest_event_at")}
    gap = checkpoint is not None and not _held(ctx.api, archive, checkpoint)
    writer = _Writer(ctx, archive, root, checkpoint)
    with terminal_progress(ctx.job or archive.folder, ctx.api) as progress:
        try:
            _add_all(writer, _items(ctx.api, archive, None if gap else checkpoint), progress)
        except _Gap:
            gap = True
            _add_all(writer, _items(ctx.api, archive, None), progress)
    result.update(events=writer.events, files=writer.files, checkpoint=state.get("checkpoint"),
                  newest_event_at=state.get("newest_event_at"))
    _warn_if_behind(ctx, result, retention_days)
    if gap:
        result["gap"] = {"after": checkpoint, "resumed_at": writer.first_id}
        message = (f"the tenant no longer holds event {checkpoint}: events after it and before "
                   f"{writer.first_id or 'the newest'} were lost to the tenant's retention before they "
                   "were archived; run the archive more often than the retention")
        alerts.notify(ctx, "logs_gap", f"Auth0 log archive gap: {message}", error=message)
        raise JobFailed(message, result)
    return result


def _reconcile(ctx, archive: Archive, root: Path, mark: folder.Mark | None) -> str | None:
    """The checkpoint, brought up to what the folder holds: a database moved aside, restored from an
    older copy or rolled back by a power loss must neither stall on a file in place nor archive it again."""
    checkpoint = ctx.state.get("checkpoint")
    newest = folder.newest_file(root)
    reach = max((c for c in (checkpoint, mark and mark.after, newest and newest[0]) if c), default=None)
    if reach == checkpoint:
        return checkpoint
    at = folder.last_value(newest[1], archive.date_field) if newest and newest[0] == reach else None
    ctx.state.put(checkpoint=reach, newest_event_at=at)
    held = f"the checkpoint in the database was {checkpoint}" if checkpoint else "the database holds no checkpoint"
    ctx.log.warning("%s, but the archive in %s reaches %s: going on from there "
                    "(was the database moved aside or restored from a backup?)", held, root, reach)
    return reach


def _begin(ctx, archive: Archive, root: Path, mark: folder.Mark | None, tenant: str, start: str) -> str | None:
    """Record which archive this database's checkpoint is of: the folder's own, or a new one; the
    checkpoint a new archive starts after (RUNNER_LOGS_START=now: the newest event held), else None."""
    newest = None
    if mark is None:
        newest = _newest_held(ctx, archive) if start == "now" else None
        mark = folder.new_mark(tenant, newest and newest[archive.id_field])
        folder.write_mark(root, mark)
    values = {"archive": mark.identity()}
    if newest:
        values.update(checkpoint=newest[archive.id_field], newest_event_at=newest.get(archive.date_field))
        ctx.log.info("starting the archive after %s, the newest event held (RUNNER_LOGS_START=now)", newest[archive.id_field])
    ctx.state.put(**values)
    return newest and newest[archive.id_field]


class _Gap(Exception):
    pass


def _add_all(writer: "_Writer", items, progress) -> None:
    if progress:
        progress.show("reading events")
        items = progress.counted(items, lambda n: f"{n:,} event{'' if n == 1 else 's'} read" + (f", {plural(writer.files, 'file')} written" if writer.files else ""))
    writer.write(items)


def _held(api, archive: Archive, item_id: str) -> bool:
    try:
        api.get(f"{archive.path}/{item_id}")
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _items(api, archive: Archive, after: str | None):
    pages = lists.checkpoint(api, archive.path, None, {"from": after} if after else {})
    try:
        first = next(pages, None)
    except ApiError as exc:
        if after and exc.status == 400:
            raise _Gap() from None  # Auth0 answers a `from` it no longer holds with 400 (observed)
        raise
    if first is not None:
        yield first
        yield from pages


def _newest_held(ctx, archive: Archive) -> dict | None:
    # Search paging, newest first by date; log_id order may differ a little, so take the highest of a page.
    newest = ctx.api.get(archive.path, {"sort": f"{archive.date_field}:-1", "per_page": 100, "page": 0})
    return max(newest, key=lambda item: item[archive.id_field]) if newest else None


def _warn_if_behind(ctx, result: dict, retention_days: float) -> None:
    newest = result.get("newest_event_at")
    if not newest:
        return
    age = ctx.now() - datetime.fromisoformat(newest.replace("Z", "+00:00")).astimezone(timezone.utc)
    if age > timedelta(days=retention_days / 2):
        result["warning"] = (f"the newest archived event is {age.total_seconds() / 3600:.1f} h old, more than half "
                             f"the tenant's retention ({retention_days:g} d): run the archive more often, or events will be lost")
        ctx.log.warning("%s", result["warning"])


class _Writer:
    """Writes items into gzip JSON Lines files of up to `per_file` and publishes each with the checkpoint."""

    def __init__(self, ctx, archive: Archive, root: Path, checkpoint: str | None):
        self.ctx, self.archive, self.root = ctx, archive, root
        self.checkpoint = checkpoint  # what the state holds: a publish lands only on it (state.py's fence)
        self.events = self.files = 0
        self.first_id: str | None = None
        self.logins = last_seen.Batch() if archive.logins else None

    def write(self, items: Iterable[dict]) -> None:
        """Every item, file by file; a failure leaves the file in the making unpublished (removed): its
        items are fetched again next time."""
        items = iter(items)
        for first in items:  # a file is begun only once an item is there for it
            self.first_id = self.first_id or first[self.archive.id_field]
            self._write_file(first, items)

    def _write_file(self, first: dict, more: Iterator[dict]) -> None:
        last, count = [first], 0
        if self.logins is not None:
            self.logins = last_seen.Batch()  # this file's events only: another's that failed were not published

        def noting_last(items):
            for last[0] in items:
                if self.logins is not None:
                    self.logins.see(last[0])
                yield last[0]

        # Under the hidden name `.batch.….partial` until published (a kill leaves it for clean_leftovers).
        with atomic_file(self.root / "batch", place=lambda staged: self._publish(staged, first, last[0], count)) as raw:
            count = jsonl_gz_into(raw, noting_last(chain([first], islice(more, self.archive.per_file - 1))))

    def _publish(self, staged: Path, first: dict, last: dict, count: int) -> None:
        ids = self.archive.id_field
        final = self.root / _day(first.get(self.archive.date_field)) / f"{first[ids]}-{last[ids]}.jsonl.gz"
        make_folders(final.parent)
        covered = {}
        if self.logins is not None:
            # Saved before the checkpoint moves past these events: a kill loses none, a replay changes nothing.
            self.logins.save(self.ctx.db, self.ctx.state.tenant)
            covered[last_seen.STATE] = {"through": last[ids]}
        self.ctx.state.publish(staged, final, expect={"checkpoint": self.checkpoint}, same_if_exists=True,
                               checkpoint=last[ids], newest_event_at=last.get(self.archive.date_field), **covered)
        self.checkpoint = last[ids]
        self.events += count
        self.files += 1


def _day(date: str | None) -> str:
    """YYYY/MM/DD of an ISO date (UTC), for the archive's folders."""
    if isinstance(date, str) and len(date) >= 10 and date[4] == "-" and date[7] == "-":
        return f"{date[:4]}/{date[5:7]}/{date[8:10]}"
    return "undated"
