"""What the export does with answers a real tenant should not give: a `total` larger than the list,
a 200 that is a proxy's HTML page, a `Retry-After` that is no number. Each is one line, never a
traceback, and never an endless run."""

from __future__ import annotations

import json

import pytest

from test_export import exports

from batchrunner.auth0.pacing import FIRST_WAVE

# Nothing here concerns the database: SQLite alone keeps the suite short.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def verdict(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@SQLITE_ONLY
def test_a_total_larger_than_the_list_fails_at_the_first_short_page(runner, tenant, tmp_path):
    app = tenant.tenant
    app.set_clients(250)
    app.unlisted_clients = 5000  # 53 pages reported, 3 listed
    result = runner("run-job", "export-clients")
    assert result.returncode == 1
    assert verdict(result) == (
        "runner: export-clients failed (run 1): the pages of clients ended early (page 3 of 53 held 50, not 100): "
        "they changed during the export; run again"
    )
    assert "Traceback" not in result.stderr
    assert app.api_requests <= 3 + 16  # the pages up to the short one, and at most those in flight
    [run] = json.loads(runner("history", "--json").stdout)
    assert run["status"] == "failed"
    assert exports(tmp_path) == {}


@SQLITE_ONLY
def test_a_short_first_page_asks_for_no_other_than_the_one_sent_beside_it(runner, tenant):
    app = tenant.tenant
    app.set_clients(30)
    app.unlisted_clients = 200
    result = runner("run-job", "export-clients")
    assert result.returncode == 1
    assert "the pages of clients ended early (page 1 of 3 held 30, not 100)" in verdict(result)
    assert app.api_requests <= FIRST_WAVE  # page 0, and page 1 sent with it before `total` was known


@SQLITE_ONLY
def test_an_absurd_total_is_refused_before_paging(runner, tenant):
    app = tenant.tenant
    app.unlisted_clients = 10**12  # a server that would have the runner page for ever
    result = runner("run-job", "export-clients", timeout=30)
    assert result.returncode == 1
    assert verdict(result) == (
        f"runner: export-clients failed (run 1): the Management API reported {10**12 + 25} clients, more than the "
        "1000000 the runner pages through; is AUTH0_DOMAIN an Auth0 tenant?"
    )
    assert app.api_requests <= FIRST_WAVE


@SQLITE_ONLY
def test_a_200_with_an_html_page_is_one_line(runner, tenant, tmp_path):
    tenant.tenant.set_clients(150)  # two pages: whichever of the first two asked gets the page, it is needed
    tenant.tenant.answer_html_next("/api/v2/clients")
    result = runner("run-job", "export-clients")
    assert result.returncode == 1
    assert verdict(result) == (
        "runner: export-clients failed (run 1): GET /api/v2/clients answered HTTP 200 with text/html, not JSON "
        "(a proxy's or firewall's page?); check AUTH0_DOMAIN and RUNNER_HTTPS_PROXY"
    )
    assert "Traceback" not in result.stderr
    assert exports(tmp_path) == {}


@pytest.mark.parametrize("path", ["/api/v2/clients", "/oauth/token"])
@SQLITE_ONLY
def test_a_retry_after_that_is_no_number_is_a_429_like_any_other(runner, tenant, tmp_path, path):
    # "²" passes str.isdigit() but not float(): it crashed the run with a traceback.
    tenant.tenant.fail_next(path, [429], retry_after="²")
    result = runner("run-job", "export-clients")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # After each line's timestamp, whose milliseconds may read 429.
    assert len([line for line in result.stderr.splitlines() if "429" in line.partition(" ")[2]]) == (1 if path.startswith("/api") else 0)
    assert "clients-latest.csv" in exports(tmp_path)


@pytest.mark.parametrize("content, charset", [
    (b'{"clients": [{"name": "App 1"}], "total": 1}', "utf-8"),
    ('{"name": "Caf\u00e9 \u6771\u4eac"}'.encode(), "utf-8"),
    (b'{"name": "half an emoji \\ud83d"}', "utf-8"),  # a lone surrogate: orjson refuses it, json reads it
    (b'{"ratio": NaN}', "utf-8"),
    ('{"name": "Caf\u00e9"}'.encode("latin-1"), "iso-8859-1"),  # not UTF-8, as the header says
    ('{"name": "Caf\u00e9"}'.encode(), "iso-8859-1"),  # bytes that are UTF-8 too, read as the header says
])
def test_a_body_reads_as_the_json_module_read_it(content, charset):
    """Pages are decoded by orjson (a fifth of serve's CPU was the json module); whatever the json
    module read before reads the same, so no answer that worked fails now."""
    from batchrunner.auth0.http import decode_json

    response = _response(content, charset)
    assert decode_json(response) == _response(content, charset).json()


def test_a_body_that_is_no_json_is_a_value_error_as_before():
    from batchrunner.auth0.http import decode_json

    with pytest.raises(ValueError):
        decode_json(_response(b"<html>proxy</html>", "utf-8"))


def _response(content: bytes, charset: str):
    import requests

    response = requests.Response()
    response._content, response.status_code = content, 200
    response.headers["Content-Type"] = f"application/json; charset={charset}"
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)  # as requests' adapter sets it
    return response
