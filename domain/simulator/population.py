"""A population of simulated drivers: profiles plus the ground truth behind them. Pure, deterministic."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from domain.simulator.profiles import DriverProfile, draw_profile
from domain.simulator.truth import DEFAULT_TRUTH, DriverTruth, TruthModel, crash_rate_per_driving_h, truth_row

MAX_DRIVER_NO = (1 << 20) - 1  # driver_no is packed under ts_ms in the 64-bit merge key


@dataclass(frozen=True, slots=True)
class Population:
    """Drivers `first_driver_no … first_driver_no + n − 1`; profile i depends only on (seed, i)."""

    seed: int
    profiles: tuple[DriverProfile, ...]
    truth_model: TruthModel = DEFAULT_TRUTH

    @classmethod
    def generate(
        cls, n_drivers: int, seed: int, *, first_driver_no: int = 1, truth_model: TruthModel = DEFAULT_TRUTH
    ) -> Population:
        """Draw `n_drivers` profiles; each driver's crash hazard is set from its truth λ."""
        if n_drivers < 0:
            raise ValueError(f"n_drivers must be ≥ 0, got {n_drivers}")
        if first_driver_no < 1 or first_driver_no + n_drivers - 1 > MAX_DRIVER_NO:
            raise ValueError(f"driver numbers must lie in 1..{MAX_DRIVER_NO}, got first_driver_no={first_driver_no}")
        if seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {seed}")
        profiles = []
        for no in range(first_driver_no, first_driver_no + n_drivers):
            base = draw_profile(seed, no)
            crash = crash_rate_per_driving_h(base, truth_model)
            profiles.append(msgspec.structs.replace(base, crash_per_driving_h=crash))
        return cls(seed=seed, profiles=tuple(profiles), truth_model=truth_model)

    def __len__(self) -> int:
        return len(self.profiles)

    @property
    def driver_ids(self) -> list[str]:
        return [p.driver_id for p in self.profiles]

    def truth_table(self) -> list[DriverTruth]:
        """Latent risk, λ (expected claims per year) and propensities, one row per driver."""
        return [truth_row(p, self.truth_model) for p in self.profiles]
