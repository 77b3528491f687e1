"""Tenants (README, "Several tenants"): who the runner works for, by name.

Without `RUNNER_TENANTS_FILE` there is one tenant, `default`, made of the AUTH0_* variables, and
everything is where it was: its runs, checkpoints and exports are those of the release before.
With it, the file (TOML, read with `tomllib`) names each tenant:

    [tenants.prod]
    domain = "acme.eu.auth0.com"
    client_id = "..."
    client_secret_file = "/etc/runner/prod.secret"   # or client_secret_env = "VARIABLE"
    jobs = ["export-clients", "export-logs"]          # optional: default every job

The file is checked whole when it is read (one line, exit 2, for a malformed file, a bad name, an
unknown key); given the registry, each job's table too, by the job (`check_jobs`: the keys it
declares with `@job(table_keys=...)`, its params, its `check_table`); a tenant's secret is read only
when one of its runs needs it (`Tenant.credentials()`), so a tenant whose secret file is missing
fails its own runs, never the others'.

What keys what: runs, job state and locks are per (job, tenant NAME); the token cache, the token
ledger and the rate-limit memory are per tenant DOMAIN (its base URL), as before: a token and a
rate limit belong to the Auth0 tenant behind the name, whichever name reaches it.

The model, for the code that uses it:
- `load_tenants(env, jobs)` -> {name: Tenant}, in the file's order; `default_tenant(env)` the AUTH0_* one;
  `pick(tenants, --tenant, job)` the tenants a command means (UsageError for an unknown name, or for
  a job several tenants run without --tenant).
- `Tenant.credentials()` reads the secret (ConfigError naming the tenant); `.export_dir(root)` where
  its outputs go; `.runs(job)` whether the job runs for it; `.settings_for(job)` its JobSettings.
- A run carries its Tenant (`RunRequest.tenant`, `ctx.tenant`); the tables carry its name
  (`runs.tenant`, `job_state.tenant`, `pruned_runs.tenant`; migrations/versions/0008_tenants.py).
- A (job, tenant)'s schedule: `runs.schedules.for_tenant`; its params: `runs.params.for_tenant`;
  its time limit: `runs.execute._timeout`.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from batchrunner.config import SECRET_CREDENTIAL_NAME, Credentials, _checked_secret, _read_secret, load_credentials, parse_domain
from batchrunner.errors import ConfigError, RunnerError, UsageError

VARIABLE = "RUNNER_TENANTS_FILE"
DEFAULT = "default"  # the tenant of the AUTH0_* variables, and of every row written before tenants existed
ALL = "all"  # `--tenant all`: not a name a tenant may have
# Nor the folders the bundled jobs keep in the export folder: a named tenant's folder sits beside them.
RESERVED = {ALL: "is kept for --tenant all", "logs": "is the log archive's folder", "snapshots": "is the snapshots' folder",
            "checks": "is the tenant checks' folder", "users-cleanup": "is the user clean-up's folder"}
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # the database's tenant columns hold 64 characters
SECRET_KEYS = ("client_secret", "client_secret_file", "client_secret_env")
TENANT_KEYS = ("domain", "client_id", *SECRET_KEYS, "audience", "rate_limits", "jobs", "production")
RATE_LIMITS = ("global", "endpoint")
OFF = ("off", "none", "0")
JOB_KEYS = ("schedule", "timeout", "params")  # a job's table: the runner's keys; the others are the job's own (JobSettings.extra)


@dataclass(frozen=True)
class JobSettings:
    """A job's settings for one tenant (`[tenants.NAME.jobs.JOB]`); None: the job's own."""

    schedule: str | None = None
    timeout: float | str | None = None  # seconds, or "off" for no limit
    params: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other keys, for the job itself to read

    def timeout_seconds(self, default: float | None) -> float | None:
        if self.timeout is None:
            return default
        return None if self.timeout == "off" else float(self.timeout)


@dataclass(frozen=True)
class Secret:
    """Where a tenant's client secret is: a file, an environment variable, a systemd credential, or
    (in a file its owner alone may read) the tenants file itself. Read by `Tenant.credentials()`."""

    kind: str  # "file", "env", "credential", "literal"
    where: str  # the path, the variable, the credential's name, or the tenants file
    literal: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Tenant:
    name: str
    domain: str | None  # the base URL (https://acme.eu.auth0.com); None for `default` before AUTH0_DOMAIN is read
    client_id: str | None
    audience: str | None = None  # None: {domain}/api/v2/
    secret: Secret | None = None  # None: `default`, whose secret is AUTH0_CLIENT_SECRET and its kin
    rate_limits: str | None = None  # None: RUNNER_RATE_LIMITS
    jobs: tuple[str, ...] | None = None  # the jobs run for it; None: every job
    jobs_settings: dict[str, JobSettings] = field(default_factory=dict)
    production: bool = False  # for jobs that write: they may ask for more care (README, "Several tenants")
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_default(self) -> bool:
        """The AUTH0_* tenant: its outputs stay at the top of the export folder, as before tenants."""
        return self.name == DEFAULT

    def runs(self, job: str) -> bool:
        return self.jobs is None or job in self.jobs

    def settings_for(self, job: str) -> JobSettings:
        return self.jobs_settings.get(job, JobSettings())

    def export_dir(self, root: Path) -> Path:
        """Where this tenant's outputs go: the export folder itself for `default`, else a folder of its name."""
        return root if self.is_default else root / self.name

    def credentials(self) -> Credentials:
        """The tenant's credentials, its secret read now; ConfigError naming this tenant when it cannot be."""
        if self.secret is None:
            return load_credentials(self.env)
        secret = _read(self)
        return Credentials(self.domain, self.client_id, secret, self.audience or f"{self.domain}/api/v2/",
                           where=f"tenant {self.name} in {VARIABLE}")


