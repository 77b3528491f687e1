"""The daily tenant checks: certificates and keys about to expire, log streams Auth0 stopped, risky
application settings (README, "Tenant checks: `tenant-checks`"). Read-only.

The rules are data in batchrunner/findings/rules.py, the calls in gather.py, the comparison with
the previous run, the files and the notification in report.py; the settings in settings.py.
"""

from __future__ import annotations

from batchrunner.findings import gather, report, settings  # its own pipeline, as the archive and the snapshot have theirs
from batchrunner.jobkit import job


@job("tenant-checks", schedule="15 6 * * *", params=settings.PARAMS, check=lambda env, params: settings.parse(params),
     check_table=settings.check_table,  # a named tenant's params, judged when the tenants file is read
     timeout=1800,  # a few hundred calls at most (one per private_key_jwt application); half an hour means something is stuck
     description="Check certificates and keys about to expire, paused log streams and risky settings; report what is new.")
def tenant_checks(ctx) -> dict:
    chosen = settings.check_settings(ctx)
    now = ctx.now()
    found = gather.gather(ctx.api, chosen, now, own_client=getattr(ctx.api, "client_id", ""))
    return report.publish(ctx, found, now)
