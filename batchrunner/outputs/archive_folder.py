"""What a checkpointed archive's folder says of itself (README, "The log archive: `export-logs`").

- Which archive it holds: `.archive.json`, written when the archive begins, names a storage id
  (random), the tenant, and the item the archive began after (`RUNNER_LOGS_START=now`). The
  database records the same storage id and tenant beside the checkpoint, so a run whose folder is
  another (a replica's own disk) or whose tenant is another (AUTH0_DOMAIN changed) refuses before it
  settles, writes or pages anything. Hidden, so pruning (`RUNNER_LOGS_RETENTION_DAYS`) leaves it.
- How far its files reach: each file's name carries its first and last id, so a checkpoint the
  database lost or rolled back (moved aside, restored from a backup, a power loss) is brought up
  to the newest file before paging.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from batchrunner.config import origin
from batchrunner.errors import ConfigError
from batchrunner.outputs.atomic import atomic_text

MARK = ".archive.json"
FILE_NAME = re.compile(r"^(?P<first>[^-/]+)-(?P<last>[^-/]+)\.jsonl\.gz$")
DAY_FOLDERS = "[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]"


@dataclass(frozen=True)
class Mark:
    storage: str  # made when the archive began; names the folder, wherever it is mounted
    tenant: str  # tenant_name() of AUTH0_DOMAIN
    after: str | None = None  # the item the archive began after; None: the oldest the tenant held

    def identity(self) -> dict:
        """What the database records beside the checkpoint."""
        return {"storage": self.storage, "tenant": self.tenant}


def tenant_name(base_url: str) -> str:
    """One spelling per tenant: lower-case host, no default port (`Acme.eu.auth0.com:443` is `acme.eu.auth0.com`)."""
    scheme, host, port = origin(base_url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == {"https": 443, "http": 80}.get(scheme) else f":{port}")


def new_mark(tenant: str, after: str | None) -> Mark:
    return Mark(secrets.token_hex(8), tenant, after)


def read_mark(root: Path) -> Mark | None:
    try:
        data = json.loads((root / MARK).read_text(encoding="utf-8"))
        return Mark(str(data["storage"]), str(data["tenant"]), data.get("after"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("RUNNER_EXPORT_DIR", f"{root / MARK} cannot be read ({exc}); restore it from the "
                          "folder's backup, or from another host's copy of the archive") from None


def write_mark(root: Path, mark: Mark) -> None:
    with atomic_text(root / MARK) as out:
        out.write(json.dumps(asdict(mark), indent=1) + "\n")


def check(recorded: dict | None, mark: Mark | None, tenant: str, root: Path, name: str | None = None) -> None:
    """ConfigError when the database's archive is another tenant's, or kept in another folder than `root`.

    `name`: the runner's name of the tenant (README, "Several tenants"); None or `default` for AUTH0_*.
    """
    for owner, where in ((recorded, "the database"), (mark and mark.identity(), str(root))):
        if owner and owner["tenant"] != tenant:
            if name and name != "default":
                raise ConfigError("RUNNER_TENANTS_FILE", f"the log archive of tenant {name} in {where} is of {owner['tenant']}, "
                                  f"not of {tenant}; set the domain of tenant {name} back, or give {tenant} a tenant of another name")
            raise ConfigError("AUTH0_DOMAIN", f"the log archive in {where} is of the tenant {owner['tenant']}, not of "
                              f"{tenant}; set AUTH0_DOMAIN back, or give this tenant its own RUNNER_DATABASE_URL and RUNNER_EXPORT_DIR")
    if recorded and (mark is None or mark.storage != recorded["storage"]):
        held = f"holds the log archive {mark.storage}" if mark else f"holds no log archive (no {MARK})"
        raise ConfigError("RUNNER_EXPORT_DIR", f"{root} {held}, but the checkpoint in the database is of the archive "
                          f"{recorded['storage']}; point RUNNER_EXPORT_DIR at the folder that holds it, shared by every host")


def newest_file(root: Path) -> tuple[str, Path] | None:
    """The last id the archive's files reach, and that file; None for a folder without files.

    A file lies in the day folder of its first item; dates run a little out of id order, so the
    newest file is in the newest day folder or, just after midnight, the one before.
    """
    return max(_files_in([*_days(root)[-2:], root / "undated"]), default=None)


def files(root: Path) -> list[tuple[str, Path]]:
    """Every file of the archive as (its last id, the file), oldest first (ids sort as text)."""
    return sorted(_files_in([*_days(root), root / "undated"]))


def _days(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(DAY_FOLDERS) if p.is_dir())


def _files_in(folders: list[Path]) -> list[tuple[str, Path]]:
    """(last id, file) of each archive file in these folders."""
    return [(match["last"], file) for folder in folders if folder.is_dir()
            for file in folder.iterdir() if (match := FILE_NAME.match(file.name))]


def last_value(file: Path, field: str) -> str | None:
    """`field` of a file's last item (the newest event's date); None when it cannot be read."""
    last = None
    try:
        with gzip.open(file, "rt", encoding="utf-8") as lines:
            for last in lines:
                pass
        return json.loads(last).get(field) if last else None
    except (OSError, EOFError, ValueError, AttributeError):
        return None
