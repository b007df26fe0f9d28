"""Use cases: what the system does (ingest a batch, score trip ends, answer a driver, change a policy).

Handlers call `domain` for every decision and reach the world only through the ports in `usecases.ports`
(Protocols). Actors and routers are adapters of a few lines around them; the handlers are unit-tested over
the in-memory fakes (storage/memory), which pass the same contract tests as the real adapters.
"""
