"""`tenant-checks` (README, "Tenant checks: `tenant-checks`"): expiring certificates and keys, log streams
that stopped, risky settings; new and resolved findings between runs; no connection secret anywhere."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from batchrunner.findings.certificates import NotACertificate, not_after
from batchrunner.sandbox import certificates

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc)


# --- reading a certificate's expiry ---------------------------------------------------------------------

@pytest.mark.parametrize("when", [datetime(2027, 1, 5, 10, 20, 30, tzinfo=timezone.utc),
                                  datetime(2060, 3, 1, tzinfo=timezone.utc), datetime(1999, 3, 1, tzinfo=timezone.utc)])
def test_the_expiry_of_a_pem_or_bare_certificate_is_read_as_openssl_reads_it(tmp_path, when):
    der = certificates.certificate("partner", when)
    assert not_after(certificates.pem(der)) == not_after(certificates.bare(der)) == when
    if shutil.which("openssl"):
        (tmp_path / "c.pem").write_text(certificates.pem(der))
        shown = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(tmp_path / "c.pem")],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert datetime.strptime(shown, "notAfter=%b %d %H:%M:%S %Y GMT").replace(tzinfo=timezone.utc) == when


@pytest.mark.parametrize("text", ["", "not base64!", "MIIC8jCCAdqgAwIBAgIQSandboxPublicCertOnly",
                                  "-----BEGIN CERTIFICATE-----MIIC-----END CERTIFICATE-----"])
def test_text_that_is_no_certificate_is_said_so(text):
    with pytest.raises(NotACertificate):
        not_after(text)
