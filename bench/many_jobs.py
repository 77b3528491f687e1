"""200 trivial jobs every 5 seconds, for bench/replicas.py (loaded through RUNNER_JOBS)."""

from batchrunner.runs.registry import job

COUNT = 200


def _register(number: int) -> None:
    @job(f"bench-{number:03d}", schedule="*/5 * * * * *", description="Does nothing, on time.", needs_api=False)
    def trivial(ctx):
        return None


for _number in range(COUNT):
    _register(_number)