def load_tenants(env: Mapping[str, str] | None = None, jobs: Mapping[str, Any] | None = None) -> dict[str, Tenant]:
    """Every tenant by name, in the file's order; `jobs` (the registry), when given, checks the job names."""
    env = os.environ if env is None else env
    path = env.get(VARIABLE, "").strip()
    if not path:
        return {DEFAULT: _default(env)}
    file = Path(path)
    data = _parse(file)
    unknown = sorted(set(data) - {"tenants"})
    if unknown:
        raise ConfigError(VARIABLE, f"{file}: unknown key {unknown[0]!r} at the top; the file holds [tenants.NAME] tables")
    tables = data.get("tenants")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(VARIABLE, f"{file} names no tenant; add a [tenants.NAME] table with domain, client_id and the secret's reference")
    owner_only = _owner_only(file)
    found = {name: _tenant(file, name, table, env, owner_only) for name, table in tables.items()}
    if jobs is not None:
        check_jobs(found, jobs, file)
    return found


def names_in(path: str) -> list[str]:
    """The tenant names in the file, best-effort (none for a file that cannot be read): for warnings;
    `load_tenants` says what is wrong with the file."""
    try:
        tables = _parse(Path(path)).get("tenants")
    except ConfigError:
        return []
    return list(tables) if isinstance(tables, dict) else []


def default_tenant(env: Mapping[str, str]) -> Tenant:
    """The tenant of a run that names none: `default`, made of the AUTH0_* variables."""
    return _default(env)


def check_jobs(tenants: Mapping[str, Tenant], jobs: Mapping[str, Any], file: Path | str | None = None) -> None:
    """ConfigError for a job named in the tenants file that is not registered (a typo would be ignored),
    and for a job's table holding a key the job does not take or a value its check refuses
    (`@job(table_keys=..., check_table=...)`): found when the file is read, not at 2 a.m."""
    for tenant in tenants.values():
        for name in [*(tenant.jobs or ()), *tenant.jobs_settings]:
            if name not in jobs:
                raise ConfigError(VARIABLE, f"tenant {tenant.name}: no job is named {name!r}; registered jobs: {', '.join(jobs) or 'none'}")
        for name, settings in tenant.jobs_settings.items():
            _check_table(jobs[name], settings, f"[tenants.{tenant.name}.jobs.{name}]", file or tenant.env.get(VARIABLE, ""))


