"""Recompute a past decision and say whether it holds (`autoins explain`, issue 16 item 5).

The decision's recorded features go through the model artifact of its recorded version (the `ArtifactModels`
port: the CLI loads artifacts from disk) and its score through the pricing of the rules in force; each step is
compared with what was recorded. A model version whose artifact is gone, or a rules version no longer in force,
is said explicitly: the comparison is then made with what is available, and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.decisions import Decision, recorded_hash_holds, requote
from domain.pricing import Quote
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.rules_version import RulesInForce

SCORE_TOLERANCE = 1e-6


class ModelGone(Exception):
    """The artifact of a model version cannot be loaded any more; the message says why."""


class ArtifactModels(Protocol):
    def assess(self, model_version: str, request: ScoreRequest) -> RiskAssessment:
        """The assessment by that exact model version; ModelGone when its artifact is not available."""
        ...


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    hash_holds: bool | None  # recorded features → recorded feature hash (None: features not recorded)
    rules_now: str
    recomputed: RiskAssessment | None
    model_problem: str | None  # why the model could not recompute the score
    requoted: Quote | None  # the recorded score priced again with the rules in force

    @property
    def rules_same(self) -> bool:
        return self.decision.rules_version == self.rules_now

    @property
    def score_same(self) -> bool | None:
        if self.recomputed is None:
            return None
        return abs(self.recomputed.score - self.decision.score) <= SCORE_TOLERANCE

    @property
    def premium_same(self) -> bool | None:
        if self.requoted is None:
            return None
        return self.requoted.premium == self.decision.premium and self.requoted.raw_premium == self.decision.raw_premium

    @property
    def reproduced(self) -> bool:
        """Everything recomputed, with the same model and rules, gives the recorded numbers."""
        checks = (self.hash_holds, self.score_same, self.premium_same if self.decision.premium is not None else True)
        return self.rules_same and all(c is True for c in checks)


def explain(decision: Decision, models: ArtifactModels, rules: RulesInForce) -> Explanation:
    """Recompute `decision` with its model version and the rules in force. Pure but for the model port."""
    recomputed, problem = None, None
    if not decision.features:
        problem = "this decision predates recorded features (issue 16): there is nothing to recompute the score from"
    else:
        try:
            recomputed = models.assess(decision.model_version,
                                       ScoreRequest(driver_id=decision.driver_id, features=decision.features))
        except ModelGone as error:
            problem = str(error)
    return Explanation(decision=decision, hash_holds=recorded_hash_holds(decision), rules_now=rules.version,
                       recomputed=recomputed, model_problem=problem, requoted=requote(decision, rules.pricing))
