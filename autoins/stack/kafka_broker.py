"""A Kafka-protocol broker for development and tests: tansu with memory storage (KAFKA_NOTES.md).

Memory storage means a restart loses every topic and message; callers create their topics after
`start_tansu` returns (storage.kafka.clients.ensure_topics).
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

from autoins.stack import binaries
from autoins.stack.endpoints import Service
from autoins.stack.probes import fingerprint
from autoins.stack.processes import spawn, wait_ready
from autoins.stack.state import ManagedProcess

BROKER_START_TIMEOUT_S = 30.0
READY_PROBE_TIMEOUT_S = 0.5


def listener_urls(host: str, port: int) -> tuple[str, str]:
    """(listen, advertise): `localhost` listens on 127.0.0.1 but is advertised as written."""
    bare = host.strip("[]")
    listen_host = "127.0.0.1" if bare.lower() == "localhost" else bare
    fmt = "[{}]" if ":" in listen_host else "{}"
    advertise = "[{}]" if ":" in bare else "{}"
    return (f"tcp://{fmt.format(listen_host)}:{port}", f"tcp://{advertise.format(bare)}:{port}")


def start_tansu(port: int, data_dir: Path, host: str = "127.0.0.1", binary: Path | None = None,
                timeout_s: float = BROKER_START_TIMEOUT_S) -> ManagedProcess:
    """Launch a tansu broker on host:port (log in `<data_dir>/kafka/`), return once it answers
    ApiVersions. Stop it with processes.stop_process. Raises ServerStartFailed / BinaryNotFound."""
    executable = binary or binaries.tansu(None, data_dir)
    workdir = data_dir / "kafka"
    workdir.mkdir(parents=True, exist_ok=True)
    listen, advertise = listener_urls(host, port)
    argv = [str(executable), "broker", "--listener-url", listen, "--advertised-listener-url", advertise,
            "--storage-engine", "memory://tansu/"]
    proc = spawn(argv, workdir / "tansu.log", cwd=workdir)
    probe_host = listen.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    wait_ready(proc, lambda: fingerprint(Service.KAFKA, probe_host, port, READY_PROBE_TIMEOUT_S).answers,
               timeout_s, f"Kafka broker ({executable}) on {host}:{port}")
    # SIGTERM makes tansu wait ~5 s for connected clients; SIGINT exits at once, and memory
    # storage has nothing to flush.
    return dataclasses.replace(proc, stop_signal=int(signal.SIGINT))
