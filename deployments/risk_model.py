"""The `RiskModel` Serve deployment: a thin shell around `domain.risk_model.RiskPredictor` (issue 6).

- `assess(ScoreRequest)` goes through `@serve.batch` (size/wait from settings, set at start): concurrent
  callers share one vectorized predict. `assess_many(list)` scores a whole batch in one call.
- Predictions are cached per (model_version, feature_hash, k_trips, mileage_only) in a TTLCache
  (`cache_ttl_risk_score`); the feature hash covers trip_count, so it covers credibility too.
- `reconfigure({"model_version": …, "models_dir": …})` loads that artifact and swaps it in one assignment
  (no restart), clearing the cache. A version that cannot load leaves the current model serving.
- A missing or corrupted artifact never kills the replica: it starts, `model_info()` says why it is not
  ready, `assess*` raise `ModelNotReady`, and the health check stays green (the API reports the reason).
- During a model rollout, the stable replicas send the split's share of drivers to the canary app
  (deployments/model_canary.py) and score here what it fails.
Metrics (plan §5.1, exported with a `ray_` prefix): ml_inference_duration_seconds, ml_batch_size,
ml_prediction_cache_hits/_misses (+ `_total`), tagged by model_type only — never by driver; ml_model_ready (1/0);
ml_assessments_total by outcome (ok, error: the rollout's error rate of a canary).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from cachetools import TTLCache
from ray import serve
from ray.serve import Application

from config.logging import get_logger
from config.names import RISK_DEPLOYMENT
from config.settings import Settings
from deployments.model_canary import ModelCanary
from domain.features import FEATURE_NAMES, feature_hash
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.risk_model import ArtifactError, ModelNotReady, RiskPredictor
from storage.files.model_artifacts import load_artifact

_log = get_logger("deployments.risk_model")
INFERENCE_BOUNDARIES_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
CACHE_MAXSIZE = 100_000
RECENT_BATCHES = 1_000


class _Loaded(msgspec.Struct, frozen=True):
    predictor: RiskPredictor
    models_dir: str
    loaded_at: str


def _metrics() -> dict[str, Any]:
    from ray.serve.metrics import Counter, Gauge, Histogram

    return {
        "duration": Histogram("ml_inference_duration_seconds", description="RiskModel predict time per batch",
                              boundaries=INFERENCE_BOUNDARIES_S, tag_keys=("model_type",)),
        "batch": Histogram("ml_batch_size", description="Requests per RiskModel predict", boundaries=BATCH_BOUNDARIES,
                           tag_keys=("model_type",)),
        "hits": Counter("ml_prediction_cache_hits", description="RiskModel prediction cache hits (Ray adds _total)",
                        tag_keys=("model_type",)),
        "misses": Counter("ml_prediction_cache_misses", description="RiskModel prediction cache misses",
                          tag_keys=("model_type",)),
        "assessments": Counter("ml_assessments", description="Assessments answered (ok) or failed (error)",
                               tag_keys=("outcome",)),
        # 1 while a model is loaded and serving, 0 while the replica serves none (the RiskModelNotReady alert)
        "ready": Gauge("ml_model_ready", description="1 when this RiskModel replica has a model loaded, else 0"),
    }


def _actor_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None


def _check(request: ScoreRequest) -> np.ndarray:
    """The request's vector, or ValueError naming the driver (one bad request never fails its batch)."""
    if not isinstance(request, ScoreRequest):
        raise ValueError(f"expected a ScoreRequest, got {type(request).__name__}")
    if len(request.features) != len(FEATURE_NAMES):
        raise ValueError(f"driver {request.driver_id}: expected {len(FEATURE_NAMES)} features, "
                         f"got {len(request.features)}")
    x = np.asarray(request.features, dtype=np.float64)
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError(f"driver {request.driver_id}: features must be finite and ≥ 0")
    return x


