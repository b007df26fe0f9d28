"""The ports the use cases talk through, one module per port: a Protocol and what crosses it.

Real adapters live in `storage/<backend>/`, the in-memory fakes in `storage/memory/`; each pair passes one
contract suite (tests/contracts/), the fakes in the unit suite, the real adapters in the integration suite.
"""
