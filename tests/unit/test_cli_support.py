"""Error texts are printed as text, never as console markup (HAProxy and Ray errors contain `[...]`)."""

from __future__ import annotations

import pytest
import typer

from autoins import cli_support


def test_an_error_with_brackets_prints_literally(capsys):
    text = "[ALERT] (1234) : Starting proxy [/bold] cannot bind socket [0.0.0.0:8000]"
    exit_ = cli_support.fail(text)
    assert isinstance(exit_, typer.Exit)
    assert text in capsys.readouterr().err.replace("\n", "")


def test_user_errors_with_markup_like_text_exit_with_its_code():
    @cli_support.user_errors
    def boom():
        raise cli_support.UserFacingError("bad [/red] thing [x]")

    with pytest.raises(typer.Exit) as caught:
        boom()
    assert caught.value.exit_code == 1


def test_the_live_view_says_how_many_actors_are_restarting_and_survives_missing_counters():
    from rich.console import Console

    from autoins.serve import status_table

    status = {"durable": 10, "lag": 0, "dead_lettered": 0, "rewinds": 1, "restarting": 2}
    console = Console(width=200, record=True)
    console.print(status_table(status, {}, -5.0, 3.0))
    text = console.export_text()
    assert "2 restarting" in text and "?" in text
