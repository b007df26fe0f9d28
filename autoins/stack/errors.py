"""Why `autoins stack` refuses or fails: each error is one line a person can act on."""

from __future__ import annotations

from autoins.errors import UserFacingError


class StackError(UserFacingError):
    """Base of every stack failure; the CLI prints the message as one line and exits 1."""


class BadServiceUrl(StackError):
    """A configured URL we cannot parse (malformed port, missing host, unsupported form)."""


class PortTaken(StackError):
    """Something that is not the expected service answers on the configured port."""


class ServiceRefused(StackError):
    """The expected service answers but will not serve us (bad credentials, unknown role)."""


class RemoteServiceDown(StackError):
    """A URL that does not answer and that we will not start a server for (not loopback)."""


class BinaryNotFound(StackError):
    """No usable server binary (system, wheel or override)."""


class ServerStartFailed(StackError):
    """A server we launched exited, or did not answer within the start timeout."""


class ServerStopFailed(StackError):
    """A server we launched did not exit within the stop timeout, even after SIGKILL."""


class StackBusy(StackError):
    """Another `autoins stack up|down` holds the data dir's lock."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a server's message fits the CLI's one-line contract."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
