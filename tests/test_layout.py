"""The house (issue 21): one public module for job authors, old paths that still work, one installed package."""

# Old import path, kept for one release (README, "Write your own job"): this file names old paths on purpose.

import re
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
SAMPLES = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_readme_samples_import_only_the_job_authors_module():
    imports = [line for sample in SAMPLES for line in sample.splitlines() if re.match(r"(from|import) batchrunner", line)]
    assert imports and all(line.startswith("from batchrunner.jobkit import ") for line in imports), imports


def test_the_job_authors_module_has_every_name_the_readme_imports():
    import batchrunner.jobkit as jobkit

    names = {name.strip() for sample in SAMPLES for m in re.finditer(r"from batchrunner\.jobkit import (.+)", sample)
             for name in m.group(1).split(",")}
    assert names and names <= set(jobkit.__all__) and all(hasattr(jobkit, n) for n in jobkit.__all__)


def test_the_bundled_jobs_are_built_from_the_job_authors_module():
    # Beside it only the pipelines that are one job's own: the log archive's, the access snapshot's, the tenant checks', the user clean-up's.
    own = {"from batchrunner.outputs import archive", "from batchrunner.outputs import snapshots",
           "from batchrunner.findings import gather, report, settings",
           "from batchrunner.cleanup import pipeline"}
    for path in sorted((ROOT / "jobs").glob("*.py")):
        imports = [line.split("  #")[0] for line in path.read_text().splitlines() if re.match(r"(from|import) batchrunner", line)]
        assert all(line.startswith("from batchrunner.jobkit import ") or line in own for line in imports), (path.name, imports)


@pytest.mark.parametrize("statement", [
    "from batchrunner.lists import OFFSET, Listing", "from batchrunner.exports import export_csv",
    "from batchrunner.outputs import write_jsonl_gz", "from batchrunner.registry import job",
    "from batchrunner import asyncjobs; asyncjobs.wait", "from batchrunner.alerts import notify",
    "from batchrunner.state import JobState", "from batchrunner.tables import Table",
])
def test_an_old_import_path_still_works_and_warns(statement):
    code = f"import warnings; warnings.simplefilter('always'); {statement}"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "DeprecationWarning" in result.stderr and "batchrunner.jobkit" in result.stderr, result.stderr


def test_an_old_path_is_the_same_module_not_a_copy():
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "import batchrunner.lists, batchrunner.auth0.lists, batchrunner.outputs, batchrunner.outputs.writers\n"
            "assert batchrunner.lists is batchrunner.auth0.lists\n"
            "assert batchrunner.outputs.write_csv is batchrunner.outputs.writers.write_csv\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_install_holds_one_package_and_its_command():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = setup["tool"]["setuptools"]
    assert "py-modules" not in tool
    assert {p.split(".")[0] for p in tool["packages"]} == {"batchrunner"}
    assert {"batchrunner.jobs", "batchrunner.migrations"} <= set(tool["packages"])
    assert setup["project"]["scripts"]["runner"].startswith("batchrunner.")


def test_every_folder_of_the_package_is_installed():
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "batchrunner").rglob("__init__.py")}
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert folders - listed == set(), "add them to [tool.setuptools] packages in pyproject.toml"
