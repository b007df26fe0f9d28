"""Local stack: PostgreSQL, Redis and a Kafka-protocol broker for development and tests.

Library API (the CLI in `cli.py` is a thin renderer over it):
`stack_up(settings) -> StackReport`, `stack_status(settings) -> list[ServiceStatus]`,
`stack_down(settings) -> list[ServiceStop]`, and the broker launcher
`start_tansu(port, data_dir) -> ManagedProcess` / `stop_process(proc)` for tests.
"""

from autoins.stack.binaries import BinaryOverrides
from autoins.stack.errors import StackError
from autoins.stack.kafka_broker import start_tansu
from autoins.stack.processes import free_tcp_port, stop_process
from autoins.stack.services import (
    Owner,
    ServiceOutcome,
    ServiceStatus,
    ServiceStop,
    StackOptions,
    StackReport,
    stack_down,
    stack_status,
    stack_up,
)
from autoins.stack.state import ManagedProcess

__all__ = [
    "BinaryOverrides", "ManagedProcess", "Owner", "ServiceOutcome", "ServiceStatus", "ServiceStop",
    "StackError", "StackOptions", "StackReport", "free_tcp_port", "stack_down", "stack_status",
    "stack_up", "start_tansu", "stop_process",
]
