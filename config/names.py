"""Serve application and deployment names: how the API, the WebSocket app, the scorer and the bench find
each other (DESIGN.md §3: deployments and actors meet through named handles, never imports)."""

API_APP = "api"
API_DEPLOYMENT = "ApiGateway"
WS_APP = "ws"
WS_DEPLOYMENT = "LiveGateway"
RISK_APP = "risk"
RISK_DEPLOYMENT = "RiskModel"
NOOP_APP = "noop"  # the bench's no-op endpoint, deployed only by `autoins bench api`
API_CANARY_APP = "api-canary"  # a staged rollout's new API build, on the internal route /_canary (docs/OPERATIONS.md)
RISK_CANARY_APP = "risk-canary"  # a staged rollout's new model version, reached through the same handles
