"""Tiny jobs for tests, each with one trait (loaded through RUNNER_JOBS)."""

import os
import time

from batchrunner.registry import job


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
