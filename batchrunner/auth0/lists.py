"""The Management API's lists behind one iterator (README, "Write your own job").

A list is declared once as data: its endpoint, the key its items come under, how it pages and the
scopes Auth0 accepts for it. `items(api, listing)` yields every item in order with flat memory:

- **offset** (`page`/`per_page`, `include_totals`): pages fetched concurrently within the tenant's
  rate limit and checked against `total` (ManagementApi.paginate). Auth0 refuses offset paging past
  1,000 records on several endpoints (`400 invalid_paging`); that refusal becomes one line naming
  the limit, never a silently short list.
- **checkpoint** (`from`/`take`): follows `next` in the body, or a `Link: <...>; rel="next"` header,
  until a batch comes back empty or no `next` is given. A short batch is not the end: some tenants
  cap `take` lower than asked.

Use checkpoint paging wherever an endpoint has it (role and organization members, organizations,
connections, client grants, logs): it has no 1,000-record wall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping
from urllib.parse import quote

from batchrunner.errors import ApiError

OFFSET = "offset"
CHECKPOINT = "checkpoint"
OFFSET_WALL = 1000  # records Auth0 lets offset paging reach on the endpoints that cap it
TAKE = 100  # the Management API's maximum batch


@dataclass(frozen=True)
class Listing:
    path: str  # under /api/v2/, with {id} for a parent's id: "roles/{id}/users"
    key: str | None  # the items' key in the body; None when the body is the array itself (logs)
    paging: str  # OFFSET or CHECKPOINT
    scopes: tuple[str, ...]  # Auth0 accepts any one of them for this endpoint
    params: Mapping[str, str] = field(default_factory=dict)
    unique: str | None = None  # the field that identifies an item (offset: notices shifted pages)

    def resolve(self, **ids: str) -> str:
        return self.path.format(**{name: quote(str(value), safe="") for name, value in ids.items()})


def items(api, listing: Listing, params: Mapping[str, str] | None = None, progress=None, **ids: str) -> Iterator[dict]:
    """Every item of `listing` (for the parent named by `ids`), in the API's order.

    `progress` (a progress.Progress status line) follows an offset list's pages.
    """
    path = listing.resolve(**ids)
    query = {**listing.params, **(params or {})}
    if listing.paging == OFFSET:
        return _offset(api, path, listing, query, progress)
    if listing.paging == CHECKPOINT:
        return checkpoint(api, path, listing.key, query)
    raise ValueError(f"unknown paging {listing.paging!r} for {listing.path}")


def _offset(api, path: str, listing: Listing, query: dict, progress) -> Iterator[dict]:
    try:
        yield from api.paginate(path, listing.key, query, unique=listing.unique, progress=progress)
    except ApiError as exc:
        if exc.code == "invalid_paging":
            raise ApiError(
                f"GET /api/v2/{path} stops at {OFFSET_WALL:,} records with offset paging (Auth0's invalid_paging) "
                "and this endpoint has no checkpoint paging; the list would be incomplete, so the run fails"
            ) from None
        raise


def checkpoint(api, path: str, key: str | None, query: Mapping[str, str], take: int = TAKE) -> Iterator[dict]:
    """Checkpoint paging from `query["from"]` (or the start): every item until the list runs out."""
    reply = api.request("GET", path, {**query, "take": take})
    while True:
        batch = _batch(reply.body, key, path)
        if not batch:
            return
        yield from batch
        following = reply.body.get("next") if isinstance(reply.body, dict) else None
        if following:
            reply = api.request("GET", path, {**query, "take": take, "from": following})
        elif reply.next_url:
            reply = api.follow(reply.next_url)
        else:
            return


def _batch(body, key: str | None, path: str) -> list:
    found = body if key is None else (body.get(key) if isinstance(body, dict) else None)
    if found is None and isinstance(body, dict) and key is not None and "next" not in body:
        found = []  # an empty last page may leave the key out
    if not isinstance(found, list):
        raise ApiError(f"GET /api/v2/{path} answered without a list of {key or 'items'}; is AUTH0_DOMAIN an Auth0 tenant?")
    return found
