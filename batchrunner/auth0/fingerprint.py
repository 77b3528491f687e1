"""A cached token is used only with the client secret it was issued for (README "Tokens").

Beside the cached token the database keeps a fingerprint of the secret: a slow, salted hash, never
the secret (README "Configuration": secrets never appear in the database). Why scrypt with a salt
of the row's own rather than HMAC-SHA256: an HMAC needs a key kept apart from the database, and
every host that shares the database would need the same one, a second secret to deploy. A fast
hash without such a key would let anyone holding a copy of the database (a backup, a dump) try
guesses at a billion a second, which matters for a secret a person typed or chose. scrypt at
N=2^12, r=8 (4 MiB, about 15 ms) makes each guess that costly, and the salt makes each row its
own work; a process checks a row once (`matches` remembers, for as many rows as a `serve` of
many tenants holds, and a fingerprint this process made is known to match without a second hash).
Why not more: that check sits before every `run-job`'s first request and in every `token print`,
and at 2^14 (60 ms) it was most of the 50 ms those gained (bench/tokens.py: 355 against 307 ms to
the first request); a secret Auth0 generated (64 random characters) is beyond guessing at any cost.
The parameters are stored with the hash, so rows made at 2^14 still match, and they can be raised
later without a migration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading

SCHEME = "scrypt"
N, R, P = 2**12, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_N = 2**17  # the most a stored fingerprint may ask for: 128 MiB at r=8
# Rows whose check is remembered: one per tenant and audience. With 16, a `serve` of 100 tenants
# hashed again at each run, 12 to 24 ms of its CPU a run (README, "Several tenants").
KNOWN_ROWS = 4096

_known: dict[tuple[str, str], bool] = {}  # (secret, stored fingerprint) -> whether it matches
_known_lock = threading.Lock()


def fingerprint(secret: str) -> str:
    """`scrypt$N$r$p$SALT$HASH` (base64) of `secret`, with a new random salt."""
    salt = os.urandom(SALT_BYTES)
    stored = _format(N, R, P, salt, _derive(secret, salt, N, R, P))
    _remember((secret, stored), True)  # the row this process writes is checked when read back
    return stored


def matches(secret: str, stored: str | None) -> bool:
    """Whether `stored` is a fingerprint of `secret`; False for none (a row cached before fingerprints)
    or one this version cannot read."""
    key = (secret, stored or "")
    known = _known.get(key)
    if known is None:
        known = _matches(secret, stored or "")
        _remember(key, known)
    return known


def _remember(key: tuple[str, str], matched: bool) -> None:
    with _known_lock:
        if len(_known) >= KNOWN_ROWS:
            _known.pop(next(iter(_known)))  # the oldest: rows are replaced, not revisited
        _known[key] = matched


def _matches(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        n, r, p = int(n), int(r), int(p)
        if not (2 <= n <= MAX_N and 1 <= r <= 32 and 1 <= p <= 16):  # a damaged row must not cost gigabytes
            return False
        salt, digest = base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
        derived = _derive(secret, salt, n, r, p)
    except (ValueError, OverflowError, MemoryError):  # damaged or absurd parameters: not a match
        return False
    return hmac.compare_digest(derived, digest)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem: what these parameters need (128 * n * r bytes) and a little more; OpenSSL's default is 32 MiB.
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=256 * n * r + 2**20)


def _format(n: int, r: int, p: int, salt: bytes, digest: bytes) -> str:
    return "$".join([SCHEME, str(n), str(r), str(p), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])
