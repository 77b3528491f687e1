"""Auth0's asynchronous jobs (README, "Write your own job"): create one, poll `GET /api/v2/jobs/{id}` until it
ends, download its result.

- Polling honours `time_left_seconds` when Auth0 gives it, else backs off (1 s doubling to 30 s),
  and is bounded by the caller's deadline; the run's `stopping` ends it at once.
- A job that ends `failed` or `cancelled` fails the run with Auth0's own `status_details`.
- The result's `location` is a signed URL on another host: fetched without the bearer token, over
  https only (loopback excepted), following no redirect. Auth0 signs it for 60 s; an expired link
  (S3 answers 403) is refreshed by reading the job again.
"""

from __future__ import annotations

import gzip
import json
import threading
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests

from batchrunner import clock
from batchrunner.auth0.http import TIMEOUT, new_session
from batchrunner.config import is_loopback
from batchrunner.errors import ApiError

MAX_POLL_SECONDS = 30.0
REFRESHES = 3  # expired links read anew before giving up
ENDED = ("failed", "cancelled")
CHUNK_BYTES = 256 * 1024  # decompressed bytes split into lines and decoded at once


def wait(api, job_id: str, deadline: float, stopping: threading.Event | None = None,
         monotonic: Callable[[], float] = clock.monotonic, progress=None) -> dict:
    """Poll the job until it is `completed`; its last state. ApiError when it fails or the deadline passes.

    `progress` (a status line on a terminal) shows the job's state and counts down to the next look.
    """
    stopping = stopping or threading.Event()
    backoff = 1.0
    while True:
        job = api.get(f"jobs/{job_id}")
        status = job.get("status") if isinstance(job, dict) else None
        if status == "completed":
            return job
        if status in ENDED:
            details = " ".join(str(job.get("status_details") or "no details given").split())
            raise ApiError(f"Auth0's job {job_id} {status}: {details}")
        left = job.get("time_left_seconds") if isinstance(job, dict) else None
        pause = float(left) if isinstance(left, (int, float)) and not isinstance(left, bool) and left > 0 else backoff
        pause = min(max(pause, 1.0), MAX_POLL_SECONDS)
        backoff = min(backoff * 2, MAX_POLL_SECONDS)
        if monotonic() + pause > deadline:
            raise ApiError(f"Auth0's job {job_id} was still {status or 'unknown'} at the run's time limit; it goes on in Auth0, run again later")
        if progress:
            progress.show(f"Auth0's job {job_id} {status or 'pending'}, {job.get('percentage_done', 0)} % done")
            progress.waiting(pause, "before looking again")
        if stopping.wait(pause):
            raise ApiError(f"the run is ending; Auth0's job {job_id} was still {status}")


def lines(job: dict, refresh: Callable[[], dict], settings=None) -> Iterator[dict]:
    """The JSON Lines of a completed job's gzip result, decompressed as they stream in.

    `settings` give the download the way the API calls take: RUNNER_HTTPS_PROXY and RUNNER_CA_BUNDLE."""
    response = _open(job, refresh, settings)
    try:
        yield from gzip_lines(response.raw, job.get("id"))
    finally:
        response.close()


def gzip_lines(stream, job_id: str | None) -> Iterator[dict]:
    """The objects of gzip JSON Lines read from `stream` (a download, or a file), blank lines skipped."""
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            number = 0  # lines before the chunk
            for chunk in _line_chunks(unzipped):
                yield from _parse_chunk(chunk, number)
                number += len(chunk)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ApiError(f"the download of Auth0's job {job_id} is not a whole gzip file ({exc}); run again") from None


def _open(job: dict, refresh: Callable[[], dict], settings=None) -> requests.Response:
    # Its own session: the API session's bearer token must not go to the storage host.
    session = new_session(pool_size=1, settings=settings)
    for attempt in range(REFRESHES + 1):
        url = _checked(job.get("location"))
        try:
            response = session.get(url, stream=True, timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiError(f"downloading Auth0's job result from {urlsplit(url).hostname} failed: {type(exc).__name__}; run again") from None
        if response.status_code == 200:
            return response
        response.close()
        if response.status_code in (400, 403) and attempt < REFRESHES:
            job = refresh()  # signed for 60 s: reading the job again signs a new link
            continue
        raise ApiError(f"downloading Auth0's job result failed: HTTP {response.status_code} from {urlsplit(url).hostname}")
    raise AssertionError("unreachable")


def _checked(location) -> str:
    if not isinstance(location, str) or not location:
        raise ApiError("Auth0's completed job has no location to download")
    url = urlsplit(location)
    if url.scheme != "https" and not (url.scheme == "http" and is_loopback(url.hostname or "")):
        raise ApiError(f"refusing to download Auth0's job result over {url.scheme or 'no scheme'} from {url.hostname}; expected https")
    return location


def _line_chunks(stream) -> Iterator[list[bytes]]:
    """The stream's lines, a list per chunk read (splitting a chunk is cheaper than a line at a time)."""
    rest = b""
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def _parse_chunk(chunk: list[bytes], before: int) -> list[dict]:
    """The lines' objects, decoded as one JSON array (a line at a time takes twice as long). A chunk
    that is not one object a line (a blank line, a damaged one) is parsed line by line, which skips
    blank lines and names a damaged one."""
    try:
        values = json.loads(b"[" + b",".join(chunk) + b"]")
    except ValueError:
        values = None
    if values is not None and len(values) == len(chunk) and set(map(type, values)) <= {dict}:
        return values
    return [_parse(line, number) for number, line in enumerate(chunk, before + 1) if line.strip()]


def _parse(line: bytes, number: int) -> dict:
    try:
        value = json.loads(line)
    except ValueError:
        raise ApiError(f"line {number} of Auth0's job result is not JSON; run again") from None
    if not isinstance(value, dict):
        raise ApiError(f"line {number} of Auth0's job result is not a JSON object")
    return value
