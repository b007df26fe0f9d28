"""The risk model (issue 6): dataset from simulated fleets, Poisson frequency training, the pure predictor.

    result = train(build_dataset(DatasetSpec(...)), TrainingParams(seed=7), info)   # training.py
    predictor = RiskPredictor(spec, estimator, model_version)                        # predictor.py
    predictor.assess_many([ScoreRequest(...)], k_trips=40.0) -> [RiskAssessment]

See docs/MODEL.md. Artifacts are read and written by storage/files/model_artifacts.py.
"""

from domain.risk_model.errors import ArtifactError, ModelNotReady
from domain.risk_model.predictor import RiskPredictor
from domain.risk_model.spec import ModelSpec, TrainingParams

__all__ = ["ArtifactError", "ModelNotReady", "ModelSpec", "RiskPredictor", "TrainingParams"]
