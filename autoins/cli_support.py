"""What every CLI command shares: settings parsed once, logging, one-line errors, asyncio."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from autoins.errors import UserFacingError
from config.logging import configure_logging
from config.settings import Settings, SettingsError, load_settings

# Piped output (CI logs, `| less`) gets a wide console instead of Rich's 80-column default, so URLs
# in tables are not broken across lines.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
T = TypeVar("T")


def settings_from_env(root: Path | None = None) -> Settings:
    """Parse settings at the entrypoint; a bad value is one line naming the key, exit 2."""
    try:
        settings = load_settings(root)
    except SettingsError as error:
        err_console.print(f"[red]configuration error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)


def user_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn UserFacingError (and Ctrl-C) into one line and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except UserFacingError as error:
            raise fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
