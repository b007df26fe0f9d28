"""Settings of a staged rollout (`autoins rollout`, docs/OPERATIONS.md "Staged rollout"), a group of
`config.settings.Settings` (which inherits them: same environment variables, same validation), kept apart so
settings.py stays within the house's module size."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RolloutSettings(BaseModel):
    # Staged rollout (`autoins rollout`, docs/OPERATIONS.md): steps, soak per step, plan §12's triggers judged on the
    # canary over `rollout_window_s`, and how long the old side stays after 100 %. `rollout_role`/`rollout_app_name`
    # are set by the rollout on the canary's own settings, never by hand.
    rollout_steps: str = "10,50,100"
    rollout_soak_s: float = Field(default=120.0, gt=0)
    rollout_check_interval_s: float = Field(default=5.0, gt=0)
    rollout_window_s: float = Field(default=60.0, gt=0)
    rollout_max_error_rate: float = Field(default=0.01, ge=0, le=1)
    rollout_max_p95_ms: float = Field(default=300.0, gt=0)
    rollout_min_requests: int = Field(default=20, ge=1)
    rollout_keep_old_s: float = Field(default=600.0, ge=0)
    rollout_split_check_s: float = Field(default=1.0, gt=0)  # each replica reads the split at most this often
    rollout_forward_timeout_s: float = Field(default=10.0, gt=0)
    rollout_role: Literal["stable", "canary"] = "stable"
    rollout_app_name: str = "api"
    build_version: str = "dev"  # the label of the code a side runs (`autoins rollout --to`), in /health
