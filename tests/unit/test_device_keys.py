"""Device keys (domain.device_keys): the format names its device, only the digest is kept, anything else is no key."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from domain.device_keys import SECRET_BYTES, device_of, issue_key, key_digest, key_matches

DEVICE = uuid.UUID("abcdef12-3456-7890-abcd-ef1234567890")


def test_a_key_names_its_device_and_its_digest_is_sha256_of_the_whole_key():
    issued = issue_key(DEVICE, bytes(range(SECRET_BYTES)))
    assert issued.key.startswith(f"adk1.{DEVICE.hex}.") and len(issued.key) == 81
    assert device_of(issued.key) == DEVICE
    assert issued.digest == hashlib.sha256(issued.key.encode()).digest() == key_digest(issued.key)
    assert key_matches(issued.key, issued.digest)


def test_another_secret_for_the_same_device_does_not_match():
    first, second = issue_key(DEVICE, b"\x01" * SECRET_BYTES), issue_key(DEVICE, b"\x02" * SECRET_BYTES)
    assert device_of(second.key) == DEVICE and not key_matches(second.key, first.digest)


def test_a_secret_must_be_256_bits():
    with pytest.raises(ValueError, match="32 random bytes"):
        issue_key(DEVICE, b"short")


GOOD = issue_key(DEVICE, b"\x07" * SECRET_BYTES).key


@pytest.mark.parametrize("text", [
    "", "adk1", GOOD[:-1], GOOD + "A", GOOD.replace("adk1", "adk2"), GOOD.replace(DEVICE.hex, DEVICE.hex.upper()),
    GOOD.replace(DEVICE.hex, "z" * 32), GOOD[:-1] + "=", GOOD[:-1] + "é", GOOD.replace(".", "_"),
    "Bearer " + GOOD[7:], "x" * 81, "adk1." + "0" * 32 + "." + "a" * 42 + "\n",
])
def test_anything_but_a_well_formed_key_names_no_device(text):
    assert device_of(text) is None
