"""What a job's author imports (README, "Write your own job"): the toolkit in one place.

The package's inside is arranged by role and may move; these names stay. A job module imports
from here only, as the README's examples do:

    from batchrunner.jobkit import OFFSET, Listing, export_csv, items, job
"""

from batchrunner import clock
from batchrunner.auth0.asyncjobs import lines as result_lines, wait as wait_for_job
from batchrunner.auth0.lists import CHECKPOINT, OFFSET, Listing, checkpoint, items
from batchrunner.errors import ApiError, ConfigError, JobFailed, RunnerError, UsageError
from batchrunner.operating.notifications import notify
from batchrunner.outputs.dated_csv import export_csv, prepare as prepare_export, terminal_progress
from batchrunner.outputs.job_state import JobState
from batchrunner.outputs.tables import Table, fetch_all
from batchrunner.outputs.writers import Key, point_link, staged_directory, write_csv, write_jsonl_gz
from batchrunner.runs.registry import JobContext, job

__all__ = [
    "ApiError", "CHECKPOINT", "checkpoint", "clock", "ConfigError", "export_csv", "fetch_all",
    "items", "job", "JobContext", "JobFailed", "JobState", "Key", "Listing", "notify", "OFFSET",
    "point_link", "prepare_export", "result_lines", "RunnerError", "staged_directory", "Table",
    "terminal_progress", "UsageError", "wait_for_job", "write_csv", "write_jsonl_gz",
]
