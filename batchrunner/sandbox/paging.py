"""Auth0's two kinds of list paging, once for every list endpoint of the stand-in.

Offset: `page` (from 0), `per_page` (default 50, at most 100), `include_totals` (an object
`{start, limit, total, KEY}` instead of a bare array). Where Auth0 caps offset paging at 1,000
records it refuses any page with `page * per_page + per_page > 1000`, whatever the true count
(Auth0 support article "Unable to paginate more than 1000 records when getting user roles").
Checkpoint: `from` (an opaque `next` from the previous answer; omitted at first), `take`
(default 50, at most 100); the answer is `{KEY: [...], "next": ...}`, `next` left out on the last page.
"""

from __future__ import annotations

import base64
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, Sequence

from .tenant import Reply, _api_error, _select_fields

OFFSET_WALL = 1000
MAX_PER_PAGE = 100


@dataclass
class Listing:
    """How one endpoint lists: the body's key, whether it has checkpoint paging, whether offset stops at 1,000."""

    key: str
    checkpoint: bool = False
    wall: bool = False


def bad_query(message: str) -> Reply:
    return Reply(400, _api_error(400, "Bad Request", message, "invalid_query_string"))


def list_reply(listing: Listing, query: dict, items: Sequence, sort_key: Callable, render: Callable = lambda x: x) -> Reply:
    """A page of `items` (sorted by `sort_key`) as Auth0 answers `query`; `render` turns an item into its JSON."""
    if listing.checkpoint and ("from" in query or "take" in query):
        return _checkpoint(listing, query, items, sort_key, render)
    return _offset(listing, query, items, render)


def _integer(query: dict, name: str, default: int, low: int, high: int | None) -> int | Reply:
    raw = query.get(name, "")
    try:
        value = int(raw) if raw != "" else default
    except ValueError:
        return bad_query(f"Query validation error: 'Expected type integer but found type string' on property {name}")
    if value < low or (high is not None and value > high):
        return bad_query(f"Query validation error: 'Invalid value \"{raw}\" for parameter \"{name}\"'")
    return value


def _offset(listing: Listing, query: dict, items: Sequence, render: Callable) -> Reply:
    page = _integer(query, "page", 0, 0, None)
    per_page = _integer(query, "per_page", 50, 1, MAX_PER_PAGE)
    for value in (page, per_page):
        if isinstance(value, Reply):
            return value
    if listing.wall and page * per_page + per_page > OFFSET_WALL:
        return Reply(400, _api_error(400, "Bad Request",
                                     f"Requesting page {page} exceeds the allowed maximum of {OFFSET_WALL} records. "
                                     "To fetch results beyond 1000, use the checkpoint pagination method.",
                                     "invalid_paging"))
    start = page * per_page
    chosen = [_select_fields(render(item), query) for item in items[start:start + per_page]]
    if query.get("include_totals", "").lower() == "true":
        return Reply(200, {"start": start, "limit": per_page, "total": len(items), listing.key: chosen})
    return Reply(200, chosen)


def _checkpoint(listing: Listing, query: dict, items: Sequence, sort_key: Callable, render: Callable) -> Reply:
    take = _integer(query, "take", 50, 1, MAX_PER_PAGE)
    if isinstance(take, Reply):
        return take
    start = 0
    if query.get("from"):
        after = decode_next(query["from"])
        if after is None:
            return bad_query("Query validation error: 'Invalid value for parameter \"from\"'")
        start = bisect_right(items, after, key=sort_key)
    chosen = items[start:start + take]
    body = {listing.key: [_select_fields(render(item), query) for item in chosen]}
    if start + take < len(items):
        body["next"] = encode_next(sort_key(chosen[-1]))
    return Reply(200, body)


def encode_next(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_next(text: str) -> str | None:
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True).decode()
        return key or None
    except (ValueError, UnicodeDecodeError):
        return None
