"""Rendering for people (aligned tables) and for scripts (JSON with ISO 8601 UTC times)."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Sequence


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_default, indent=2, ensure_ascii=False)


def _default(value: Any):
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 file`, `2 files`: a count with its noun in the number it takes."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def terminal_width() -> int | None:
    """The columns of the terminal stdout shows on ($COLUMNS wins); None where stdout is a file or a
    pipe, whose reader (grep, a script) wants whole lines."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], width: int | None = None) -> str:
    """An aligned table; given `width` (a terminal's columns), one that fits it (see `_fit`)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = _widths(cells, headers)
    if width is not None and _span(widths) > width:
        return _fit(cells, list(headers), width)
    return _grid(cells, headers, widths)


def _grid(cells: list[list[str]], headers: Sequence[str], widths: Sequence[int]) -> str:
    lines = [_line(headers, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(r, widths) for r in cells]
    return "\n".join(lines)


def _widths(cells: list[list[str]], headers: Sequence[str]) -> list[int]:
    return [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]


def _span(widths: Sequence[int]) -> int:
    return sum(widths) + 2 * (len(widths) - 1)


def _fit(cells: list[list[str]], headers: list[str], width: int) -> str:
    """A table too wide for the terminal, fitted without losing a character (issue 19: `token status`
    was 250 columns wide and wrapped into a mess at 80): the widest columns leave the table, widest
    first, and each row shows them on lines of their own below it, wrapped to the width."""
    kept = list(range(len(headers)))
    while len(kept) > 1 and _span(_widths([[r[i] for i in kept] for r in cells], [headers[i] for i in kept])) > width:
        kept.remove(max(kept, key=lambda i: max([len(headers[i])] + [len(r[i]) for r in cells])))
    moved = [i for i in range(len(headers)) if i not in kept]
    narrow = [[r[i] for i in kept] for r in cells]
    widths = _widths(narrow, [headers[i] for i in kept])
    lines = [_line([headers[i] for i in kept], widths), _line(["-" * w for w in widths], widths)]
    for row, short in zip(cells, narrow):
        lines.append(_line(short, widths)[:width])
        for i in moved:
            lines += textwrap.wrap(f"{headers[i].lower()}: {row[i]}", width=max(width, 24), initial_indent="    ",
                                   subsequent_indent="      ", break_on_hyphens=False)
    return "\n".join(lines)


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    return str(value).replace("\n", " ")


def summary(result) -> str:
    """A run's result in a few words, after its job's name (`run-job`, `history`): "" for none."""
    if not isinstance(result, dict):
        return ""
    if "rows" in result and "path" in result:
        return f": {plural(result['rows'], 'row')} written to {result['path']}"
    if isinstance(result.get("resources"), dict) and "path" in result:  # a snapshot
        files = result["resources"]
        return f": {plural(sum(files.values()), 'row')} in {plural(len(files), 'file')} at {result['path']}; {result.get('drift') or ''}".rstrip("; ")
    if "events" in result and "checkpoint" in result:  # the log archive
        return f": {plural(result['events'], 'event')} archived in {plural(result['files'], 'file')}; checkpoint {result['checkpoint']}"
    return ": " + ", ".join(f"{k}={v}" for k, v in result.items())
