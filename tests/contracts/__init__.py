"""Contract suites: one module per port, its test functions written once against a `backend` fixture.

A unit module imports a suite with the in-memory fake as the backend, an integration module with the real
adapter (STYLE.md habit 6): the fake cannot drift from what the real adapter does.
"""
