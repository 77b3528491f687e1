"""The user export: every user through Auth0's bulk export job (README, "The user export: `export-users`").

`GET /api/v2/users` stops at 1,000 users; Auth0's bulk export does not. The run creates the export
(format json: Auth0's CSV prefixes every string with `'`), waits for it, streams the gzip JSON
Lines download into users-YYYYMMDDTHHMMSSZ.csv and users-latest.csv (batchrunner/auth0/asyncjobs.py,
exports.py). Metadata is exported only when named in RUNNER_USERS_FIELDS.
"""

from __future__ import annotations

from batchrunner.jobkit import ApiError, ConfigError, Key, clock, job, prepare_export, result_lines, terminal_progress, wait_for_job

# (CSV column, the field Auth0 exports it from)
FIELDS = [
    ("user_id", "user_id"),
    ("email", "email"),
    ("email_verified", "email_verified"),
    ("name", "name"),
    ("connection", "identities[0].connection"),
    ("created_at", "created_at"),
    ("last_login", "last_login"),
    ("logins_count", "logins_count"),
    ("blocked", "blocked"),
]
WAIT_SECONDS = 6 * 3600  # Auth0 keeps an export job 24 h; a tenant of millions exports within hours


def fields(env) -> list[tuple[str, str]]:
    """The columns: FIELDS, then those RUNNER_USERS_FIELDS names (e.g. given_name,app_metadata)."""
    extra = [f.strip() for f in (env.get("RUNNER_USERS_FIELDS") or "").split(",") if f.strip()]
    known = {column for column, _ in FIELDS}
    for name in extra:
        if not all(part.replace("_", "").isalnum() for part in name.split(".")) or name in known:
            raise ConfigError("RUNNER_USERS_FIELDS", f"{name!r} is not a user field to add (e.g. given_name, app_metadata, user_metadata.locale)")
    return FIELDS + [(name, name) for name in extra]


@job("export-users", schedule="0 3 * * *", params=("connection",), check=lambda env, params: fields(env), timeout=8 * 3600,
     description="Export every user to CSV through Auth0's bulk user export.")
def export_users(ctx) -> dict:
    started = clock.monotonic()
    columns = fields(ctx.settings.env)
    export = prepare_export(ctx, "users")  # before the bulk export: it may take an hour to find the folder unwritable
    body = {"format": "json", "fields": [{"name": source, "export_as": column} for column, source in columns]}
    if ctx.params.get("connection"):
        body["connection_id"] = _connection_id(ctx.api, ctx.params["connection"])
    created = ctx.api.post("jobs/users-exports", body)
    job_id = created["id"]
    ctx.log.info("Auth0 export job %s created; waiting for it", job_id)
    with terminal_progress("export-users", ctx.api) as progress:
        done = wait_for_job(ctx.api, job_id, clock.monotonic() + WAIT_SECONDS, ctx.stopping, progress=progress)
        users = result_lines(done, refresh=lambda: ctx.api.get(f"jobs/{job_id}"), settings=ctx.settings)
        if progress:
            users = progress.counted(users, lambda n: f"{n:,} user{'' if n == 1 else 's'} written")
        result = export.write(csv_columns(columns), users)
    return {**result, "job_id": job_id, "seconds": round(clock.monotonic() - started, 3)}


def csv_columns(columns: list[tuple[str, str]]) -> list[tuple[str, object]]:
    """The CSV's columns: each line's keys are the columns (export_as), read flat, dots and all."""
    return [(column, Key(column)) for column, _ in columns]


def _connection_id(api, name: str) -> str:
    found = api.get("connections", {"name": name, "fields": "id,name", "include_fields": "true"})
    found = found.get("connections", []) if isinstance(found, dict) else found
    match = [c for c in found or [] if c.get("name") == name]
    if not match:
        raise ApiError(f"no connection named {name!r} in the tenant; --param connection takes a connection's name")
    return match[0]["id"]
