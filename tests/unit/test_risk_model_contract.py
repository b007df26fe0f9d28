"""The RiskModel contract on the in-memory fake (the Serve adapter runs it in test_risk_model_serve.py)."""

from __future__ import annotations

import pytest

from storage.memory.risk_model import FakeRiskModel
from tests.contracts.risk_model_contract import *  # noqa: F403


@pytest.fixture
def risk_model():
    return FakeRiskModel()


@pytest.fixture
def unavailable_risk_model():
    return FakeRiskModel(available=False)
