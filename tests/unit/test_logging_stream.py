"""Logging writes to the stderr of the moment: an in-process CLI run (CliRunner) that configured logging while
stderr was its own stand-in, then closed it, must not break every later log line in the process."""

from __future__ import annotations

import io
import sys

import pytest

from config.logging import configure_logging, get_logger

pytestmark = pytest.mark.unit


def test_a_closed_stand_in_stderr_does_not_break_later_log_lines():
    real, stand_in, later = sys.stderr, io.StringIO(), io.StringIO()
    try:
        sys.stderr = stand_in
        configure_logging("INFO", json=True, force=True)
        get_logger("during").info("inside_the_cli_run")
        assert "inside_the_cli_run" in stand_in.getvalue()
        stand_in.close()
        sys.stderr = later
        get_logger("after").info("after_the_cli_run")
        assert "after_the_cli_run" in later.getvalue()
    finally:
        sys.stderr = real
        configure_logging("INFO", json=True, force=True)
