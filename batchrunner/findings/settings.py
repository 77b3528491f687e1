"""`tenant-checks`' settings, read in one place (README, "Tenant checks: `tenant-checks`").

They come from the job's params (`RUNNER_PARAMS_TENANT_CHECKS` for the default tenant, a named
tenant's `params` in its `[tenants.NAME.jobs.tenant-checks]` table, then `--param`) over the tenant's
`production` flag: `check_settings(ctx)` reads `ctx.params`, and `ctx.tenant.production` where a
context carries a tenant. `check_table` judges a named tenant's params when the tenants file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from batchrunner.errors import UsageError
from batchrunner.findings.rules import BY_ID

JOB = "tenant-checks"
PARAMS = ("disable", "warning_days", "critical_days", "trusted", "production")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclass(frozen=True)
class CheckSettings:
    disabled: frozenset[str] = frozenset()
    critical_days: float = 7
    warning_days: float = 30
    trusted: frozenset[str] = frozenset()  # client ids trusted with broad user grants
    production: bool = False


def check_settings(ctx) -> CheckSettings:
    """The run's settings: its params, over the tenant's `production` flag where the context has a tenant."""
    production = bool(getattr(getattr(ctx, "tenant", None), "production", False))
    return parse(ctx.params, production)


def parse(params: Mapping[str, str], production: bool = False, where: str = JOB) -> CheckSettings:
    """UsageError (one line naming the param and the fix, after `where`) for a value that is not understood."""
    disabled = _names(params.get("disable", ""))
    unknown = sorted(disabled - set(BY_ID))
    if unknown:
        raise UsageError(f"{where}: disable names no rule {unknown[0]!r}; the rules: {', '.join(BY_ID)}")
    critical, warning = _days(params, "critical_days", 7, where), _days(params, "warning_days", 30, where)
    if critical > warning:
        raise UsageError(f"{where}: critical_days ({critical:g}) is more than warning_days ({warning:g}); give critical_days <= warning_days")
    return CheckSettings(frozenset(disabled), critical, warning, frozenset(_names(params.get("trusted", ""))),
                         _flag(params, "production", production, where))


def check_table(settings, where: str) -> None:
    """`@job(check_table=...)`: a named tenant's `params` in its `[tenants.NAME.jobs.tenant-checks]` table,
    judged when the tenants file is read (README, "Several tenants"), not when the run starts at night."""
    parse(settings.params, where=f"{where}: params")


def _names(text: str) -> set[str]:
    return {name.strip() for name in text.split(",") if name.strip()}


def _days(params: Mapping[str, str], name: str, default: float, where: str) -> float:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
        if not 0 <= value <= 3650:
            raise ValueError
    except ValueError:
        raise UsageError(f"{where}: {name}={text!r} is not a number of days from 0 to 3650, e.g. {name}={default:g}") from None
    return value


def _flag(params: Mapping[str, str], name: str, default: bool, where: str) -> bool:
    text = params.get(name, "").strip().lower()
    if not text:
        return default
    if text not in TRUE + FALSE:
        raise UsageError(f"{where}: {name}={params[name]!r} is neither true nor false")
    return text in TRUE
