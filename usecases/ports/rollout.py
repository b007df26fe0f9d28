"""Ports of a staged rollout (usecases/rollout.py): the two sides, the split every replica reads, the canary's
health as Prometheus sees it, and waiting."""

from __future__ import annotations

from typing import Protocol

from domain.rollout import SideHealth, TrafficSplit


class DeployFailed(Exception):
    """The canary (or the promoted build) could not be deployed or does not answer: the reason, for the operator."""


class RolloutSides(Protocol):
    canary_app: str

    async def deploy_canary(self, version: str) -> None:
        """Deploy the new build as the canary app, receiving no traffic yet; raise DeployFailed."""
        ...

    async def check_canary(self) -> None:
        """One request through the ingress to the canary; raise DeployFailed when it does not answer well."""
        ...

    async def promote(self, version: str) -> None:
        """Make the stable side run the new build (while the split still sends everyone to the canary)."""
        ...

    async def remove_canary(self) -> None:
        ...


class TrafficSplits(Protocol):
    async def begin(self, split: TrafficSplit) -> TrafficSplit | None:
        """Write the first split unless a rollout of the target is under way: None, else the split in force."""
        ...

    async def write(self, split: TrafficSplit) -> None:
        ...

    async def clear(self, target: str) -> None:
        ...


class CanaryHealth(Protocol):
    async def health(self, canary_app: str, window_s: float) -> SideHealth:
        ...


class Waiter(Protocol):
    def monotonic_s(self) -> float:
        ...

    async def sleep(self, seconds: float) -> None:
        ...
