"""Process metrics recorded through Ray's metrics agent (the outside system Prometheus scrapes)."""
