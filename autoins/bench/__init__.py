"""Benchmarks (`autoins bench …`): measured runs on scratch resources, reported in BENCHMARKS.md.

`ingest`: N simulated readings through the Ray pipeline and through one plain process (the raw
limit); see docs/BENCHMARKING.md.
"""
