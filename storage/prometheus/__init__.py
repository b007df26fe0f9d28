"""Reading the system's metrics back from Prometheus (PromQL over its HTTP API)."""
