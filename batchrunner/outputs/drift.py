"""Drift between two snapshots (README, "Drift: what changed since the last snapshot"): what was added, removed and changed, row by row.

Snapshot files are sorted by their key columns (compared as strings), so two of them are compared
in one pass, a merge of two sorted streams: memory holds the changes, never the files. The keys
come from each snapshot's manifest.json, so a snapshot describes itself.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from batchrunner.errors import RunnerError

MANIFEST = "manifest.json"
CHANGES = "changes.json"
Record = Callable[[str, dict], None]  # takes each change: its kind ("added", ...) and the change


# What to do about a damaged snapshot: `runner diff` and the next run compare the ones before it.
FIX = "restore it from a backup, or move it out of the snapshots folder"
DAMAGED = f"the snapshot is damaged: {FIX}"


class SnapshotError(RunnerError):
    """A snapshot to compare is missing or damaged (diff exits 2)."""

    exit_code = 2


@dataclass
class SnapshotFolder:
    """A snapshot's folder as its manifest describes it: the tables it holds, their keys, its tenant."""

    path: Path
    resources: dict[str, dict]  # name -> {"file", "rows", "key"}
    tenant: str | None = None  # the manifest's "tenant": the URL of the Auth0 domain it was taken from
    label: str | None = None  # its name when `path` is where it is being written

    @property
    def name(self) -> str:
        return self.label or self.path.name

    @classmethod
    def open(cls, path: Path) -> "SnapshotFolder":
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            assert isinstance(manifest["resources"], dict)
        except FileNotFoundError:
            raise SnapshotError(f"{path} is not a snapshot (no {MANIFEST})") from None
        except (OSError, ValueError, KeyError, TypeError, AssertionError):
            raise SnapshotError(f"the snapshot {path} is damaged: its {MANIFEST} cannot be read; {FIX}") from None
        return cls.of(path, manifest)

    @classmethod
    def of(cls, path: Path, manifest: dict, label: str | None = None) -> "SnapshotFolder":
        tenant = manifest.get("tenant")
        tenant = tenant.rstrip("/").lower() if isinstance(tenant, str) and tenant else None
        return cls(path, manifest["resources"], tenant, label)


class OtherTenant(SnapshotError):
    """Two snapshots of two tenants (AUTH0_DOMAIN changed between them): their differences are no drift."""

    def __init__(self, old: SnapshotFolder, new: SnapshotFolder):
        super().__init__(f"{old.name} is a snapshot of {old.tenant} and {new.name} of {new.tenant}: two tenants, "
                         f"not drift; nothing compared")


def same_tenant(old: SnapshotFolder, new: SnapshotFolder) -> None:
    """OtherTenant when both manifests name their tenant and the names differ (older manifests name none)."""
    if old.tenant and new.tenant and old.tenant != new.tenant:
        raise OtherTenant(old, new)


@dataclass
class Changes:
    old: str
    new: str
    summary: dict[str, dict] = field(default_factory=dict)
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # resource -> the snapshot it was compared with
    not_compared: list[str] = field(default_factory=list)  # resources only one side holds

    @property
    def totals(self) -> dict[str, int]:
        return {kind: sum(s[kind] for s in self.summary.values()) for kind in ("added", "removed", "changed")}

    @property
    def any(self) -> bool:
        return any(self.totals.values())

    def as_json(self) -> dict:
        return {"from": self.old, "to": self.new, "summary": self.summary,
                "added": self.added, "removed": self.removed, "changed": self.changed,
                "from_by_resource": self.sources, "not_compared": self.not_compared}


def compare(old: SnapshotFolder, new: SnapshotFolder) -> Changes:
    """Every resource the two snapshots both hold, compared row by row; the others are named not compared."""
    same_tenant(old, new)
    sources = {name: old for name in new.resources if name in old.resources}
    changes = _compare(sources, new)
    changes.old = old.name
    changes.not_compared = [n for n in dict.fromkeys([*new.resources, *old.resources]) if n not in sources]
    return changes


def compare_each(older: Iterable[Path], new: SnapshotFolder, record: Record | None = None) -> Changes | None:
    """Each resource of `new` compared with the newest of `older` (newest first) that holds it, so a
    partial snapshot (`--param resources=roles`) hides no change to the resources it left out.
    None when `older` is empty. The first of `older` damaged or of another tenant is a SnapshotError;
    a later one ends the search, and the resources still unfound are named not compared.
    `record(kind, change)` takes each change instead of the Changes' lists (ChangesFile.record)."""
    sources: dict[str, SnapshotFolder] = {}
    newest = None
    for path in older:
        try:
            snapshot = SnapshotFolder.open(path)
            same_tenant(snapshot, new)
        except SnapshotError:
            if newest is None:
                raise
            break
        newest = newest or snapshot
        for name in new.resources:
            if name in snapshot.resources:
                sources.setdefault(name, snapshot)
        if len(sources) == len(new.resources):
            break
    if newest is None:
        return None
    changes = _compare(sources, new, record)
    changes.old = max((s.name for s in sources.values()), default=newest.name)
    changes.not_compared = [n for n in new.resources if n not in sources]
    return changes


