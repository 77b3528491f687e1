"""Tiny jobs for tests, each with one trait (loaded through RUNNER_JOBS)."""

import os
import time

from batchrunner.runs.registry import job


@job("hello", schedule="0 3 * * *", description="Returns a greeting; needs no API.", needs_api=False, params=("name",))
def hello(ctx):
    return {"greeting": f"hello {ctx.params.get('name', 'world')}", "trigger": ctx.trigger}


@job("sleepy", schedule="0 4 * * *", description="Sleeps SLEEPY_SECONDS (default 2).", needs_api=False)
def sleepy(ctx):
    time.sleep(float(os.environ.get("SLEEPY_SECONDS", "2")))
    return {"slept": True}


@job("failing", schedule="0 5 * * *", description="Always raises.", needs_api=False)
def failing(ctx):
    raise RuntimeError("this job always fails")


@job("leaky", schedule="0 6 * * *", description="Raises an error that contains the client secret.")
def leaky(ctx):
    raise RuntimeError(f"oops, the secret is {os.environ['AUTH0_CLIENT_SECRET']}")


@job("ping", schedule="0 7 * * *", description="Reads one application through the API.")
def ping(ctx):
    page = ctx.api.get("clients", {"per_page": 1, "fields": "client_id", "is_global": "false"})
    return {"clients": len(page)}


@job("stubborn", schedule="0 8 * * *", description="Writes a file slowly, ignoring ctx.stopping.", needs_api=False, timeout=60)
def stubborn(ctx):
    from batchrunner.outputs.atomic import atomic_text

    with atomic_text(ctx.export_dir / "stubborn.txt") as handle:
        while True:  # a pure Python loop that never looks at ctx.stopping
            handle.write("x")
            time.sleep(0.01)


@job("drifty", schedule="0 9 * * *", description="Reports drift through the notification hook.", needs_api=False)
def drifty(ctx):
    from batchrunner.operating.notifications import notify

    notify(ctx, "drift", "drifty: 1 role added", changes={"roles": {"added": 1, "removed": 0, "changed": 0}})
    return {"changes": {"added": 1, "removed": 0, "changed": 0}}


@job("finalizer", schedule="off", description="Loops in __del__, where an interruption is ignored.", needs_api=False, timeout=60)
def finalizer(ctx):
    class Slow:
        def __del__(self):
            _spin(0.05)

    while True:  # never looks at ctx.stopping, and spends nearly all its time in __del__
        Slow()  # its __del__ runs here, and ignores an exception raised in it ("Exception ignored in ...")


def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@job("messy", schedule="off", description="Its cleanup fails when it is interrupted, as a database call's may.", needs_api=False, timeout=60)
def messy(ctx):
    try:
        while True:
            time.sleep(0.05)
    finally:  # PostgreSQL's rollback of a query interrupted mid-way raises, and replaces what interrupted it
        raise RuntimeError("sending query failed: another command is already in progress")


@job("swallower", schedule="off", description="Catches the first interruption it gets, and goes on.", needs_api=False, timeout=60)
def swallower(ctx):
    caught = 0
    while True:
        try:
            time.sleep(0.05)
        except BaseException:  # a job's own `except BaseException` (or a library's) catches the first one
            caught += 1
            if caught > 1:
                raise


@job("slow-to-end", schedule="off", description="Reads applications in a thread of its own; its cleanup takes 1 s.")
def slow_to_end(ctx):
    import threading

    def read():  # as a snapshot's list threads do, until the API refuses
        while True:
            ctx.api.get("clients", {"per_page": 1, "fields": "client_id", "is_global": "false"})

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            time.sleep(0.05)
    finally:  # a large scratch folder removed, a heartbeat's last write on a busy database
        time.sleep(1.0)
