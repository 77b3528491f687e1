"""Start-up (README, "Development"): `run-job` imports nothing before its first request that the
first request does not need, read from `python -X importtime` up to the moment the process opens
its first connection to the tenant."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SQLITE_ONLY

RUNNER = Path(__file__).resolve().parent.parent / "runner.py"
MARK = "runner-test: first connection to the tenant"

# Run runner.py as `python runner.py ...` does, and write MARK on stderr when the process first
# connects to the tenant's port: -X importtime writes there too, so the lines before MARK are the
# imports before the first request (the token cache is warm: that request is the API's).
WRAPPER = """
import gc, os, runpy, sys
port = int(sys.argv[1])
def first_connection(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][1:2] == (port,) and not marked:
        marked.append(True)
        os.write(2, b"\\n%s (collector %s, young %d)\\n" % (b"on" if gc.isenabled() else b"off", gc.get_threshold()[0]))
marked = []
sys.addaudithook(first_connection)
sys.argv = [sys.argv[2]] + sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
""".replace("%s", MARK, 1)

# Heavy packages the first request of an export does not need: migrations and the scheduler
# (`serve`, `migrate`), metrics, and the stand-in tenant.
NOT_BEFORE_FIRST_REQUEST = ["alembic", "mako", "apscheduler", "prometheus_client", "batchrunner.sandbox",
                            "batchrunner.runs.serve", "batchrunner.runs.schedules", "psycopg",
                            # SQLAlchemy's PostgreSQL dialect (asyncpg, pg8000...): SQLite needs none of it
                            "sqlalchemy.dialects.postgresql"]


def first_request(runner, env, tenant) -> tuple[list[str], str]:
    """The modules imported before the first request, and what the process said of its collector then."""
    assert runner("token", "print").returncode == 0  # a warm cache: no token request first
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", WRAPPER, str(tenant.port), str(RUNNER), "run-job", "export-clients"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    before, mark, after = result.stderr.partition(MARK)
    assert mark, "the process never connected to the tenant"
    modules = [line.rsplit("|", 1)[1].strip() for line in before.splitlines() if line.startswith("import time:") and "|" in line]
    return modules, after.split(")", 1)[0].strip(" (")


def test_run_job_imports_no_heavy_package_before_its_first_request(runner, env, tenant, database_url):
    if database_url.startswith("postgresql"):
        pytest.skip("the same imports on either database, but psycopg: SQLite says it")
    tenant.tenant.set_clients(10)
    modules, _ = first_request(runner, env, tenant)
    assert "requests" in modules and "sqlalchemy" in modules  # what it needs, seen: the reading works
    loaded = [m for m in modules for heavy in NOT_BEFORE_FIRST_REQUEST if m == heavy or m.startswith(heavy + ".")]
    assert loaded == []


def test_run_job_collects_garbage_again_once_its_imports_are_done(runner, env, tenant, database_url):
    # The collector is held off while the libraries load (batchrunner/cli/startup.py); a job that ran
    # without it would keep every reference cycle it made, and `serve` runs for months.
    if database_url.startswith("postgresql"):
        pytest.skip("the same start-up on either database")
    tenant.tenant.set_clients(10)
    _, collector = first_request(runner, env, tenant)
    # Passes over the youngest generation every 10,000 allocations, not 700: at 700 an export page's
    # objects set off the older generations' passes, a sixth of `serve`'s CPU (README, "Development").
    assert collector == "collector on, young 10000"


@SQLITE_ONLY  # the same start-up on either database
@pytest.mark.parametrize("command", [["jobs"], ["history", "--json"], ["token", "status"], ["check"], ["metrics"],
                                     ["prune", "--dry-run"], ["db", "upgrade"], ["diff"]])
def test_every_command_collects_garbage_again_once_its_imports_are_done(local_env, tmp_path, command):
    # What `run-job` shows above, for others that end on their own (`serve` and `sandbox` reach the
    # same call, `checked_settings()` and `imports_done()`, but end by signal or `os._exit`).
    wrapper = ("import atexit, gc, os, runpy, sys\n"
               "atexit.register(lambda: sys.stderr.write('\\ncollector %s\\n' % ('on' if gc.isenabled() else 'off')))\n"
               "sys.argv = sys.argv[1:]\n"
               "sys.path.insert(0, os.path.dirname(sys.argv[0]))  # this checkout's batchrunner, as `python runner.py`\n"
               "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", wrapper, str(RUNNER), *command], env=local_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.stderr.rstrip().endswith("collector on"), result.stderr[-500:]
    assert "Traceback" not in result.stderr and result.returncode in (0, 1, 2), result.stderr[-500:]  # no database, no snapshots
