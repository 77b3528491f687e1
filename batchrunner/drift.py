"""Drift between two snapshots (SPEC section 13): what was added, removed and changed, row by row.

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
from typing import Iterator

from .errors import RunnerError

MANIFEST = "manifest.json"
CHANGES = "changes.json"


class SnapshotError(RunnerError):
    """A snapshot to compare is missing or damaged (diff exits 2)."""

    exit_code = 2


@dataclass
class Snapshot:
    path: Path
    resources: dict[str, dict]  # name -> {"file", "rows", "key"}

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def open(cls, path: Path) -> "Snapshot":
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            resources = manifest["resources"]
            assert isinstance(resources, dict)
        except FileNotFoundError:
            raise SnapshotError(f"{path} is not a snapshot (no {MANIFEST})") from None
        except (OSError, ValueError, KeyError, TypeError, AssertionError):
            raise SnapshotError(f"the snapshot {path} is damaged: its {MANIFEST} cannot be read") from None
        return cls(path, resources)


@dataclass
class Changes:
    old: str
    new: str
    summary: dict[str, dict] = field(default_factory=dict)
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    changed: list[dict] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return {kind: sum(s[kind] for s in self.summary.values()) for kind in ("added", "removed", "changed")}

    @property
    def any(self) -> bool:
        return any(self.totals.values())

    def as_json(self) -> dict:
        return {"from": self.old, "to": self.new, "summary": self.summary,
                "added": self.added, "removed": self.removed, "changed": self.changed}


def compare(old: Snapshot, new: Snapshot) -> Changes:
    """Every resource the two snapshots both hold, compared row by row."""
    changes = Changes(old.name, new.name)
    for name, entry in new.resources.items():
        if name not in old.resources:
            continue
        key = entry.get("key") or old.resources[name].get("key")
        if not key:
            raise SnapshotError(f"the snapshot {new.path} does not say the key of {name}; compare it with a newer runner")
        counts = {"added": 0, "removed": 0, "changed": 0}
        for kind, record in _merge(old.path / old.resources[name]["file"], new.path / entry["file"], key):
            counts[kind] += 1
            getattr(changes, kind).append({"resource": name, **record})
        changes.summary[name] = counts
    return changes


def _merge(old_file: Path, new_file: Path, key: list[str]) -> Iterator[tuple[str, dict]]:
    old_rows, new_rows = _rows(old_file, key), _rows(new_file, key)
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


def _rows(path: Path, key: list[str]) -> Iterator[tuple[tuple[str, ...], dict]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [k for k in key if k not in (reader.fieldnames or [])]
            if missing:
                raise SnapshotError(f"{path} has no column {missing[0]}; the snapshot is damaged")
            previous = None
            for row in reader:
                current = tuple(row[k] for k in key)
                if previous is not None and current <= previous:
                    raise SnapshotError(f"{path} is not sorted by {', '.join(key)} near {current}; the snapshot is damaged")
                previous = current
                yield current, row
    except FileNotFoundError:
        raise SnapshotError(f"{path} is missing; the snapshot is damaged") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path} cannot be read as CSV ({exc}); the snapshot is damaged") from None


def resolve(root: Path, given: str | None) -> Path:
    """A snapshot by name (in `root`) or by path."""
    path = Path(given)
    if not path.is_absolute() and not path.exists():
        path = root / given
    if not path.is_dir():
        raise SnapshotError(f"no snapshot {given!r} (looked in {root}; give a name from there or a path)")
    return path


def newest(root: Path, count: int, before: str | None = None) -> list[Path]:
    """The `count` newest complete-looking snapshots in `root` (by name), oldest first."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")) \
        if root.is_dir() else []
    if before is not None:
        names = [n for n in names if n < before]
    return [root / n for n in names[-count:]]


def previous_of(root: Path, name: str) -> Path | None:
    """The snapshot before `name`: the one `latest` points to, else the newest older by name."""
    link = root / "latest"
    if link.is_symlink():
        target = os.readlink(link)
        if target != name and (root / target).is_dir():
            return root / target
    older = newest(root, 1, before=name)
    return older[0] if older else None


def render(changes: Changes) -> str:
    """What changed, for a person at a terminal: per resource, + added, - removed, ~ changed field by field."""
    lines = [f"Changes from {changes.old} to {changes.new}:"]
    for name, counts in changes.summary.items():
        if not any(counts.values()):
            continue
        lines.append(f"{name}: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed")
        for kind, mark in (("added", "+"), ("removed", "-")):
            for record in (r for r in getattr(changes, kind) if r["resource"] == name):
                rest = ", ".join(f"{c}={v}" for c, v in record["row"].items() if v and v not in record["key"])
                lines.append(f"  {mark} {' / '.join(record['key'])}  {rest}".rstrip())
        for record in (r for r in changes.changed if r["resource"] == name):
            lines.append(f"  ~ {' / '.join(record['key'])}")
            lines.extend(f"      {c}: {old!r} -> {new!r}" for c, (old, new) in record["fields"].items())
    if len(lines) == 1:
        lines.append("no change")
    return "\n".join(line.replace("\r", "\\r").replace("\n", "\\n") if i else line for i, line in enumerate(lines))
