"""A certificate's expiry (notAfter) read from its DER bytes, without a cryptography library.

Auth0 hands out certificates as PEM (signing keys) or as bare base64 DER (a SAML connection's
`options.signingCert`). Only the validity is read: X.509's TBSCertificate is a SEQUENCE of
[0] version (optional), serial, signature algorithm, issuer, validity {notBefore, notAfter}, ...
(RFC 5280, 4.1). The standard library's ssl._ssl._test_decode_cert would need a file and a
private API; a few lines of DER reading need neither, and no runtime dependency is added.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

SEQUENCE, CONTEXT_0, UTC_TIME, GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18
_ARMOUR = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]+-----")


class NotACertificate(ValueError):
    """The text is no X.509 certificate this reader understands."""


def not_after(text: str) -> datetime:
    """The certificate's notAfter (UTC) from PEM or bare base64 DER text; NotACertificate otherwise."""
    der = _der(text)
    certificate, _ = _element(der, 0, SEQUENCE)
    tbs, _ = _element(certificate, 0, SEQUENCE)
    at = 0
    if tbs[:1] == bytes([CONTEXT_0]):  # an explicit version
        at = _skip(tbs, at)
    for _ in range(3):  # serial number, signature algorithm, issuer
        at = _skip(tbs, at)
    validity, _ = _element(tbs, at, SEQUENCE)
    after = _skip(validity, 0)
    tag = validity[after] if after < len(validity) else None
    value, _ = _element(validity, after, tag)
    return _time(tag, value.decode("ascii", "replace"))


def _der(text: str) -> bytes:
    body = _ARMOUR.sub("", text or "")
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise NotACertificate("not base64") from None


def _header(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, length) of the element at `at`."""
    if at + 2 > len(data):
        raise NotACertificate("truncated")
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or at + count > len(data):
            raise NotACertificate("bad length")
        length, at = int.from_bytes(data[at:at + count], "big"), at + count
    if at + length > len(data):
        raise NotACertificate("truncated")
    return tag, at, length


def _element(data: bytes, at: int, tag: int | None) -> tuple[bytes, int]:
    found, start, length = _header(data, at)
    if found != tag:
        raise NotACertificate(f"expected tag {tag}, found {found}")
    return data[start:start + length], start + length


def _skip(data: bytes, at: int) -> int:
    _, start, length = _header(data, at)
    return start + length


def _time(tag: int | None, text: str) -> datetime:
    try:
        if tag == UTC_TIME:  # YYMMDDHHMMSSZ; years 50-99 are 19xx (RFC 5280, 4.1.2.5.1)
            year = int(text[:2])
            text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
        elif tag != GENERALIZED_TIME:
            raise ValueError
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise NotACertificate(f"unreadable time {text!r}") from None
