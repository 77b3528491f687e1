"""The job toolkit (README, "Write your own job"): lists, durable state, outputs, as a job's author uses them."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from batchrunner.auth0 import asyncjobs
from batchrunner.errors import ApiError
from batchrunner.outputs.atomic import clean_leftovers
from batchrunner.outputs.job_state import JobState
from batchrunner.outputs.writers import Key, point_link, read_rows, row, rows, staged_directory, write_csv, write_jsonl_gz
from conftest import SQLITE_ONLY

GOLDEN = Path(__file__).parent / "data" / "clients-seed7-120.csv"


@SQLITE_ONLY
def test_export_clients_writes_the_same_bytes_as_before_the_toolkit(runner, tenant, tmp_path):
    # The golden file was written by export-clients before it moved onto the toolkit (seed 7, 120 apps),
    # then changed only in the callbacks the stand-in plants for tenant-checks (an http:// and a loopback one).
    tenant.tenant.set_clients(120)
    assert runner("run-job", "export-clients").returncode == 0
    assert (tmp_path / "exports" / "clients-latest.csv").read_bytes() == GOLDEN.read_bytes()


def test_csv_cells_follow_one_rule_set(tmp_path):
    columns = [("id", "id"), ("nested", "a.b"), ("flag", "flag"), ("list", "list"), ("computed", lambda i: i["id"] * 2)]
    items = [{"id": "=1", "a": {"b": "x y"}, "flag": True, "list": ["p q", "r"]}, {"id": "z", "flag": False}]
    assert write_csv(tmp_path / "t.csv", columns, items) == 2
    data = (tmp_path / "t.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,nested,flag,list,computed\r\n")
    assert list(read_rows(tmp_path / "t.csv")) == [
        {"id": "'=1", "nested": "x y", "flag": "true", "list": "p%20q r", "computed": "'=1=1"},
        {"id": "z", "nested": "", "flag": "false", "list": "", "computed": "zz"},
    ]


def test_rows_made_a_column_at_a_time_are_exactly_the_cells_of_row():
    # The fast path must not change a byte: every kind of value, formulas at the start of a value
    # and after a newline inside one, keys with dots, and more items than one batch.
    awkward = ["plain", "", "=1+1", "+x", "-y", "@z", "\tt", "\rr", "a\n=b", "a\n", " =no", None, True, False,
               0, 7, -3, 1.5, -0.5, ["a b", "c"], {"k": "=v"}, "Zoë"]
    items = [{"s": awkward[i % len(awkward)], "d.k": awkward[(i * 7) % len(awkward)], "n": {"x": "=" if i % 5 else "ok"},
              "clean": f"v{i}", "flag": i % 3 == 0, "maybe": None if i % 4 else i}
             for i in range(2_345)] + ["not an object", {"s": "-1"}]
    columns = [("s", "s"), ("dk", Key("d.k")), ("nx", "n.x"), ("clean", "clean"), ("flag", "flag"),
               ("maybe", "maybe"), ("fn", lambda i: i.get("s") if isinstance(i, dict) else "=f")]
    assert list(rows(items, columns)) == [tuple(row(item, columns)) for item in items]
    assert list(rows(items[:3], [])) == [(), (), ()]


def test_list_columns_made_a_column_at_a_time_are_exactly_the_cells_of_row():
    # Callbacks, origins and grant types are joined in C loops; a batch with an item that is no
    # string, holds a space or starts a formula must still come out as cell() writes it.
    lists = [["https://a/cb", "https://b/cb"], [], None, ("x", "y"), ["=cmd", "b"], ["a", "@b"], ["one"],
             ["a b", "c"], [1, "two"], [True], [None], ["tab\there"], ["line\n=2"], ["Zoë", "ü"]]
    columns = [("urls", "urls"), ("nested", "n.urls")]
    for start in range(len(lists)):
        # Batches of one kind (all clean: the fast path) and batches with each awkward list among clean ones.
        items = [{"urls": lists[(start + i) % len(lists)] if i % 9 == 0 else ["https://c/cb", f"https://d/{i}"],
                  "n": {"urls": lists[start] if i == 50 else ["implicit", "code"]}} for i in range(150)]
        assert list(rows(items, columns)) == [tuple(row(item, columns)) for item in items]


def test_csv_text_made_a_batch_at_a_time_is_exactly_what_the_csv_module_writes():
    # Rows of bare cells are joined by hand (README, "Development"); any cell the csv module would
    # quote, and any cell that is no string, must still come out byte for byte as it writes them.
    import csv
    import io

    from batchrunner.outputs.writers import CsvText

    awkward = ["plain", "", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", " spaced ", "Zoë", "=1", ",", '"', "\r\n"]
    rows_ = [tuple(awkward[(i * k) % len(awkward)] for k in range(1, 1 + i % 5)) for i in range(400)]
    rows_ += [("",), (), ("a", 1), ("b", None), ("c", 2.5), ("x", "y")]
    clean = [(f"id{i}", "https://a/cb https://b/cb", "", "true") for i in range(250)]
    text = CsvText()
    lone = [[("a", 'say "hi"'), ("b", "c")], [("",), ("a",)], [("a",), ()], [("a", "b\rc")], [("a", "b\nc")]]
    for batch in [rows_[i:i + 37] for i in range(0, len(rows_), 37)] + lone + [clean[:100], clean, clean[:1], []]:
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(batch)
        assert text.of(batch) == expected.getvalue(), batch


def test_jsonl_gz_holds_each_item_exactly_as_given(tmp_path):
    items = [{"log_id": "1", "détails": {"ip": "::1"}}, {"log_id": "2", "n": [1, 2]}]
    assert write_jsonl_gz(tmp_path / "a.jsonl.gz", items) == 2
    lines = gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()).decode().splitlines()
    assert [json.loads(line) for line in lines] == items
    assert not list(tmp_path.glob(".*"))


def test_a_staged_directory_appears_whole_or_not_at_all(tmp_path):
    final = tmp_path / "snap" / "one"
    with pytest.raises(RuntimeError):
        with staged_directory(final) as staged:
            (staged / "a.csv").write_text("half")
            raise RuntimeError("killed half-way")
    assert not final.exists() and list((tmp_path / "snap").iterdir()) == []
    with staged_directory(final) as staged:
        (staged / "a.csv").write_text("whole")
        assert not final.exists()
    assert (final / "a.csv").read_text() == "whole"
    # What a SIGKILL leaves: a hidden directory, which the next run removes.
    leftover = tmp_path / "snap" / ".two.abc.partial"
    leftover.mkdir()
    assert clean_leftovers(tmp_path / "snap") == [leftover] and not leftover.exists()


def test_a_staged_directory_is_removed_when_the_process_ends_with_it_unfinished(tmp_path):
    # `serve` past its stop timeout removes what its writers leave (README, "The export"): a set of
    # files as much as one file. In a child: after remove_open_partials the process writes nothing more.
    code = ("import sys; from pathlib import Path; from batchrunner.outputs.atomic import remove_open_partials\n"
            "from batchrunner.outputs.writers import staged_directory\n"
            "with staged_directory(Path(sys.argv[1]) / 'one') as staged:\n"
            "    (staged / 'a.csv').write_text('half')\n"
            "    print(remove_open_partials() == [staged], staged.exists())\n"
            "    raise SystemExit(0)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "True False\n"), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_latest_is_a_relative_link_replaced_in_place(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    point_link(tmp_path / "latest", "a")
    point_link(tmp_path / "latest", "b")
    assert os.readlink(tmp_path / "latest") == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "latest"]


def test_state_survives_and_is_per_job(database_url):
    from batchrunner.store.database import open_database

    db = open_database(database_url)
    JobState(db, "export-logs").put(checkpoint="900", files=3)
    JobState(db, "other").put(checkpoint="1")
    assert JobState(db, "export-logs").get("checkpoint") == "900"
    assert JobState(db, "export-logs").get("files") == 3
    JobState(db, "export-logs").put(files=None)
    assert JobState(db, "export-logs").get("files", "gone") == "gone"


@pytest.mark.parametrize("killed_after", ["intent", "rename"])
def test_an_output_and_its_state_agree_whenever_the_process_dies(database_url, tmp_path, killed_after):
    from batchrunner.store.database import open_database

    db = open_database(database_url)
    state = JobState(db, "archive")
    state.put(checkpoint="100")
    staged, final = tmp_path / ".batch.partial", tmp_path / "batch.jsonl"
    staged.write_text("events 101-200")
    # A publish cut short: the intent is committed; then the process dies before or after its rename.
    state.put(_publishing={"staged": str(staged), "final": str(final), "values": {"checkpoint": "200"}})
    if killed_after == "rename":
        staged.rename(final)
    done = JobState(db, "archive").recover()
    if killed_after == "rename":
        assert final.exists() and state.get("checkpoint") == "200" and "recorded batch.jsonl" in done
    else:
        assert not final.exists() and not staged.exists() and state.get("checkpoint") == "100"
    assert state.get("_publishing") is None and state.recover() is None


def test_publish_renames_and_records_in_one_step(database_url, tmp_path):
    from batchrunner.store.database import open_database

    state = JobState(open_database(database_url), "archive")
    staged = tmp_path / ".b.partial"
    staged.write_text("x")
    state.publish(staged, tmp_path / "b", checkpoint="5")
    assert (tmp_path / "b").read_text() == "x" and state.get("checkpoint") == "5"
    staged.write_text("y")
    with pytest.raises(FileExistsError):
        state.publish(staged, tmp_path / "b", checkpoint="6")
    assert state.get("checkpoint") == "5"


def test_an_offset_list_yields_every_item_and_a_refusal_keeps_its_status(tenant, database_url):
    from batchrunner.auth0 import lists
    from batchrunner.auth0.lists import OFFSET, Listing

    api = _api(tenant, database_url)
    tenant.tenant.set_clients(30)
    clients = Listing("clients", "clients", OFFSET, ("read:clients",), params={"is_global": "false"}, unique="client_id")
    assert len(list(lists.items(api, clients))) == 30
    missing = Listing("no-such-list", "things", OFFSET, ("read:things",))
    with pytest.raises(ApiError) as failure:
        list(lists.items(api, missing))
    assert failure.value.status == 404


@SQLITE_ONLY  # nothing here concerns the database
def test_pages_waiting_for_the_rate_limit_take_turns_rather_than_each_asking_the_pacer(tenant, database_url, monkeypatch):
    # Sixteen pages in flight wait for room; only the one whose turn it is asks the pacer and sleeps
    # until its request may go (README, "Development"). When each asked 20 times a second, the asking
    # was a third of `serve`'s CPU with 8 runs at once.
    from batchrunner.auth0 import lists
    from batchrunner.auth0.lists import OFFSET, Listing
    from batchrunner.auth0.pacing import Pacer

    asked = []
    wait_time = Pacer.wait_time
    monkeypatch.setattr(Pacer, "wait_time", lambda pacer, now: asked.append(now) or wait_time(pacer, now))
    app = tenant.tenant
    app.set_clients(3_000)  # 30 pages
    app.rate, app.burst = 20, 5
    clients = Listing("clients", "clients", OFFSET, ("read:clients",), params={"is_global": "false"}, unique="client_id")
    assert len(list(lists.items(_api(tenant, database_url), clients))) == 3_000
    assert app.responses_429 == 0
    assert len(asked) <= 4 * app.api_requests, (len(asked), app.api_requests)


def _api(tenant, database_url):
    from batchrunner.auth0.api import ManagementApi
    from batchrunner.auth0.tokencache import cached_source
    from batchrunner.config import load_credentials
    from batchrunner.store.database import open_database

    credentials = load_credentials(tenant.settings())
    return ManagementApi(credentials.base_url, cached_source(open_database(database_url), credentials, "test"), credentials.client_id)


def test_gzip_json_lines_come_whole_across_chunks_and_a_bad_line_is_named():
    objects = [{"user_id": f"auth0|{i}", "name": "x" * (i % 300)} for i in range(3_000)]
    text = "".join(json.dumps(o) + "\n" + ("\n" if i == 1_500 else "") for i, o in enumerate(objects))
    assert list(asyncjobs.gzip_lines(io.BytesIO(gzip.compress(text.encode())), "job_1")) == objects
    assert list(asyncjobs.gzip_lines(io.BytesIO(gzip.compress(b'{"a": 1}')), "job_1")) == [{"a": 1}]  # no last newline
    damaged = text.replace(json.dumps(objects[2_000]), '{"user_id": ', 1)
    with pytest.raises(ApiError, match=r"^line 2002 of Auth0's job result is not JSON; run again$"):
        list(asyncjobs.gzip_lines(io.BytesIO(gzip.compress(damaged.encode())), "job_1"))
    with pytest.raises(ApiError, match="is not a whole gzip file"):
        list(asyncjobs.gzip_lines(io.BytesIO(gzip.compress(text.encode())[:-20]), "job_1"))


def test_a_publish_lands_only_on_the_state_it_began_from(database_url, tmp_path):
    from batchrunner.outputs.job_state import Superseded
    from batchrunner.store.database import open_database

    state = JobState(open_database(database_url), "archive")
    state.put(checkpoint="7")  # another run published while this one worked from 5
    staged = tmp_path / ".b.partial"
    staged.write_text("6 to 9")
    with pytest.raises(Superseded, match="^the checkpoint of archive moved on since this publish began"):
        state.publish(staged, tmp_path / "b", expect={"checkpoint": "5"}, checkpoint="9")
    assert staged.exists() and not (tmp_path / "b").exists() and state.get("checkpoint") == "7"
    assert state.get("_publishing") is None


def test_a_publish_by_a_run_marked_abandoned_lands_nowhere(database_url, tmp_path):
    from sqlalchemy import update

    from batchrunner.outputs.job_state import Superseded
    from batchrunner.runs import records as runs
    from batchrunner.store.database import open_database
    from batchrunner.store.schema import RunStatus, Trigger
    from batchrunner.store.schema import runs as runs_table

    db = open_database(database_url)
    run = runs.start(db, "archive", Trigger.MANUAL, None, {}, datetime.now(timezone.utc))
    with db.write() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run.run_id).values(status=RunStatus.ABANDONED.value))
    staged = tmp_path / ".b.partial"
    staged.write_text("x")
    with pytest.raises(Superseded, match=f"^run {run.run_id} of archive was marked abandoned while it worked"):
        JobState(db, "archive", run.run_id).publish(staged, tmp_path / "b", checkpoint="5")
    assert not (tmp_path / "b").exists() and JobState(db, "archive").get("checkpoint") is None


def test_a_final_name_that_exists_counts_as_published_when_it_says_what_it_holds(database_url, tmp_path):
    from batchrunner.store.database import open_database

    state = JobState(open_database(database_url), "archive")
    (tmp_path / "1-5").write_text("1 to 5")  # put in place by a run whose record was lost
    staged = tmp_path / ".b.partial"
    staged.write_text("1 to 5")
    state.publish(staged, tmp_path / "1-5", same_if_exists=True, checkpoint="5")
    assert not staged.exists() and (tmp_path / "1-5").read_text() == "1 to 5" and state.get("checkpoint") == "5"


@SQLITE_ONLY
def test_job_state_is_written_with_a_full_sync_on_sqlite(database_url):
    # A power loss rolls back SQLite's last commits under synchronous=NORMAL: a checkpoint behind its files.
    from sqlalchemy import event

    from batchrunner.store.database import open_database

    db = open_database(database_url)
    levels = []

    def seen(conn, cursor, statement, *args):
        if "job_state" in statement:
            levels.append(conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0])

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        JobState(db, "archive").put(checkpoint="5")
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert levels and set(levels) == {2}  # FULL
    with db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # other writes stay NORMAL
