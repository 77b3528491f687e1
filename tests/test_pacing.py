"""The pacer's model of the Management API's token bucket, with time passed in."""

import pytest

from batchrunner.pacing import Pacer


def headers(remaining, limit=10):
    return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining)}


def test_sends_freely_until_the_server_reports_a_limit():
    pacer = Pacer()
    assert pacer.wait_time(0.0) == 0
    pacer.sent()
    assert pacer.wait_time(0.0) == 0


def test_spends_what_remains_then_waits_at_the_measured_rate():
    pacer = Pacer()
    seq = pacer.sent()
    pacer.observe(seq, headers(3), now=0.0)
    for _ in range(3):
        assert pacer.wait_time(0.0) == 0
        pacer.sent()
    assert pacer.wait_time(0.0) > 0  # nothing known to remain, no rate measured yet
    # From 3 left at t=0, 8 requests later and 0.5 s on, 5 were left: it refilled 10 in 0.5 s.
    pacer.observe(4, headers(2), now=0.1)
    for _ in range(5):
        pacer.sent()
    for answered in (2, 3, 5, 6, 7, 8):
        pacer.observe(answered, {}, now=0.4)
    pacer.observe(9, headers(5), now=0.5)
    assert 19 <= pacer.rate <= 20
    assert pacer.wait_time(0.5) == 0


def test_requests_in_flight_count_against_what_remains():
    pacer = Pacer()
    pacer.observe(pacer.sent(), headers(2), now=0.0)
    pacer.sent()
    pacer.sent()
    assert pacer.wait_time(0.0) > 0


def test_an_older_request_still_unanswered_counts_against_what_remains():
    # Request 1 may reach the server after request 2 was counted (threads race to the socket).
    pacer = Pacer()
    first, second = pacer.sent(), pacer.sent()
    pacer.observe(second, headers(1), now=0.0)
    assert pacer.wait_time(0.0) > 0
    pacer.observe(first, {}, now=0.01)
    assert pacer.wait_time(0.01) == 0


def test_threads_woken_together_take_the_last_request_once():
    pacer = Pacer()
    pacer.observe(pacer.sent(), headers(1), now=0.0)
    wait, seq = pacer.try_send(0.0)
    assert wait == 0 and seq is not None
    wait, seq = pacer.try_send(0.0)
    assert wait > 0 and seq is None


def test_a_late_answer_to_an_older_request_does_not_overwrite_a_newer_count():
    pacer = Pacer()
    first, second = pacer.sent(), pacer.sent()
    pacer.observe(second, headers(0), now=0.1)
    pacer.observe(first, headers(9), now=0.2)
    assert pacer.wait_time(0.2) > 0


def test_a_bucket_drained_before_a_rate_is_known_is_probed_not_waited_on_forever():
    pacer = Pacer()
    pacer.observe(pacer.sent(), headers(0), now=5.0)  # another client had used the tenant's allowance
    assert pacer.wait_time(5.0) == 0.25
    assert pacer.wait_time(5.1) == pytest.approx(0.15)
    assert pacer.wait_time(5.25) == 0  # one probe goes out
    pacer.sent()
    assert pacer.wait_time(5.25) > 0  # and the others wait for its answer


def test_a_bucket_of_one_is_measured():
    pacer = Pacer()
    pacer.observe(pacer.sent(), headers(0, limit=1), now=0.0)
    pacer.observe(pacer.sent(), headers(0, limit=1), now=1.0)
    assert pacer.rate is not None and 0.9 <= pacer.rate <= 1.0
