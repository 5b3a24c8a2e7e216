"""The suspect rule, as a pure class: jobs in flight through two worker deaths
run one at a time per worker; every other job runs in order, whatever its
attempt number (failed attempts and stops are no deaths)."""

from __future__ import annotations

from collections import deque

from jobcore.records import Delivery
from jobcore.worker.suspects import Suspects


def d(n: int, attempt: int, deaths: int | None = None) -> Delivery:
    """Delivery ``n`` on ``attempt``; unless told, every earlier attempt ended in a death."""
    return Delivery("t", f"{n}-0", b"", attempt, attempt - 1 if deaths is None else deaths)


def test_a_suspect_lived_through_two_deaths_and_is_within_max_attempts() -> None:
    s = Suspects(max_attempts=5)
    assert [s.is_suspect(d(0, a)) for a in range(1, 8)] == [False, False, True, True, True, False, False]
    assert Suspects(max_attempts=2).from_deaths == 1  # with two attempts, one death is enough
    assert Suspects(max_attempts=2).is_suspect(d(0, 2))
    assert not Suspects(max_attempts=1).is_suspect(d(0, 1))


def test_failed_attempts_and_stops_are_no_evidence() -> None:
    s = Suspects(max_attempts=10)
    assert not s.is_suspect(d(0, 5, deaths=0))  # failed four times: the handler raised, nobody died
    assert not s.is_suspect(d(0, 5, deaths=1))  # failed three times, then one death
    assert s.is_suspect(d(0, 5, deaths=2))


def test_healthy_jobs_run_in_order_and_pass_a_waiting_suspect() -> None:
    s = Suspects(max_attempts=5)
    buffer = deque([d(1, 1), d(2, 3), d(3, 3), d(4, 1), d(5, 2)])
    assert s.next_job(buffer) == d(1, 1)
    assert s.next_job(buffer) == d(2, 3) and s.running == ("t", "2-0")  # the first suspect starts
    assert s.next_job(buffer) == d(4, 1)  # the second waits; healthy ones go past it
    assert s.next_job(buffer) == d(5, 2)
    assert s.next_job(buffer) is None and list(buffer) == [d(3, 3)]
    assert not s.finished(d(4, 1))
    assert s.finished(d(2, 3)) and s.running is None
    assert s.next_job(buffer) == d(3, 3) and not buffer


def test_a_worker_takes_one_more_suspect_only_when_none_runs_or_waits_and_a_slot_is_free() -> None:
    s = Suspects(max_attempts=5)
    assert s.can_take(deque(), free=1)
    assert not s.can_take(deque(), free=0)
    assert not s.can_take(deque([d(1, 4)]), free=3)  # one waits already
    assert s.can_take(deque([d(1, 1)]), free=3)
    s.next_job(deque([d(2, 3)]))
    assert not s.can_take(deque(), free=3)  # one runs