def _compare(sources: dict[str, SnapshotFolder], new: SnapshotFolder, record: Record | None = None) -> Changes:
    changes = Changes("", new.name, sources={name: old.name for name, old in sources.items()})
    record = record or (lambda kind, change: getattr(changes, kind).append(change))
    for name, entry in new.resources.items():
        if name not in sources:
            continue
        old_entry = sources[name].resources[name]
        key = entry.get("key") or old_entry.get("key")
        if not key:
            raise SnapshotError(f"the snapshot {new.path} does not say the key of {name}; compare it with a newer runner")
        counts = {"added": 0, "removed": 0, "changed": 0}
        for kind, change in _merge(_Side(sources[name].path, old_entry), _Side(new.path, entry), key):
            counts[kind] += 1
            record(kind, {"resource": name, **change})
        changes.summary[name] = counts
    return changes


class ChangesFile:
    """changes.json written without holding the changes (a first snapshot of a million members
    against an empty one is a million rows added): each change goes to a file in `scratch` as the
    merge finds it, and is copied into place once the summary, which comes first, is known. The
    bytes are those of json.dump(changes.as_json(), indent=2) with the changes held."""

    KINDS = ("added", "removed", "changed")

    def __init__(self, scratch: Path):
        self.paths = {kind: scratch / f"changes.{kind}.jsonl" for kind in self.KINDS}
        self.files = {kind: open(path, "w+", encoding="utf-8") for kind, path in self.paths.items()}

    def record(self, kind: str, change: dict) -> None:
        self.files[kind].write(json.dumps(change, ensure_ascii=False) + "\n")

    def write(self, handle, changes: Changes) -> None:
        """The whole of changes.json (its final newline too) into the open text file `handle`."""
        separator = "{"
        for name, value in changes.as_json().items():
            handle.write(f"{separator}\n  {json.dumps(name)}: ")
            separator = ","
            if name in self.files:
                self._write_list(handle, self.files[name])
            else:
                handle.write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        handle.write("\n}\n")

    @staticmethod
    def _write_list(handle, file) -> None:
        file.seek(0)
        separator = "["
        for line in file:
            handle.write(f"{separator}\n    " + json.dumps(json.loads(line), indent=2, ensure_ascii=False).replace("\n", "\n    "))
            separator = ","
        handle.write("[]" if separator == "[" else "\n  ]")

    def close(self) -> None:
        for file in self.files.values():
            file.close()
        for path in self.paths.values():
            path.unlink(missing_ok=True)


@dataclass
class _Side:
    """One snapshot's file of a resource, and the rows its manifest says it holds."""

    path: Path
    entry: dict

    @property
    def file(self) -> Path:
        return self.path / self.entry["file"]

    @property
    def rows(self) -> int | None:
        rows = self.entry.get("rows")
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def _merge(old_side: _Side, new_side: _Side, key: list[str]) -> Iterator[tuple[str, dict]]:
    old_rows, new_rows = _rows(old_side, key), _rows(new_side, key)
    old, new = next(old_rows, None), next(new_rows, None)
    while old is not None or new is not None:
        if new is None or (old is not None and old[0] < new[0]):
            yield "removed", {"key": list(old[0]), "row": old[1]}
            old = next(old_rows, None)
        elif old is None or new[0] < old[0]:
            yield "added", {"key": list(new[0]), "row": new[1]}
            new = next(new_rows, None)
        else:
            fields = {c: [old[1].get(c, ""), new[1].get(c, "")] for c in dict.fromkeys([*old[1], *new[1]])
                      if old[1].get(c, "") != new[1].get(c, "")}
            if fields:
                yield "changed", {"key": list(new[0]), "fields": fields}
            old, new = next(old_rows, None), next(new_rows, None)