@serve.deployment(name=RISK_DEPLOYMENT, ray_actor_options={"num_cpus": 0})
class RiskModel:
    """One predictor per replica; settings give the artifact, batching, cache TTL and credibility k."""

    def __init__(self, settings: Settings) -> None:
        self._k_trips = settings.credibility_k_trips
        self._cache: TTLCache = TTLCache(maxsize=CACHE_MAXSIZE, ttl=settings.cache_ttl_risk_score)
        self._hits = self._misses = self._requests = 0
        self._batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)
        self._metrics = _metrics()
        self._loaded: _Loaded | None = None
        self._models_dir = Path(settings.models_dir)
        self._signing_key = settings.model_signing_key
        self._error: str | None = None
        self._assess_batch.set_max_batch_size(settings.ml_batch_size)
        self._assess_batch.set_batch_wait_timeout_s(settings.ml_batch_wait_s)
        self._canary = ModelCanary(settings)
        self._load(Path(settings.models_dir), settings.model_version)

    # -- model lifecycle ------------------------------------------------------------------------------

    def _load(self, models_dir: Path, model_version: str | None) -> None:
        """Load and swap in one assignment; on failure keep what serves now and record the reason."""
        try:
            artifact = load_artifact(models_dir, model_version, signing_key=self._signing_key)
            predictor = RiskPredictor(artifact.spec, artifact.estimator, artifact.model_version)
        except (ArtifactError, ValueError) as error:
            self._error = str(error)
            _log.warning("risk_model_not_loaded", models_dir=str(models_dir), requested=model_version,
                         error=self._error)
            self._metrics["ready"].set(0 if self._loaded is None else 1)
            return
        self._loaded = _Loaded(predictor, str(models_dir), datetime.now(UTC).isoformat())
        self._cache.clear()
        self._error = None
        self._metrics["ready"].set(1)
        _log.info("risk_model_loaded", model_version=predictor.model_version, family=predictor.family)

    def reconfigure(self, user_config: dict) -> None:
        """`user_config`: {"model_version": str | None, "models_dir": str (optional)}. Never raises."""
        if user_config.get("models_dir"):
            self._models_dir = Path(user_config["models_dir"])
        version = user_config.get("model_version")
        loaded = self._loaded
        if loaded and version == loaded.predictor.model_version and str(self._models_dir) == loaded.models_dir:
            return  # Serve calls reconfigure right after __init__ with the deployed config: nothing to redo
        self._load(self._models_dir, version)

    async def model_info(self) -> dict:
        """ready, model_version, error (why not ready, or why the last switch failed), loaded_at, family."""
        loaded = self._loaded
        return {
            "ready": loaded is not None,
            "model_version": loaded.predictor.model_version if loaded else None,
            "family": loaded.predictor.family if loaded else None,
            "prior_rate": loaded.predictor.prior_rate if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "models_dir": loaded.models_dir if loaded else None,
            "error": self._error,
            "pid": os.getpid(),
            "actor_id": _actor_id(),
        }

    async def stats(self) -> dict:
        """Counters since start: requests, cache hits/misses, cache size, recent predict batch sizes."""
        return {"requests": self._requests, "cache_hits": self._hits, "cache_misses": self._misses,
                "cache_size": len(self._cache), "batch_sizes": list(self._batch_sizes)}

    # -- scoring --------------------------------------------------------------------------------------

    async def assess(self, request: ScoreRequest) -> RiskAssessment:
        """One driver, batched with concurrent callers. Raises ModelNotReady or ValueError (bad vector)."""
        app, to_canary = await self._canary.canary_for([getattr(request, "driver_id", "")])
        if app and to_canary[0] and (answer := await self._canary.assess(app, request)) is not None:
            return answer
        result = await self._assess_batch(request)
        if isinstance(result, Exception):
            raise result
        return result

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)  # replaced from settings in __init__
    async def _assess_batch(self, requests: list[ScoreRequest]) -> list[RiskAssessment | Exception]:
        return self._score(requests)

    async def assess_many(self, requests: list[ScoreRequest]) -> list[RiskAssessment]:
        """A whole batch in one call (the scorer on trip end). A bad vector fails the call with ValueError."""
        requests = list(requests)
        app, to_canary = await self._canary.canary_for([getattr(r, "driver_id", "") for r in requests])
        canary_part = [r for r, goes in zip(requests, to_canary, strict=False) if goes]
        answers = await self._canary.assess_many(app, canary_part) if app and canary_part else None
        if answers is not None and len(answers) == len(canary_part):
            mine = iter(self._score([r for r, goes in zip(requests, to_canary, strict=True) if not goes]))
            theirs = iter(answers)
            results = [next(theirs) if goes else next(mine) for goes in to_canary]
        else:
            results = self._score(requests)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results  # type: ignore[return-value]

    def _score(self, requests: list[ScoreRequest]) -> list[RiskAssessment | Exception]:
        loaded = self._loaded
        if loaded is None:
            self._metrics["assessments"].inc(len(requests), tags={"outcome": "error"})
            raise ModelNotReady(f"risk model not ready: {self._error or 'no model loaded'}")
        predictor = loaded.predictor
        tags = {"model_type": predictor.family}
        self._requests += len(requests)
        results: list[RiskAssessment | Exception | None] = [None] * len(requests)
        misses: list[int] = []
        keys: dict[int, tuple] = {}
        for i, request in enumerate(requests):
            try:
                x = _check(request)
            except ValueError as error:
                results[i] = error
                continue
            key = (predictor.model_version, feature_hash(x), self._k_trips, request.mileage_only)
            cached = self._cache.get(key)
            if cached is None:
                keys[i] = key
                misses.append(i)
            else:
                results[i] = msgspec.structs.replace(cached, driver_id=request.driver_id)
        hits = len(requests) - len(misses) - sum(isinstance(r, Exception) for r in results)
        self._hits += hits
        self._misses += len(misses)
        if hits:
            self._metrics["hits"].inc(hits, tags=tags)
        if misses:
            self._metrics["misses"].inc(len(misses), tags=tags)
            started = time.perf_counter()
            fresh = predictor.assess_many([requests[i] for i in misses], k_trips=self._k_trips)
            self._metrics["duration"].observe(time.perf_counter() - started, tags=tags)
            self._metrics["batch"].observe(len(misses), tags=tags)
            self._batch_sizes.append(len(misses))
            for i, assessment in zip(misses, fresh, strict=True):
                self._cache[keys[i]] = assessment
                results[i] = assessment
        failed = sum(isinstance(r, Exception) for r in results)
        if failed:
            self._metrics["assessments"].inc(failed, tags={"outcome": "error"})
        if len(results) > failed:
            self._metrics["assessments"].inc(len(results) - failed, tags={"outcome": "ok"})
        return results  # type: ignore[return-value]


