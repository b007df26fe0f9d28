import asyncio

import pytest

from storage.retry import retry_transient


def test_transient_errors_are_retried_until_success():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionRefusedError("down")
        return "ok"

    seen = []
    result = asyncio.run(
        retry_transient(flaky, what="db", first_backoff_s=0.001, on_retry=lambda *a: seen.append(a[2]))
    )
    assert result == "ok" and len(calls) == 4 and seen == [1, 2, 3]


def test_other_errors_propagate_at_once():
    calls = []

    async def broken():
        calls.append(1)
        raise ValueError("bad data")

    with pytest.raises(ValueError):
        asyncio.run(retry_transient(broken, what="db", first_backoff_s=0.001))
    assert len(calls) == 1


def test_give_up_after_bounds_the_wait():
    async def down():
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        asyncio.run(retry_transient(down, what="db", first_backoff_s=0.001, give_up_after_s=0.02))


def test_a_concurrency_conflict_survives_pickling_with_its_fields():
    """Ray re-raises it in the consumer process: an exception that cannot be rebuilt arrives as an
    opaque UnserializableException and the consumer cannot tell why the batch failed."""
    import pickle

    from storage.event_store_contract import ConcurrencyConflict

    error = pickle.loads(pickle.dumps(ConcurrencyConflict("driver0001", 3, 5, "stream moved")))
    assert (error.stream_id, error.expected_version, error.found_version) == ("driver0001", 3, 5)
    assert "driver0001" in str(error)
