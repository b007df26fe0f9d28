"""Acceptance (issue 6): the model ranks held-out drivers within 10 % of the oracle that knows each
driver's true claim frequency, both judged against the same realized claims.

The features of 2,000 simulated drivers × 10 days (seed 7) come from the real path — simulator readings
folded by the trip machine into `domain.features` — and ship in autoins/data/training-cache (`autoins
train` reads them too) because producing them takes ~5–15 minutes of CPU (≈ 11 µs per reading, ≈ 3,600
readings per driver-day). A slice of rows is recomputed here to prove the file is that output. Regenerate
with `autoins train --no-cache --seed 7 --drivers 2000 --days 10` and copy
`.autoins/training-cache/…seed7-drivers2000-days10.npy` over it.
"""

from __future__ import annotations

import numpy as np
import pytest

from autoins.train import SHIPPED_DATA_DIR
from domain.features import FEATURE_SPEC_VERSION
from domain.risk_model.dataset import DatasetSpec, label, simulate_features
from domain.risk_model.spec import TrainingParams
from domain.risk_model.training import train
from storage.files.model_artifacts import feature_cache_path

SPEC = DatasetSpec(seed=7, drivers=2_000, days=10, exposure_years=5.0)
FIXTURE = feature_cache_path(SHIPPED_DATA_DIR, SPEC.seed, SPEC.drivers, SPEC.days, FEATURE_SPEC_VERSION)


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return np.load(FIXTURE, allow_pickle=False)


@pytest.mark.parametrize("first_driver_no", [1, 1_999])
def test_the_stored_features_are_what_the_simulator_and_trip_machine_produce(features, first_driver_no):
    chunk = simulate_features(SPEC.seed, first_driver_no, 2, SPEC.days)
    assert np.array_equal(chunk.features, features[first_driver_no - 1 : first_driver_no + 1])


def test_model_gini_is_within_10_percent_of_the_oracle_on_held_out_drivers(features):
    result = train(label(SPEC, features), TrainingParams(seed=7), {"drivers": 2_000.0})
    m = result.spec.metrics
    print(f"family {result.spec.family}: gini {m['gini']:.4f}, oracle {m['oracle_gini']:.4f}, "
          f"ratio {m['gini_ratio']:.4f}, vs truth {m['gini_vs_truth']:.4f}, claims {m['claims']:g}")
    assert m["claims"] > 500  # enough realized claims that the comparison is not noise
    assert m["gini"] >= 0.9 * m["oracle_gini"]
