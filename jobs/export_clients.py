"""The nightly application inventory: every client of the tenant in one CSV (SPEC section 6).

Columns are documented in the README ("The export"). Secret material is never asked for and,
should the API send it anyway (a token with read:client_keys), never written.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from batchrunner.files import atomic_text, clean_partials, copy_atomic, neutralise, prepare_export_dir
from batchrunner.progress import Progress
from batchrunner.registry import JobContext, job

LIST_SEPARATOR = " "

# (CSV column, how to read it from an application object)
COLUMNS = [
    ("client_id", lambda c: c.get("client_id")),
    ("name", lambda c: c.get("name")),
    ("app_type", lambda c: c.get("app_type")),
    ("description", lambda c: c.get("description")),
    ("is_first_party", lambda c: c.get("is_first_party")),
    ("oidc_conformant", lambda c: c.get("oidc_conformant")),
    ("token_endpoint_auth_method", lambda c: c.get("token_endpoint_auth_method")),
    ("grant_types", lambda c: c.get("grant_types")),
    ("callbacks", lambda c: c.get("callbacks")),
    ("allowed_origins", lambda c: c.get("allowed_origins")),
    ("web_origins", lambda c: c.get("web_origins")),
    ("allowed_logout_urls", lambda c: c.get("allowed_logout_urls")),
    ("initiate_login_uri", lambda c: c.get("initiate_login_uri")),
    ("logo_uri", lambda c: c.get("logo_uri")),
    ("organization_usage", lambda c: c.get("organization_usage")),
    ("cross_origin_authentication", lambda c: c.get("cross_origin_authentication")),
    ("sso_disabled", lambda c: c.get("sso_disabled")),
    ("jwt_alg", lambda c: (c.get("jwt_configuration") or {}).get("alg")),
    ("refresh_token_rotation", lambda c: (c.get("refresh_token") or {}).get("rotation_type")),
]

# What the export asks the API for: the fields above and nothing else.
API_FIELDS = [
    "client_id", "name", "app_type", "description", "is_first_party", "oidc_conformant",
    "token_endpoint_auth_method", "grant_types", "callbacks", "allowed_origins", "web_origins",
    "allowed_logout_urls", "initiate_login_uri", "logo_uri", "organization_usage",
    "cross_origin_authentication", "sso_disabled", "jwt_configuration", "refresh_token",
]

# Never written, whatever the API returns (the fields above exclude them already; this is the
# second lock on the door).
SECRET_FIELDS = ("client_secret", "signing_keys", "encryption_key", "client_authentication_methods")


@job("export-clients", schedule="0 2 * * *", description="Export every application (client) of the tenant to CSV.", params=(),
     timeout=3600)  # 10,000 applications take seconds; an hour means something is stuck
def export_clients(ctx: JobContext) -> dict:
    started = time.monotonic()
    export_dir = ctx.export_dir
    prepare_export_dir(export_dir, ctx.log)
    for leftover in clean_partials(export_dir, "clients-"):
        ctx.log.info("removed %s, left by an interrupted run", leftover.name)
    target = export_dir / f"clients-{ctx.now():%Y%m%dT%H%M%SZ}.csv"
    progress = Progress.on_terminal("export-clients")
    try:
        rows = write_csv(target, _applications(ctx, progress))
    finally:
        if progress:
            progress.close()
    copy_atomic(target, export_dir / "clients-latest.csv")
    stats = ctx.api.stats
    ctx.log.info("exported %d applications to %s", rows, target)
    return {
        "rows": rows,
        "path": str(target),
        "latest": str(export_dir / "clients-latest.csv"),
        "pages": max(1, -(-rows // 100)),
        "requests": stats.requests,
        "retries": stats.retries,
        "seconds": round(time.monotonic() - started, 3),
    }


def write_csv(path: Path, applications) -> int:
    """Write the CSV under a temporary name and rename it into place; the row count."""
    count = 0
    # utf-8-sig: the byte-order mark makes Excel read the file as UTF-8 (SPEC section 6 allows it).
    with atomic_text(path, encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([name for name, _ in COLUMNS])
        for app in applications:
            writer.writerow(row(app))
            count += 1
    return count


def row(app: dict) -> list[str]:
    clean = {k: v for k, v in app.items() if k not in SECRET_FIELDS}
    return [neutralise(cell(read(clean))) for _, read in COLUMNS]


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        # Items are URLs and grant types: a space inside one is percent-encoded so the separator stays unambiguous.
        return LIST_SEPARATOR.join(str(item).replace(" ", "%20") for item in value)
    return str(value)


def _applications(ctx: JobContext, progress: Progress | None):
    params = {"fields": ",".join(API_FIELDS), "include_fields": "true", "is_global": "false"}
    return ctx.api.paginate("clients", "clients", params, unique="client_id", progress=progress)
