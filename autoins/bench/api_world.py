"""The world `autoins bench api` builds when it is not given `--url`, and removes afterwards.

A scratch database (migrated) seeded like the demo (`autoins seed`: drivers, policies, logins) plus a
few simulated days of trips for every seeded driver, so `driver0001`'s trips page is full; a private
Redis and broker (the bench never touches the demo's keys); the default model trained into a temp dir;
Ray (started here unless RAY_ADDRESS is set) with Serve on a free port running risk, api and a no-op app.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from autoins.bench.scratch import Scratch
from autoins.ingress import ingress_environment
from config.settings import Settings

NOOP_ROUTE = "/noop"


@dataclass
class ApiWorld:
    base: Settings
    out: Console
    drivers: int = 100
    trip_days: int = 5
    scratch: Scratch | None = None
    settings: Settings | None = None
    base_url: str = ""
    started_ray: bool = False
    notes: list[str] = field(default_factory=list)
    tmp: tempfile.TemporaryDirectory | None = None

    def open(self) -> str:
        """Build everything; returns the base URL. `close()` undoes it (also after a failure half-way)."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        for name, value in ingress_environment(self.base.serve_haproxy).items():
            os.environ.setdefault(name, value)
        self.scratch = Scratch(self.base)
        self.tmp = tempfile.TemporaryDirectory(prefix="autoins-bench-api-")
        with self.out.status("scratch database, private Redis and broker …"):
            postgres = asyncio.run(self.scratch.postgres_version())
            database_url = asyncio.run(self.scratch.create_database("api", datetime.now(UTC)))
            redis_url = self.scratch.start_redis(private=True)
            bootstrap = self.scratch.start_broker(private=True)
        self.notes.append(postgres)
        self.settings = self.base.with_overrides(
            database_url=database_url, redis_url=redis_url, kafka_bootstrap_servers=bootstrap,
            models_dir=Path(self.tmp.name) / "models", data_dir=self.base.data_dir.resolve(),
        )
        self.scratch.create_topics(self.settings)
        self._seed()
        self._train()
        self.base_url = self._serve()
        return self.base_url

    def _seed(self) -> None:
        from autoins.bench.api_data import insert_simulated_trips
        from autoins.seed import seed_demo

        with self.out.status(f"seeding {self.drivers} drivers with logins and policies …"):
            asyncio.run(seed_demo(self.settings, self.drivers))
        with self.out.status(f"simulating {self.trip_days} days of trips for {self.drivers} drivers …"):
            trips = asyncio.run(insert_simulated_trips(self.settings, self.drivers, self.trip_days))
        self.out.print(f"seeded {self.drivers} drivers, {trips:,} trips", highlight=False)

    def _train(self) -> None:
        from autoins.train import train_model
        from domain.risk_model.dataset import DatasetSpec
        from domain.risk_model.spec import TrainingParams

        spec = DatasetSpec()  # the default data set: its features ship with autoins, so this takes seconds
        with self.out.status("training the default risk model …"):
            outcome = train_model(spec, TrainingParams(seed=spec.seed), models_dir=self.settings.models_dir,
                                  signing_key=self.settings.model_signing_key, data_dir=self.settings.data_dir,
                                  workers=2, command="autoins bench api")
        self.out.print(f"risk model {outcome.model_version}", highlight=False)

    def _serve(self) -> str:
        import ray
        from ray import serve

        from autoins.serve import init_ray
        from autoins.stack import free_tcp_port
        from config.names import NOOP_APP
        from deployments.builder import deploy_all
        from deployments.noop import build_noop_app

        self.started_ray = not ray.is_initialized() and not self.base.ray_address
        init_ray(self.settings, include_dashboard=False)
        self.settings = self.settings.with_overrides(http_port=free_tcp_port(), http_host="127.0.0.1")
        with self.out.status("deploying risk, api and no-op apps on Serve …"):
            urls = deploy_all(self.settings)
            serve.run(build_noop_app(self.settings.api_num_replicas, self.settings.api_max_ongoing_requests),
                      name=NOOP_APP, route_prefix=NOOP_ROUTE)
        return urls["api"]

    def close(self) -> list[str]:
        problems: list[str] = []
        try:
            import ray
            from ray import serve

            if ray.is_initialized():
                serve.shutdown()
                if self.started_ray:
                    ray.shutdown()
        except Exception as error:  # teardown reports, never raises
            problems.append(f"Serve/Ray teardown: {error!r}")
        if self.scratch is not None:
            problems += self.scratch.close()
        if self.tmp is not None:
            self.tmp.cleanup()
        return problems
