"""Whose readings a caller of the ingest route may post (domain.ingest_caller.IngestCaller): a device its
driver's, a driver their own, an admin anyone's; a batch with any other driver's reading is refused whole."""

from __future__ import annotations

import uuid

from domain.ingest_caller import IngestCaller

DEVICE = IngestCaller("device", "d1", uuid.uuid4())


def test_a_device_posts_its_drivers_readings():
    assert DEVICE.refusal(["d1", "d1"]) is None and DEVICE.refusal([]) is None


def test_one_reading_of_another_driver_refuses_the_whole_batch_and_says_so():
    message = DEVICE.refusal(["d1", "d2", "d3", "d2"])
    assert message.startswith("a device may post only its driver's readings (d1)")
    assert "2 other driver(s)" in message and "nothing was accepted" in message


def test_a_driver_is_told_in_their_own_words_and_an_admin_posts_anyones():
    assert IngestCaller("driver", "d1").refusal(["d2"]).startswith("a driver may post only their own readings (d1)")
    assert IngestCaller("admin", None).refusal(["d1", "d2"]) is None