def _check_table(job: Any, settings: JobSettings, where: str, file: Path | str) -> None:
    """The job's own keys in its table (README, "Several tenants"): one line naming the file, the table and the key."""
    def bad(problem: str) -> ConfigError:
        return ConfigError(VARIABLE, f"{file}, {where}: {problem}")

    if job is None:  # a registry of names only: nothing to judge the table by
        return
    takes = job.table_keys
    unknown = sorted(set(settings.extra) - set(takes)) if takes is not None else []
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; the keys of this table: {', '.join((*JOB_KEYS, *takes))}")
    problem = job.unknown_param(settings.params)
    if problem:
        raise bad(f"params: {problem}")
    if job.check_table is None:
        return
    try:
        job.check_table(settings, where)
    except Exception as exc:  # ConfigError(where, problem) as a rule; any other error in its own words, never a traceback
        text = str(exc) if isinstance(exc, (RunnerError, ValueError)) else f"{type(exc).__name__}: {exc}"
        raise bad(text[len(where):].lstrip(": ") if text.startswith(where) else text) from None


def pick(tenants: Mapping[str, Tenant], name: str | None, job: str | None = None) -> list[Tenant]:
    """The tenants `--tenant NAME|all` means (None: every tenant, or every tenant running `job`).

    UsageError for an unknown name, or for a job run for several tenants without --tenant.
    """
    if name is None or name == ALL:
        chosen = [t for t in tenants.values() if job is None or t.runs(job)]
        if name is None and job is not None and len(chosen) > 1:
            raise UsageError(f"{job} runs for several tenants ({', '.join(t.name for t in chosen)}); "
                             f"give --tenant NAME, or --tenant all for each in turn")
        return chosen
    if name not in tenants:
        raise UsageError(f"unknown tenant {name!r}; the tenants: {', '.join(tenants)} (see {VARIABLE})")
    return [tenants[name]]


def _default(env: Mapping[str, str]) -> Tenant:
    """The AUTH0_* tenant; nothing is checked here: a command that calls Auth0 calls credentials()."""
    domain = env.get("AUTH0_DOMAIN", "").strip()
    try:
        base_url = parse_domain(domain) if domain else None
    except ConfigError:
        base_url = None  # credentials() says what is wrong, to the commands that need it
    return Tenant(DEFAULT, base_url, env.get("AUTH0_CLIENT_ID", "").strip() or None, env=env)


