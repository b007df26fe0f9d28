"""Risky-driving detectors used by `domain.trip_machine`, one module per family.

Pure functions over small mutable episode structs owned by the driver state: `harsh` (braking,
acceleration, cornering with hysteresis), `speeding` (banded episodes), `phone` (use while moving),
`crash` (trigger + pre/post buffers) and `night` (local-time night exposure).
"""
