"""The console's browser tests: Debian's chromium driven by Playwright (by `executable_path`: Playwright's own
browser download cannot work here), console errors collected per page, and a skip that says why when either is
missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Debian's chromium is not installed (`make install` installs it as root: apt-get install chromium); "
                "the console's browser tests need it")
    raise AssertionError  # unreachable


@dataclass
class Console:
    """Errors the page reported: console.error messages and uncaught exceptions, with the URL they came from."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # substrings of errors a step causes on purpose

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


@contextmanager
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


def watch_console(page) -> Console:
    console = Console()
    page.on("console", lambda m: console.errors.append(f"{m.text} @ {m.location.get('url', '')}")
            if m.type == "error" else None)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    return console
