"""Reuse, start, wait or refuse: the `stack up` decision for one service, as data. Pure.

Inputs are what the probe saw and whether a server this stack started is still alive for that
service; the orchestration (services.py) acts on the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from autoins.stack.endpoints import Endpoint
from autoins.stack.errors import PortTaken, RemoteServiceDown, ServiceRefused, StackError
from autoins.stack.probes import Probe, ProbeState


class Action(StrEnum):
    REUSE = "reuse"  # it answers: use it as it is
    CREATE_DATABASE = "create_database"  # PostgreSQL answers, the URL's database is missing
    START = "start"  # silent loopback address: launch an embedded server on the configured port
    WAIT = "wait"  # silent, but the server we launched earlier is alive: wait for it to answer
    REFUSE = "refuse"  # an error; nothing may be started


@dataclass(frozen=True)
class Decision:
    action: Action
    error: StackError | None = None  # set for REFUSE only

    def raise_if_refused(self) -> None:
        if self.error is not None:
            raise self.error


def decide(endpoint: Endpoint, seen: Probe, ours_alive: bool = False) -> Decision:
    """What `stack up` does for one service; a REFUSE carries the one-line error to raise."""
    label = endpoint.service.label
    where = f"{endpoint.service.setting} {endpoint.url}"
    if seen.state is ProbeState.READY:
        return Decision(Action.REUSE)
    if seen.state is ProbeState.NO_DATABASE:
        return Decision(Action.CREATE_DATABASE)
    if seen.state is ProbeState.REFUSED:
        return Decision(Action.REFUSE, ServiceRefused(f"{where}: {label} answers but refuses us: {seen.detail}"))
    if seen.state is ProbeState.FOREIGN:
        return Decision(
            Action.REFUSE,
            PortTaken(
                f"{where}: port {endpoint.port} on {endpoint.host} is taken by something that is not "
                f"{label} ({seen.detail}); stop it or point {endpoint.service.setting} at another port"
            ),
        )
    if ours_alive:
        return Decision(Action.WAIT)
    if not endpoint.startable:
        why = "is not a single loopback TCP address" if endpoint.tcp else "is not a plain TCP address"
        return Decision(
            Action.REFUSE,
            RemoteServiceDown(
                f"{where} does not answer ({seen.detail}) and {why}, so the stack will not start a "
                f"server for it: start {label} there or point {endpoint.service.setting} elsewhere"
            ),
        )
    return Decision(Action.START)
