"""The realism flag of `autoins simulate` and `autoins detection-report` (no services involved)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from autoins.cli import app
from autoins.errors import UserFacingError
from autoins.simulate import parse_realism
from domain.simulator.realism import PHONE


def test_realism_names_parse_to_their_config_and_unknown_ones_are_refused():
    assert parse_realism(None) is None and parse_realism("none") is None
    assert parse_realism("phone") is PHONE and parse_realism(" Phone ") is PHONE
    with pytest.raises(UserFacingError, match="--realism 'dashcam'"):
        parse_realism("dashcam")


def test_detection_report_prints_a_table_per_mode():
    result = CliRunner().invoke(app, ["detection-report", "--drivers", "3", "--days", "0.5", "--seed", "4",
                                      "--realism", "none", "--realism", "phone"])
    assert result.exit_code == 0, result.output
    assert "== realism none, 3 drivers x 0.5 days, seed 4" in result.output
    assert "== realism phone" in result.output and "false cornering at motorway speed" in result.output


def test_detection_report_refuses_an_unknown_mode_in_one_line():
    result = CliRunner().invoke(app, ["detection-report", "--realism", "dashcam"])
    assert result.exit_code == 1 and "dashcam" in result.output
