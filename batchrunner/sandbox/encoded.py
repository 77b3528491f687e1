"""The applications' JSON, encoded once per tenant: GET /api/v2/clients answers a page by joining
each listed application's bytes rather than making, trimming and encoding every application again.
The stand-in shares the machine with the runner it stands in for (README, "The stand-in tenant"), and a
page of 100 applications cost it more CPU than the runner spent reading it.

An application is a function of the tenant's seed, its number and whether keys are shown
(tenant.py), and that is what an entry is keyed by: setting the count, creating one at the front or
resetting the tenant lists other numbers, never changes what a number holds, so no entry goes stale.
"""

from __future__ import annotations

import json
from typing import Callable, Hashable


class JsonBytes(bytes):
    """A body already encoded, as json.dumps would (its default separators, ASCII): the server
    sends it as it is; `value()` decodes it for whoever wants the answer as data (a transcript)."""

    def value(self) -> object:
        return json.loads(self)


Selection = tuple[frozenset, bool]  # the `fields` asked, and whether they are kept (else left out)


def selection(query: dict) -> Selection | None:
    """What `fields` and `include_fields` ask, as `_select_fields` reads them; None: every field."""
    fields = frozenset(f for f in query.get("fields", "").split(",") if f)
    if not fields:
        return None
    return fields, query.get("include_fields", "true").lower() != "false"


class EncodedApplications:
    """Per key: the whole application encoded, and its field names (one set shared by every
    application with the same ones). A selection that keeps every field the application has is the
    whole bytes as they are; one that drops some is made from the application and kept too."""

    def __init__(self):
        self._whole: dict[Hashable, tuple[bytes, frozenset]] = {}
        self._names: dict[frozenset, frozenset] = {}
        self._trimmed: dict[tuple[Hashable, Selection], bytes] = {}

    def encoded(self, key: Hashable, make: Callable[[Hashable], dict], chosen: Selection | None) -> bytes:
        """The application `make(key)` makes, encoded with the fields `chosen`."""
        # No lock: two threads missing the same key at once both encode it, and store the same bytes.
        found = self._whole.get(key)
        if found is None:
            found = self._whole[key] = self._encode(make(key))
        whole, names = found
        if chosen is None:
            return whole
        fields, keep = chosen
        if (names <= fields) if keep else names.isdisjoint(fields):
            return whole
        trimmed = self._trimmed.get((key, chosen))
        if trimmed is None:
            app = make(key)
            trimmed = self._trimmed[(key, chosen)] = json.dumps({k: v for k, v in app.items() if (k in fields) == keep}).encode()
        return trimmed

    def _encode(self, app: dict) -> tuple[bytes, frozenset]:
        names = frozenset(app)
        return json.dumps(app).encode(), self._names.setdefault(names, names)


def page(items: list[bytes], totals: tuple[int, int, int] | None, key: str) -> JsonBytes:
    """The list as json.dumps writes it; with `totals` (start, limit, total) inside Auth0's object."""
    # One join into the answer: a list joined first and then copied into it kept two 100 KB buffers
    # alive at once, which cost the allocator 25 times the copying.
    if totals is None:
        return JsonBytes(b"".join((b"[", b", ".join(items), b"]")))
    start, limit, total = totals
    head = b'{"start": %d, "limit": %d, "total": %d, "%s": [' % (start, limit, total, key.encode())
    return JsonBytes(b"".join((head, b", ".join(items), b"]}")))
