"""What `tenant-checks` finds (README, "Tenant checks: `tenant-checks`"): certificates and keys about to
expire, log streams that stopped, and risky settings, each a finding with a rule id, a severity, a
one-line reason and the fix."""
