"""Bulk user exports (POST /api/v2/jobs/users-exports, GET /api/v2/jobs/{id}) and the download of
their result, which behaves as the signed S3 URL Auth0 hands out: valid 60 s, answered with S3's
XML errors, refusing a second authentication mechanism (an Authorization header beside the
signature) as S3 does. Whether each download carried an Authorization header is recorded.

The file is made in a thread when the job is created, streamed user by user through gzip into a
temporary file, so a million users never sit in memory. Sources: research/auth0-jobs.md (Bulk user
export); Auth0's "Bulk User Exports" page.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import math
import os
import tempfile
import threading
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import formatdate

from .directory import ident
from .tenant import Reply, _api_error
from .users import connection_of, user
from .users import user_id as id_of

JOB_DATA_SECONDS = 86400  # "All job-related data is automatically deleted after 24 hours."
CSV_MAX_FIELDS = 30
PLAN_REFUSAL = "Bulk user exports are not available on your current plan. Upgrade your plan to use this feature."


@dataclass
class Job:
    id: str
    created: float
    format: str
    fields: list[dict] | None
    connection: dict | None
    limit: int | None
    polls: int = 0
    file: object = None  # the finished gzip, a temporary file
    size: int = 0
    ready: threading.Event = field(default_factory=threading.Event)


@dataclass
class FileBody:
    """A reply body read from a file in chunks (server.py streams it)."""

    file: object
    size: int


class Exports:
    def __init__(self, seed: int, clock, users: int = 300, tenant_name: str = "sandbox"):
        self.seed, self.clock, self.initial_users, self.tenant_name = seed, clock, users, tenant_name
        self._key = os.urandom(16)
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            for job in self.jobs.values():
                job.ready.wait(5)
                if job.file is not None:
                    job.file.close()
            self.jobs = {}
            self.users = self.initial_users
            self.edited: dict[str, dict | None] = {}  # user_id -> changed fields, None once deleted (/users/{id})
            # Numbers of the users left as generated (signed up in 2021, long inactive by now); with it
            # set, every other user logged in an hour before the tenant's clock: a tenant of whom only
            # these are inactive (the users-cleanup bench). A `range` or a set: nothing is held per user.
            self.dormant: Container[int] | None = None
            self._numbers: dict[str, int] | None = None
            self.polls_to_complete = 2  # GET /jobs/{id} answers "completed" on this poll...
            self.seconds_to_complete: float | None = None  # ...or, when set, this long after creation
            self.time_left_hint = 1  # time_left_seconds per poll still to go
            self.outcome = "completed"  # or "failed" / "cancelled"
            self.status_details = "Failed to export users: the export could not be completed. Please try again."
            self.link_lifetime = 60.0  # "The download link is valid for 60 seconds."
            self.stale_links = 0  # a switch: this many links handed out already expired (a download that started late)
            self.bulk_export_on_plan = True
            self.download_base: str | None = None  # another origin for `location`; the tenant's own by default
            self.downloads: list[dict] = []  # {"path", "authorization": bool, "status"} per download request
            self._counter = 0

    # --- POST /api/v2/jobs/users-exports --------------------------------------------------------

    def create(self, body: dict | None, connections: list[dict]) -> Reply:
        if not self.bulk_export_on_plan:
            return Reply(403, _api_error(403, "Forbidden", PLAN_REFUSAL, "operation_not_supported"))
        body = body if isinstance(body, dict) else {}
        problem = _invalid(body)
        if problem:
            return Reply(400, _api_error(400, "Bad Request", problem, "invalid_body"))
        connection = None
        if body.get("connection_id"):
            connection = next((c for c in connections if c["id"] == body["connection_id"]), None)
            if connection is None:
                return Reply(404, _api_error(404, "Not Found", "The connection does not exist.", "inexistent_connection"))
        with self._lock:
            self._counter += 1
            job = Job(ident("job_", self.seed, "export", self._counter, os.urandom(4).hex()), self.clock(),
                      body.get("format", "json"), body.get("fields"), connection, body.get("limit"))
            self.jobs[job.id] = job
        threading.Thread(target=self._build, args=(job, self.users), daemon=True, name=f"export-{job.id}").start()
        # Auth0 answers 200 (not 201) and names the connection; its description requires `connection`
        # on this answer without defining it, so a tenant-wide export names none: "".
        return Reply(200, {**self._view(job, "pending", None), "connection": job.connection["name"] if job.connection else ""})

    # --- GET /api/v2/jobs/{id} --------------------------------------------------------------------

    def status(self, job_id: str, base_url: str) -> Reply:
        job = self.jobs.get(job_id)
        now = self.clock()
        if job is None or now - job.created > JOB_DATA_SECONDS:
            return Reply(404, _api_error(404, "Not Found", "The job does not exist.", "inexistent_job"))
        with self._lock:
            job.polls += 1
            polls = job.polls
        if self.seconds_to_complete is not None:
            left = self.seconds_to_complete - (now - job.created)
            due, progress = left <= 0, min(1.0, (now - job.created) / max(self.seconds_to_complete, 1e-9))
        else:
            left = (self.polls_to_complete - polls) * self.time_left_hint
            due, progress = polls >= self.polls_to_complete, polls / max(self.polls_to_complete, 1)
        if due and job.ready.wait(2.0):  # a small export is made in moments: answer as the switches say
            if self.outcome != "completed":
                return Reply(200, {**self._view(job, self.outcome, None), "status_details": self.status_details})
            return Reply(200, self._view(job, "completed", self._location(job, base_url)))
        state = "pending" if polls == 1 and self.polls_to_complete > 2 and self.seconds_to_complete is None else "processing"
        view = self._view(job, state, None)
        # Due but the file not made yet (a big export): come back in a second.
        view.update(percentage_done=min(99, int(progress * 100)), time_left_seconds=1 if due else math.ceil(max(left, 0)))
        return Reply(200, view)

    # --- the download -----------------------------------------------------------------------------

    def download(self, path: str, query: dict, headers: dict) -> Reply:
        authorization = any(k.lower() == "authorization" for k in headers)
        reply = self._download(path, query, authorization)
        with self._lock:
            self.downloads.append({"path": path, "authorization": authorization, "status": reply.status})
        return reply

    def _download(self, path: str, query: dict, authorization: bool) -> Reply:
        if authorization:
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                             "Signature query string parameter or the Authorization header should be specified")
        expires, signature = query.get("Expires", ""), query.get("Signature", "")
        if not expires.isdigit() or not signature:
            return _s3_error(403, "AccessDenied", "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
        if not hmac.compare_digest(signature, self._sign(path, expires)):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        now = self.clock()
        if now > int(expires):
            return _s3_error(403, "AccessDenied", "Request has expired", Expires=_http_iso(int(expires)), ServerTime=_http_iso(now))
        job = self.jobs.get(path.split("/")[2]) if path.count("/") >= 3 else None
        if job is None or not job.ready.is_set():
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return Reply(200, FileBody(job.file, job.size), {"Content-Type": "application/gzip", "Last-Modified": formatdate(job.created, usegmt=True),
                                                           "ETag": f'"{hashlib.md5(job.id.encode()).hexdigest()}"'})

    def _location(self, job: Job, base_url: str) -> str:
        path = f"/user-exports/{job.id}/{self.tenant_name}.{job.format}.gz"
        lifetime = self.link_lifetime
        with self._lock:
            if self.stale_links > 0:
                self.stale_links -= 1
                lifetime = -1.0
        expires = str(int(self.clock() + lifetime))
        return f"{self.download_base or base_url}{path}?Expires={expires}&AWSAccessKeyId=SANDBOXKEYID&Signature={self._sign(path, expires)}"

    def _sign(self, path: str, expires: str) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    # --- the users as GET/PATCH/DELETE /users/{id} change them ------------------------------------

    def profile(self, i: int) -> dict | None:
        """User i as the export and GET /users/{id} show it now: None once deleted."""
        profile = user(self.seed, i)
        if self.dormant is not None and i not in self.dormant:
            profile.update(last_login=_iso(self.clock() - 3600), logins_count=profile.get("logins_count", 0) + 1)
        if profile["user_id"] not in self.edited:
            return profile
        changes = self.edited[profile["user_id"]]
        return None if changes is None else {**profile, **changes}

    def find(self, user_id: str) -> dict | None:
        if self._numbers is None or len(self._numbers) != self.users:
            # user_id alone (not the whole profile): 200,000 users indexed in a moment, not seconds
            self._numbers = {id_of(self.seed, i): i for i in range(self.users)}
        i = self._numbers.get(user_id)
        return None if i is None else self.profile(i)

    def patch(self, user_id: str, changes: dict) -> dict | None:
        found = self.find(user_id)
        if found is None:
            return None
        self.edited[user_id] = {**(self.edited.get(user_id) or {}), **changes}
        return self.find(user_id)

    def delete(self, user_id: str) -> None:
        if self.find(user_id) is not None:
            self.edited[user_id] = None

    # --- the file -------------------------------------------------------------------------------

    def _build(self, job: Job, population: int) -> None:
        out = tempfile.TemporaryFile()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
            text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
            write = _csv_writer(job.fields) if job.format == "csv" else _json_writer(job.fields)
            if job.format == "csv":
                text.write(",".join(f.get("export_as") or f["name"] for f in job.fields or DEFAULT_FIELDS) + "\n")
            written, lines = 0, []
            for i in range(population):
                if job.limit is not None and written >= job.limit:
                    break
                if job.connection is not None and connection_of(i) != job.connection["name"]:
                    continue
                profile = self.profile(i)
                if profile is None:
                    continue
                lines.append(write(profile))
                written += 1
                if len(lines) == 1000:
                    text.write("".join(lines))
                    lines = []
            text.write("".join(lines))
            text.flush()
            text.detach()
        out.flush()  # the server reads it by descriptor
        job.file, job.size = out, out.tell()
        job.ready.set()

    def _view(self, job: Job, state: str, location: str | None) -> dict:
        view = {"type": "users_export", "status": state, "id": job.id, "created_at": _iso(job.created), "format": job.format,
                "fields": job.fields or DEFAULT_FIELDS}
        if job.connection is not None:
            view.update(connection_id=job.connection["id"], connection=job.connection["name"])
        if job.limit is not None:
            view["limit"] = job.limit
        if location:
            view["location"] = location
        return view


DEFAULT_FIELDS = [{"name": n} for n in ("user_id", "email", "email_verified", "name", "created_at", "updated_at",
                                        "last_login", "logins_count", "blocked", "identities")]


def _invalid(body: dict) -> str | None:
    if body.get("format", "json") not in ("json", "csv"):
        return f"Payload validation error: 'Invalid value \"{body.get('format')}\" for property format' on property format."
    fields = body.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, dict) and f.get("name") for f in fields)):
        return "Payload validation error: 'Expected type array of objects with a name' on property fields."
    if body.get("format") == "csv" and fields and len(fields) > CSV_MAX_FIELDS:
        return f"Payload validation error: 'Array is too long ({len(fields)}), maximum {CSV_MAX_FIELDS}' on property fields."
    return None


_MISSING = object()


def _path(name: str) -> list[str]:
    """`identities[0].connection` -> ["identities", "0", "connection"]."""
    return name.replace("]", "").replace("[", ".").split(".")


def _pick(profile: dict, path: list[str]):
    """A field by its parsed export name: `email`, `identities[0].connection`, `user_metadata.locale`."""
    if len(path) == 1:
        return profile.get(path[0], _MISSING)
    value = profile
    for part in path:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _json_writer(fields):
    names = [(_path(f["name"]), f.get("export_as") or f["name"]) for f in fields or DEFAULT_FIELDS]
    encode = json.JSONEncoder(ensure_ascii=False).encode

    def write(profile: dict) -> str:
        row = {}
        for path, label in names:
            value = _pick(profile, path)
            if value is not _MISSING:
                row[label] = value
        return encode(row) + "\n"

    return write


def _csv_writer(fields):
    paths = [_path(f["name"]) for f in fields or DEFAULT_FIELDS]

    def write(profile: dict) -> str:
        return ",".join(_csv_cell(_pick(profile, path)) for path in paths) + "\n"

    return write


def _csv_cell(value) -> str:
    """Auth0's CSV: every string prefixed with ' and quoted (OWASP's escaping), other values bare."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    return '"\'' + value.replace('"', '""') + '"'


def _s3_error(status: int, code: str, message: str, **extra) -> Reply:
    request_id = os.urandom(8).hex().upper()
    parts = [f"<Code>{code}</Code>", f"<Message>{message}</Message>"]
    parts += [f"<{k}>{v}</{k}>" for k, v in extra.items()]
    parts += [f"<RequestId>{request_id}</RequestId>", f"<HostId>{os.urandom(24).hex()}</HostId>"]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    return Reply(status, body.encode(), {"Content-Type": "application/xml", "x-amz-request-id": request_id})


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _http_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
