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
