"""Real X.509 certificates for the stand-in tenant, valid until a chosen moment: a SAML partner's
signing certificate, a custom domain's, the tenant's signing keys. Self-signed with the fixed RSA key
below, DER built by hand (the runner adds no cryptography library for its stand-in); `openssl x509`
reads them. The key signs nothing else: it is a test key, published here on purpose.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

# A 2048-bit RSA key made once with `openssl genrsa` for the stand-in, no secret of anyone's.
MODULUS = int(
    'ccdea791cb086f139ac605882f211d80c873fcc464817e82f856e4795dce11a1cd31fe96d785754fa66b08473a4fb54e'
    '1a50c6f997e07d410aea8a661a79e7f8be0a083c23f4ea9dcb0dfdcccae1e18a600133a9f290b2e9ecae6691f5370d49'
    'f7a58c009e54f90dc56799b37b94a753e8e26ae1a3fe185a3955957030d4d46847b50c5abb4053c8aff4d77e8d503222'
    '41d0f5de79da93ba7636bee2af748267c363bffcf04c1c7f1782d12d323ffac770229e019bbabdea6241835e7fcf95c5'
    '3c64a85352f1a63362f6e784cb041aebe7d1add56b599513c26f972c2bb99756945f08c405ef78f91a88c6510c899c60'
    'cbab06f43922bd20b1e03e4e629e11a9', 16)
PRIVATE_EXPONENT = int(
    '568cce103acd4257eef02f901c110a6cc8c2af8bacc6445342653b3ac6d572ff7f37dacd911991b8e79e9a2db545cd5b'
    'c4a4519b4a7d8d8cf7f6a4278491f1dd5533d9ccc68806c248f18d428287b1080b8d166d7acb84ba6cc23514fe9a9663'
    'a45aeceda9f64e0d7253554ccd2dbd0f26f8d89ca0f28d0938e59e2f7a81bf85d8566db6296b896933c771f136979392'
    '4f9008af29e4e278d24506487f41ae507c88f7c26ddf58f87a08f1ddb811917b7253ec73ce7040b717dbbdece9ac2e73'
    'ba2a85d8215063f164b3901d65be05b95d250d67f0c5437516b88d7d24c1859a951973f9b9ec05120e216b924665083d'
    '9f0739a8ec57a67b4c01c5f557307a9d', 16)
EXPONENT = 65537
SHA256_RSA = "1.2.840.113549.1.1.11"
RSA = "1.2.840.113549.1.1.1"
COMMON_NAME = "2.5.4.3"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def certificate(common_name: str, not_after: datetime, not_before: datetime | None = None, serial: int = 1) -> bytes:
    """A self-signed certificate's DER bytes."""
    algorithm = _seq(_oid(SHA256_RSA), b"\x05\x00")
    name = _seq(_tlv(0x31, _seq(_oid(COMMON_NAME), _tlv(0x0C, common_name.encode()))))
    start = not_before or datetime(2020, 1, 1, tzinfo=timezone.utc)
    validity = _seq(_time(start), _time(not_after))
    public = _seq(_seq(_oid(RSA), b"\x05\x00"), _tlv(0x03, b"\x00" + _seq(_int(MODULUS), _int(EXPONENT))))
    tbs = _seq(_tlv(0xA0, _int(2)), _int(serial), algorithm, name, validity, name, public)
    return _seq(tbs, algorithm, _tlv(0x03, b"\x00" + _sign(tbs)))


def pem(der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\r\n" + "\r\n".join(lines) + "\r\n-----END CERTIFICATE-----"


def bare(der: bytes) -> str:
    """Base64 DER without the armour, as Auth0 keeps a SAML connection's `signingCert`."""
    return base64.b64encode(der).decode()


def _sign(data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2)."""
    size = (MODULUS.bit_length() + 7) // 8
    digest = SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
    encoded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return pow(int.from_bytes(encoded, "big"), PRIVATE_EXPONENT, MODULUS).to_bytes(size, "big")


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    numbers = [int(p) for p in dotted.split(".")]
    body = bytes([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        while number > 0x7F:
            number >>= 7
            chunk.insert(0, 0x80 | (number & 0x7F))
        body += bytes(chunk)
    return _tlv(0x06, body)


def _time(moment: datetime) -> bytes:
    """UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280, 4.1.2.5)."""
    moment = moment.astimezone(timezone.utc)
    if moment.year < 2050:
        return _tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())