def code_version(settings: Settings) -> str:
    """sha256 of this module's source and the settings the replicas get. `serve.run` otherwise gives every
    deploy a random code version, which restarts replicas even when only `user_config` changed; with a
    stable one, Serve calls `reconfigure` on the live replicas (as `serve deploy` of a config file does)."""
    source = Path(__file__).read_bytes()
    return hashlib.sha256(source + settings.model_dump_json().encode()).hexdigest()[:16]


def build_risk_app(settings: Settings, *, user_config: dict | None = None) -> Application:
    """The bound `RiskModel` application (deploy it under `config.names.RISK_APP`). A relative
    `models_dir` is resolved here, in the driver, against its working directory. Redeploying with only
    another `user_config` (e.g. {"model_version": …}) switches the model in place, without a restart."""
    if not settings.models_dir.is_absolute():
        settings = settings.with_overrides(models_dir=(Path.cwd() / settings.models_dir).resolve())
    options: dict[str, Any] = {
        "num_replicas": settings.ml_num_replicas,
        "max_ongoing_requests": settings.ml_max_ongoing_requests,
        "ray_actor_options": {"num_cpus": 0},
        # An access-log line per prediction is noise at this rate and costs the replica time on every call.
        "logging_config": {"enable_access_log": False},
        # Ray 2.60 keeps `version` for its own use (`_internal`); see code_version.
        "version": code_version(settings),
        "_internal": True,
    }
    if user_config is not None:
        options["user_config"] = user_config
    return RiskModel.options(**options).bind(settings)
