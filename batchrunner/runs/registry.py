"""Jobs: functions registered with `@job(name, schedule, description)`, found in `jobs/` and RUNNER_JOBS.

A job receives a `JobContext` and returns a dict (its recorded result, a JSON object) or None;
anything else fails the run (execute.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from batchrunner.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from batchrunner.auth0.api import ManagementApi
    from batchrunner.config import Settings
    from batchrunner.outputs.job_state import JobState
    from batchrunner.store.database import Database
    from batchrunner.tenants import JobSettings, Tenant

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    description: str
    func: Callable[["JobContext"], dict | None]
    needs_api: bool = True
    params: tuple[str, ...] | None = None  # the --param keys it takes; None: any
    # Checks the job's own settings and parameters before a run is recorded: check(env, params)
    # raises ConfigError or UsageError (exit 2), as a bad runner setting does.
    check: Callable[[dict, dict], None] | None = None
    timeout: float | None = None  # seconds a run may take (README, "Operating it unattended"); RUNNER_TIMEOUT_<JOB> overrides
    requires: tuple[str, ...] = ()  # params every run must have (--param or RUNNER_PARAMS_<JOB>; params.py)
    # Its table in the tenants file (`[tenants.NAME.jobs.JOB]`, README "Write your own job"): the keys it
    # reads beside schedule, timeout and params (None: any), and check_table(settings, where), run on
    # the table's JobSettings when the file is read; it raises ConfigError(where, problem) for a bad one.
    table_keys: tuple[str, ...] | None = ()
    check_table: Callable[["JobSettings", str], None] | None = None

    def check_params(self, given: dict[str, str]) -> None:
        """UsageError for a --param the job does not take: a typo must not pass unnoticed."""
        problem = self.unknown_param(given, "--param")
        if problem:
            raise UsageError(problem)

    def unknown_param(self, given: Mapping[str, object], kind: str = "param") -> str | None:
        """What is wrong with the first of `given` the job does not take (from --param, RUNNER_PARAMS_<JOB>
        or a tenant's `params`), each caller naming where; None when it takes them all."""
        unknown = sorted(set(given) - set(self.params)) if self.params is not None else []
        if not unknown:
            return None
        return f"{self.name} takes no {kind} {unknown[0]}; its parameters: {', '.join(self.params) or 'none'}"


@dataclass
class JobContext:
    """What a job gets: the API session, settings, where to write, a logger, its run, its --param values."""

    api: "ManagementApi | None"
    settings: "Settings"
    export_dir: Path
    log: logging.Logger
    run_id: int
    trigger: str
    scheduled_for: datetime | None
    params: dict[str, str]
    now: Callable[[], datetime]
    # Set when serve is asked to stop, or when the run was marked abandoned: a long job may end early.
    stopping: threading.Event = field(default_factory=threading.Event)
    db: "Database | None" = None
    job: str = ""
    # Whom the run is for (README, "Several tenants"); `export_dir` is already its own folder.
    tenant: "Tenant | None" = None

    @property
    def state(self) -> "JobState":
        """This job's durable state for this tenant (state.py): its checkpoint and the like."""
        from batchrunner.outputs.job_state import JobState
        from batchrunner.store.schema import DEFAULT_TENANT

        return JobState(self.db, self.job, self.run_id, self.now, self.tenant.name if self.tenant else DEFAULT_TENANT)


_jobs: dict[str, Job] = {}


def job(name: str, schedule: str, description: str, needs_api: bool = True, params: tuple[str, ...] | None = None,
        check: Callable[[dict, dict], None] | None = None, timeout: float | None = None, requires: tuple[str, ...] = (),
        table_keys: tuple[str, ...] | None = (), check_table: Callable[["JobSettings", str], None] | None = None):
    """Register the decorated function as a job (see README, "Write your own job").

    `params` names the --param keys the job takes; leave it None to take any. `check(env, params)`
    refuses bad settings of the job's own before anything is recorded. `timeout`: seconds a run may
    take before it is ended and recorded failed; None for no limit. `requires` names the params every
    run must have: one given neither by --param nor by RUNNER_PARAMS_<JOB> is a setting error (exit 2).
    `table_keys` names the keys the job reads from its table in the tenants file beside schedule,
    timeout and params (`ctx.tenant.settings_for(name).extra`; None: any key); any other key there is
    refused when the file is read. `check_table(settings, where)` judges that table's JobSettings then,
    raising ConfigError(where, problem): a bad value is exit 2 before anything runs, not a failed run.
    """
    if not NAME_PATTERN.match(name):
        raise ValueError(f"job name {name!r}: use lower-case letters, digits and '-', starting with a letter")

    def register(func):
        known = _jobs.get(name)
        if known is not None and _origin(known.func) != _origin(func):
            raise ConfigError("RUNNER_JOBS", f"two jobs are named {name!r}: {_origin(known.func)} and {_origin(func)}")
        takes = tuple(dict.fromkeys((*params, *requires))) if params is not None else None  # a required param is taken
        _jobs[name] = Job(name, schedule, description.strip(), func, needs_api, takes, check, timeout, tuple(requires),
                          tuple(table_keys) if table_keys is not None else None, check_table)
        return func

    return register


def discover(extra: tuple[str, ...] = ()) -> dict[str, Job]:
    """Import the bundled jobs and those named in RUNNER_JOBS; every registered job by name."""
    bundled = _bundled_jobs()

    for module in pkgutil.iter_modules(bundled.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{bundled.__name__}.{module.name}")
    for entry in extra:
        _load(entry.strip())
    return dict(sorted(_jobs.items()))


def find(name: str, extra: tuple[str, ...] = ()) -> Job:
    jobs = discover(extra)
    if name not in jobs:
        known = ", ".join(jobs) or "none"
        raise UsageError(f"unknown job {name!r}; registered jobs: {known} (see `runner jobs`)")
    return jobs[name]


def _load(entry: str) -> None:
    path = Path(entry)
    try:
        if path.is_dir():
            for file in sorted(path.glob("*.py")):
                if not file.name.startswith("_"):
                    _load_file(file)
        elif entry.endswith(".py") or "/" in entry:
            if not path.is_file():
                raise ConfigError("RUNNER_JOBS", f"no such file or folder: {entry}")
            _load_file(path)
        else:
            importlib.import_module(entry)
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (entry == exc.name or entry.startswith(exc.name + ".")):  # the entry itself, not an import inside it
            raise ConfigError("RUNNER_JOBS", f"no such file or folder: {entry} (nor a module of that name)") from None
        raise ConfigError("RUNNER_JOBS", f"cannot load {entry}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # a broken job module must say which one, not show a traceback
        raise ConfigError("RUNNER_JOBS", f"cannot load {entry}: {type(exc).__name__}: {exc}") from None


def _load_file(file: Path) -> None:
    name = f"runner_jobs_{re.sub(r'[^0-9a-zA-Z_]', '_', str(file.resolve()))}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _origin(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _bundled_jobs():
    """The bundled jobs, `batchrunner.jobs`: inside the package once installed (pyproject.toml maps the
    repository's jobs/ there); in a checkout run as `python runner.py` without an install, jobs/ beside it."""
    try:
        return importlib.import_module("batchrunner.jobs")
    except ModuleNotFoundError as exc:
        if exc.name != "batchrunner.jobs":
            raise
    folder = Path(importlib.import_module("batchrunner").__file__).resolve().parent.parent / "jobs"
    spec = importlib.util.spec_from_file_location("batchrunner.jobs", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
