"""What every RiskModel (usecases.ports.risk_model) promises. Fixtures: `risk_model` (answering) and
`unavailable_risk_model` (one that cannot answer)."""

from __future__ import annotations

import pytest

from domain.features import FEATURE_NAMES
from domain.risk_assessment import ScoreRequest
from usecases.ports.risk_model import RiskModelUnavailable, prior_request


def _request(driver_id: str, trips: float) -> ScoreRequest:
    features = [0.0] * len(FEATURE_NAMES)
    features[0], features[1], features[2] = trips, 40.0 * trips, trips
    return ScoreRequest(driver_id=driver_id, features=tuple(features))


async def test_a_batch_is_answered_in_order_one_assessment_per_request(risk_model):
    requests = [_request(f"d{i}", float(i + 1)) for i in range(7)]
    answers = await risk_model.assess_many(requests)
    assert [a.driver_id for a in answers] == [r.driver_id for r in requests]


async def test_an_empty_batch_is_an_empty_answer(risk_model):
    assert await risk_model.assess_many([]) == []


async def test_a_driver_without_trips_gets_the_prior_with_no_credibility(risk_model):
    prior = await risk_model.assess(prior_request("newcomer"))
    assert prior.credibility == 0.0
    assert prior.rate == pytest.approx(prior.prior_rate)
    assert 0.0 <= prior.score <= 100.0


async def test_the_same_features_give_the_same_assessment(risk_model):
    one, two = await risk_model.assess_many([_request("a", 12.0), _request("a", 12.0)])
    assert one == two
    assert one == await risk_model.assess(_request("a", 12.0))


async def test_a_model_that_cannot_answer_says_so_with_one_error_type(unavailable_risk_model):
    with pytest.raises(RiskModelUnavailable):
        await unavailable_risk_model.assess(prior_request("x"))
    with pytest.raises(RiskModelUnavailable):
        await unavailable_risk_model.assess_many([prior_request("x")])