def _parse(file: Path) -> dict:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(VARIABLE, f"cannot read {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        if "twice" in text or "overwrite" in text.lower():
            text += "; each tenant (and each of its jobs) is named once"
        raise ConfigError(VARIABLE, f"{file} is not valid TOML: {text}") from None
    except UnicodeDecodeError:
        raise ConfigError(VARIABLE, f"{file} is not UTF-8 text") from None


def _owner_only(file: Path) -> bool:
    return stat.S_IMODE(file.stat().st_mode) & 0o077 == 0


def _tenant(file: Path, name: str, table: Any, env: Mapping[str, str], owner_only: bool) -> Tenant:
    def bad(problem: str) -> ConfigError:
        return ConfigError(VARIABLE, f"{file}, tenant {name}: {problem}")

    if not NAME.match(name) or name in RESERVED:
        reason = RESERVED.get(name) or "use lower-case letters, digits and '-', starting with a letter or digit, at most 64"
        raise ConfigError(VARIABLE, f"{file}: the tenant name {name!r} {reason}")
    if not isinstance(table, dict):
        raise bad("is not a table; write [tenants." + name + "] with domain, client_id and the secret's reference")
    unknown = sorted(set(table) - set(TENANT_KEYS))
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; the keys of a tenant: {', '.join(TENANT_KEYS)}")
    for key in ("domain", "client_id"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise bad(f"{key} is missing; give it as a string")
    try:
        domain = parse_domain(table["domain"])
    except ConfigError as exc:
        raise bad(f"domain {exc.problem.split(';')[0]}") from None
    if any(c.isspace() for c in table["client_id"].strip()):
        raise bad("client_id contains white space; paste the Client ID from the application's settings")
    return Tenant(
        name=name,
        domain=domain,
        client_id=table["client_id"].strip(),
        audience=_string(table, "audience", bad),
        secret=_secret(file, name, table, bad, owner_only),
        rate_limits=_choice(table, "rate_limits", RATE_LIMITS, bad),
        jobs=_job_list(table.get("jobs"), bad),
        jobs_settings=_job_tables(table.get("jobs"), bad),
        production=_flag(table, "production", bad),
        env=env,
    )


def _secret(file: Path, name: str, table: dict, bad, owner_only: bool) -> Secret:
    given = [key for key in SECRET_KEYS if key in table]
    if len(given) > 1:
        raise bad(f"both {given[0]} and {given[1]} are set; keep one")
    if not given:
        return Secret("credential", f"{SECRET_CREDENTIAL_NAME}_{name}")
    key = given[0]
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{key} is empty; give it as a string")
    if key == "client_secret":
        if not owner_only:
            raise bad(f"a client_secret written in {file} that others may read; use client_secret_file or client_secret_env, "
                      f"or chmod 600 {file}")
        return Secret("literal", str(file), value)
    return Secret("file" if key == "client_secret_file" else "env", value.strip())


def _read(tenant: Tenant) -> str:
    """The tenant's secret, read now; ConfigError naming the tenant and where the secret was looked for."""
    ref = tenant.secret
    label = f"{VARIABLE} tenant {tenant.name}"
    if ref.kind == "literal":
        return _checked_secret(ref.literal, f"{label}: client_secret")
    if ref.kind == "env":
        value = tenant.env.get(ref.where, "")
        if value == "":
            raise ConfigError(label, f"client_secret_env names {ref.where}, which is not set; set it to the client secret")
        return _checked_secret(value, f"{label}: {ref.where}")
    if ref.kind == "credential":
        folder = tenant.env.get("CREDENTIALS_DIRECTORY", "")
        path = Path(folder) / ref.where if folder else None
        if path is None or not path.exists():
            raise ConfigError(label, f"no client secret: set client_secret_file or client_secret_env, or give the systemd credential {ref.where}")
        return _checked_secret(_read_secret(path, f"{label}: {ref.where}"), f"{label}: {ref.where}")
    path = Path(ref.where)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(label, f"client_secret_file {path}: {exc.strerror}; give the path of a file holding the secret") from None
    if mode & 0o004:
        raise ConfigError(label, f"client_secret_file {path} may be read by every user; chmod o-r {path}")
    return _checked_secret(_read_secret(path, f"{label}: client_secret_file"), f"{label}: client_secret_file")


def _string(table: dict, key: str, bad) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{key} is not a string")
    return value.strip()


def _choice(table: dict, key: str, choices: tuple[str, ...], bad) -> str | None:
    value = _string(table, key, bad)
    if value is not None and value not in choices:
        raise bad(f"{key} {value!r} is none of {', '.join(choices)}")
    return value


def _flag(table: dict, key: str, bad) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise bad(f"{key} is true or false, not {value!r}")
    return value


def _job_list(value: Any, bad) -> tuple[str, ...] | None:
    """`jobs = [...]`: only these run for the tenant. Per-job tables (`[tenants.NAME.jobs.JOB]`) leave every job on."""
    if value is None or isinstance(value, dict):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad("jobs is a list of job names, e.g. jobs = [\"export-clients\"], or [tenants.NAME.jobs.JOB] tables")
    return tuple(value)


def _job_tables(value: Any, bad) -> dict[str, JobSettings]:
    if not isinstance(value, dict):
        return {}
    return {job: _job_settings(job, table, bad) for job, table in value.items()}


def _job_settings(job: str, table: Any, bad) -> JobSettings:
    if not isinstance(table, dict):
        raise bad(f"jobs.{job} is not a table; write [tenants.NAME.jobs.{job}] with schedule, timeout or params")
    schedule = _string(table, "schedule", lambda p: bad(f"jobs.{job}: {p}"))
    timeout = table.get("timeout")
    if isinstance(timeout, str) and timeout.strip().lower() in OFF:
        timeout = "off"
    elif timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 10**7):
        raise bad(f"jobs.{job}: timeout {timeout!r} is not a number of seconds; give e.g. 3600, or \"off\" for no limit")
    params = table.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, (str, int, float, bool)) for v in params.values()):
        raise bad(f"jobs.{job}: params is a table of KEY = VALUE, e.g. params = {{ role = \"rol_123\" }}")
    extra = {k: v for k, v in table.items() if k not in JOB_KEYS}
    return JobSettings(schedule, timeout, {k: str(v) for k, v in params.items()}, extra)