def _rows(side: _Side, key: list[str]) -> Iterator[tuple[tuple[str, ...], dict]]:
    """The file's rows in key order; SnapshotError naming the file when it is not what its manifest
    says (a truncated or damaged file read as rows removed would be false drift)."""
    path = side.file
    try:
        if not _ends_a_line(path):
            raise SnapshotError(f"{path} ends inside a row (cut short); {DAMAGED}")
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [k for k in key if k not in (reader.fieldnames or [])]
            if missing:
                raise SnapshotError(f"{path} has no column {missing[0]}; {DAMAGED}")
            previous, count = None, 0
            for row in reader:
                if None in row or None in row.values():
                    raise SnapshotError(f"{path} line {reader.line_num} does not have the header's "
                                        f"{len(reader.fieldnames)} columns; {DAMAGED}")
                current = tuple(row[k] for k in key)
                if previous is not None and current <= previous:
                    raise SnapshotError(f"{path} is not sorted by {', '.join(key)} near {current}; {DAMAGED}")
                previous, count = current, count + 1
                yield current, row
    except FileNotFoundError:
        raise SnapshotError(f"{path} is missing; {DAMAGED}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path} cannot be read as CSV ({exc}); {DAMAGED}") from None
    if side.rows is not None and count != side.rows:
        raise SnapshotError(f"{path} holds {count} rows where its {MANIFEST} says {side.rows}; {DAMAGED}")


def between(root: Path, old: str | None, new: str | None) -> Changes:
    """What `runner diff` compares: OLD and NEW as given; NEW alone, the newest; neither, the newest
    with each of its resources against the newest earlier snapshot that holds it."""
    if old is None:
        found = newest(root, 1)
        earlier = older(root, found[0].name) if found else []
        if not earlier:
            raise SnapshotError(f"need two snapshots to compare; {root} holds {len(found)}")
        return compare_each(earlier, SnapshotFolder.open(found[0]))
    old_path = resolve(root, old)
    new_path = resolve(root, new) if new is not None else next(iter(newest(root, 1)), None)
    if new_path is None:
        raise SnapshotError(f"need two snapshots to compare; {root} holds none")
    return compare(SnapshotFolder.open(old_path), SnapshotFolder.open(new_path))


def _ends_a_line(path: Path) -> bool:
    """Whether the file is empty or its last byte ends a line, as every file the runner writes does."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def resolve(root: Path, given: str | None) -> Path:
    """A snapshot by name (in `root`) or by path."""
    path = Path(given)
    if not path.is_absolute() and not path.exists():
        path = root / given
    if not path.is_dir():
        raise SnapshotError(f"no snapshot {given!r} (looked in {root}; give a name from there or a path)")
    return path


def _names(root: Path, before: str | None = None) -> list[str]:
    """The complete-looking snapshots' names in `root` (not hidden, not `latest`), sorted."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")) \
        if root.is_dir() else []
    return [n for n in names if n < before] if before is not None else names


def newest(root: Path, count: int, before: str | None = None) -> list[Path]:
    """The `count` newest complete-looking snapshots in `root` (by name), oldest first."""
    return [root / n for n in _names(root, before)[-count:]]


def older(root: Path, name: str) -> list[Path]:
    """The snapshots before `name`, newest first: the one `latest` points to, then the older by name."""
    first = []
    link = root / "latest"
    if link.is_symlink():
        target = os.readlink(link)
        if target != name and (root / target).is_dir():
            first = [root / target]
    return first + [root / n for n in reversed(_names(root, before=name)) if root / n not in first]


def render(changes: Changes) -> str:
    """What changed, for a person at a terminal: per resource, + added, - removed, ~ changed field by field."""
    lines = [f"Changes from {changes.old} to {changes.new}:"]
    for name, counts in changes.summary.items():
        if not any(counts.values()):
            continue
        source = changes.sources.get(name, changes.old)
        since = f" (since {source})" if source != changes.old else ""
        lines.append(f"{name}: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed{since}")
        for kind, mark in (("added", "+"), ("removed", "-")):
            for record in (r for r in getattr(changes, kind) if r["resource"] == name):
                rest = ", ".join(f"{c}={v}" for c, v in record["row"].items() if v and v not in record["key"])
                lines.append(f"  {mark} {' / '.join(record['key'])}  {rest}".rstrip())
        for record in (r for r in changes.changed if r["resource"] == name):
            lines.append(f"  ~ {' / '.join(record['key'])}")
            lines.extend(f"      {c}: {old!r} -> {new!r}" for c, (old, new) in record["fields"].items())
    if len(lines) == 1:
        lines.append("no change")
    if changes.not_compared:  # said, so that "no change" is not read as covering them
        lines.append(f"not compared (no snapshot to compare them with): {', '.join(changes.not_compared)}")
    return "\n".join(line.replace("\r", "\\r").replace("\n", "\\n") if i else line for i, line in enumerate(lines))
