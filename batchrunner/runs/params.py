"""A job's parameters: `RUNNER_PARAMS_<JOB>` for every run, `--param KEY=VALUE` of `run-job` over it.

A scheduled run has no command line, so its parameters come from the environment
(`RUNNER_PARAMS_ADMINS_SEEN="role=rol_123 note='two words'"`: KEY=VALUE pairs separated by spaces,
quoted as a shell quotes). A parameter the job requires (`@job(..., requires=("role",))`) that is
given nowhere is a setting error before anything is recorded (README, "Write your own job"),
not a run that fails with `KeyError: 'role'` every night.

A named tenant's parameters come from its `[tenants.NAME.jobs.JOB]` table in the tenants file
instead (README, "Several tenants"); RUNNER_PARAMS_<JOB> is the tenant `default`'s.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Mapping

from batchrunner.errors import ConfigError, UsageError
from batchrunner.runs.registry import Job

if TYPE_CHECKING:
    from batchrunner.tenants import Tenant

PREFIX = "RUNNER_PARAMS_"


def variable(job_name: str) -> str:
    return PREFIX + job_name.upper().replace("-", "_")


def from_env(job: Job, env: Mapping[str, str]) -> dict[str, str]:
    """The job's RUNNER_PARAMS_<JOB> pairs; ConfigError naming the variable when malformed or unknown."""
    name = variable(job.name)
    text = env.get(name, "")
    try:
        words = shlex.split(text)
    except ValueError as exc:  # "No closing quotation"
        raise ConfigError(name, f"{exc.args[0].lower()}; give KEY=VALUE pairs separated by spaces, quoted as in a shell") from None
    found = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key.strip():
            raise ConfigError(name, f"{word!r} is no KEY=VALUE pair; give e.g. {name}=\"{_example(job, word)}\"")
        found[key.strip()] = value
    problem = job.unknown_param(found)
    if problem:
        raise ConfigError(name, problem)
    return found


def for_tenant(job: Job, env: Mapping[str, str], tenant: "Tenant | None" = None) -> dict[str, str]:
    """The params of every run of the job for `tenant`: the tenants file's `params` of the job, over
    RUNNER_PARAMS_<JOB> key by key for `default` (or None)."""
    found = dict(tenant.settings_for(job.name).params) if tenant is not None else {}
    problem = job.unknown_param(found)
    if problem:
        raise ConfigError("RUNNER_TENANTS_FILE", f"tenant {tenant.name}: {problem}")
    if tenant is None or tenant.is_default:
        return {**from_env(job, env), **found}
    return found


def for_run(job: Job, env: Mapping[str, str], given: Mapping[str, str] | None = None, tenant: "Tenant | None" = None) -> dict[str, str]:
    """The run's parameters: the tenant's own for every run (`for_tenant`), then `given` (--param) over it key by key.

    UsageError for a --param the job does not take, or a required one given nowhere.
    """
    job.check_params(dict(given or {}))
    params = {**for_tenant(job, env, tenant), **(given or {})}
    missing = [key for key in job.requires if key not in params]
    if missing:
        every = (f"set {variable(job.name)}=\"{missing[0]}=VALUE\"" if tenant is None or tenant.is_default
                 else f"give params in [tenants.{tenant.name}.jobs.{job.name}]")
        raise UsageError(f"{job.name} requires the param {missing[0]}: give --param {missing[0]}=VALUE, "
                         f"or {every} for every run")
    return params


def _example(job: Job, word: str) -> str:
    """KEY=VALUE with the job's own key (the word given as its value: RUNNER_PARAMS_SNAPSHOT=roles
    meant resources=roles), or the README's example for a job that takes any key."""
    keys = (*job.requires, *(job.params or ()))
    return f"{keys[0]}={shlex.quote(word)}" if keys else "role=rol_123 note='two words'"


def check_scheduled(env: Mapping[str, str], jobs: Mapping[str, Job], scheduled: list[tuple[Job, "Tenant | None"]]) -> None:
    """At `serve`'s start: every RUNNER_PARAMS_ variable names a job, and each scheduled job has its
    required params (ConfigError naming the variable, exit 2), since no one is there at 2 a.m. to give them."""
    known = {variable(name) for name in jobs}
    for name in sorted(env):
        if name.startswith(PREFIX) and name not in known:
            raise ConfigError(name, f"names no registered job; the variables of the registered jobs are {', '.join(sorted(known)) or 'none'}")
    for job, tenant in scheduled:
        params = for_tenant(job, env, tenant)
        missing = [key for key in job.requires if key not in params]
        if missing:
            raise ConfigError(variable(job.name), f"{job.name} requires the param {missing[0]} for its scheduled runs; "
                              f"set e.g. {variable(job.name)}=\"{missing[0]}=VALUE\", or turn the job off")
