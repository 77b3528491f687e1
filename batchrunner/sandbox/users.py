"""The tenant's users, each a pure function of (seed, number): role and organization members and the
bulk export draw on the same people, and a million of them need no memory.

Shapes follow Auth0's user profile: `last_login` and `logins_count` are absent for a user who never
logged in, `blocked` only where set, `app_metadata` / `user_metadata` only on some users.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone

EPOCH = 1609459200  # 2021-01-01T00:00:00Z: the first user's sign-up
# Which connection a user signed up with: user i uses USER_CONNECTIONS[i % 5].
USER_CONNECTIONS = ["Username-Password-Authentication"] * 3 + ["google-oauth2", "acme-saml"]
STRATEGIES = {"Username-Password-Authentication": ("auth0", False), "google-oauth2": ("google-oauth2", True),
              "acme-saml": ("samlp", False)}
AWKWARD_NAMES = ['=HYPERLINK("http://evil.example/","x")', "+49 Support", "-Minus Person", "@handle Person",
                 "Zoë Ångström-Łukasz", 'Jane "JJ" Doe, PhD']


def connection_of(i: int) -> str:
    return USER_CONNECTIONS[i % len(USER_CONNECTIONS)]


def user_id(seed: int, i: int) -> str:
    connection = connection_of(i)
    if connection == "google-oauth2":
        return f"google-oauth2|{100000000000000000000 + seed * 1_000_003 + i * 7919}"
    if connection == "acme-saml":
        return f"samlp|acme-saml|user{i:07d}@acme.example"
    # A MongoDB ObjectId as Auth0 makes them: seconds of creation, then 8 bytes that vary.
    tail = hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).hexdigest()
    return f"auth0|{_created(i):08x}{tail}"


def user(seed: int, i: int) -> dict:
    """User number i: the profile as GET /api/v2/users/{id} would show it."""
    connection = connection_of(i)
    strategy, social = STRATEGIES[connection]
    uid = user_id(seed, i)
    email = f"user{i:07d}@acme.example" if connection == "acme-saml" else f"user{i:07d}@example.com"
    name = AWKWARD_NAMES[(i // 7) % len(AWKWARD_NAMES)] if i % 7 == 0 else f"User {i:07d}"
    created = _created(i)
    profile = {
        "user_id": uid,
        "email": email,
        "email_verified": i % 3 != 0,
        "name": name,
        "nickname": email.split("@")[0],
        "picture": f"https://s.gravatar.com/avatar/{i:032x}?s=480&r=pg&d=identicon",
        "identities": [{"connection": connection, "provider": strategy, "user_id": uid.split("|", 1)[1],
                        "isSocial": social}],
        "created_at": _iso(created),
        "updated_at": _iso(created + 3600 * (i % 500)),
    }
    if i % 4 != 0:  # a quarter never logged in
        profile["last_login"] = _iso(created + 86400 + (i * 7919) % 30_000_000)
        profile["logins_count"] = 1 + (i * 31) % 200
    if i % 23 == 0:
        profile["blocked"] = True
    if i % 6 == 0:
        profile["app_metadata"] = {"plan": "pro" if i % 12 == 0 else "free", "employee_id": f"E{i:06d}"}
        if i % 30 == 0:  # a flag users-cleanup's protect_app_metadata can name
            profile["app_metadata"]["keep"] = True
    if i % 8 == 1:
        profile["user_metadata"] = {"theme": "dark", "locale": "de-DE"}
    return profile


def member(seed: int, i: int) -> dict:
    """User i as role and organization member lists show it."""
    profile = user(seed, i)
    return {key: profile[key] for key in ("user_id", "email", "picture", "name")}


class Everyone(Sequence):
    """Users 0 to count-1 sorted by user_id (the order Auth0 pages members in), computed rather than
    held: an organization of a million members costs no memory (README, "The access snapshot",
    memory). A user_id's prefix follows its connection (auth0| < google-oauth2| < samlp|) and the
    rest grows with the number, so the order is the users of each connection in turn, by number.

    `pop()` of either end as a list's; `insert` turns it into a list first (drift tests, small)."""

    # Numbers i % 5 of each connection's users, in the order of their user_ids' prefixes.
    GROUPS = ((0, 1, 2), (3,), (4,))

    def __init__(self, count: int):
        self.start, self.stop = 0, count
        self.sizes = [sum(max(0, (count - r + 4) // 5) for r in residues) for residues in self.GROUPS]
        self.held: list[int] | None = None

    def __len__(self) -> int:
        return len(self.held) if self.held is not None else self.stop - self.start

    def __getitem__(self, index):
        if self.held is not None:
            return self.held[index]
        if isinstance(index, slice):
            return [self._number(self.start + k) for k in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._number(self.start + index)

    def pop(self, index: int = -1) -> int:
        if self.held is not None:
            return self.held.pop(index)
        value = self[index]
        if index in (0, -len(self)):
            self.start += 1
        elif index in (-1, len(self) - 1):
            self.stop -= 1
        else:
            raise IndexError("only an end can be popped")
        return value

    def insert(self, index: int, value: int) -> None:
        self.held = list(self) if self.held is None else self.held
        self.held.insert(index, value)

    def _number(self, k: int) -> int:
        for residues, size in zip(self.GROUPS, self.sizes):
            if k < size:
                return len(USER_CONNECTIONS) * (k // len(residues)) + residues[k % len(residues)]
            k -= size
        raise IndexError(k)


def _created(i: int) -> int:
    return EPOCH + i * 97


_DAYS: dict[int, str] = {}


def _iso(epoch: int) -> str:
    """ISO 8601 with milliseconds, as Auth0 writes dates; the day's text cached (a million users ask)."""
    day, second = divmod(int(epoch), 86400)
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%dT")
    hours, rest = divmod(second, 3600)
    return f"{text}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"
