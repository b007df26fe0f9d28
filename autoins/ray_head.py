"""A local Ray head of our own, in its own session and process tree, so the system outlives the CLI.

`ray.init()` inside the CLI ties the whole cluster (pipeline and Serve apps included) to that one process: a
SIGKILL of the CLI took everything down. `autoins serve`/`deploy` start the head with `ray start --head` in a
new session instead, remember it in `<data_dir>/ray-head.json`, and join it; `autoins status`/`stop` find it
there. Stopping kills only the processes of that head (found by its temp dir), never `ray stop` (which kills
every Ray process on the machine, RAY_NOTES.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from autoins.errors import UserFacingError
from autoins.stack.processes import free_tcp_port, port_listening
from config.settings import Settings

STATE_FILE = "ray-head.json"


@dataclass(frozen=True)
class RayHead:
    address: str  # host:port of the GCS
    temp_dir: str
    dashboard_url: str
    session_id: int  # every process of the head shares it (HAProxy included, whose command line names no dir)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def state_path(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / STATE_FILE


def temp_dir_for(settings: Settings) -> Path:
    """Short on purpose: Ray puts unix sockets under it (a path over ~107 bytes cannot be a socket)."""
    digest = hashlib.sha1(str(Path(settings.data_dir).resolve()).encode()).hexdigest()[:10]
    return Path("/tmp") / f"autoins-ray-{digest}"


def running_head(settings: Settings) -> RayHead | None:
    """The head this data dir started, if it still answers; a stale record is removed."""
    path = state_path(settings)
    if not path.is_file():
        return None
    try:
        head = RayHead(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    if port_listening("127.0.0.1", head.port) and head_processes(head):
        return head
    path.unlink(missing_ok=True)
    return None


def start_head(settings: Settings, environ: dict[str, str]) -> RayHead:
    """`ray start --head` in a new session (Ctrl-C in the CLI's terminal does not reach it)."""
    port, dashboard_port = free_tcp_port(), free_tcp_port()
    temp_dir = temp_dir_for(settings)
    ray_cli = Path(sys.executable).parent / "ray"
    command = [
        str(ray_cli), "start", "--head", f"--port={port}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
        f"--metrics-export-port={free_tcp_port()}",
    ]
    starter = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # Ctrl-C in our terminal never reaches the head
    out, err = starter.communicate(timeout=180)
    if starter.returncode != 0:
        tail = (err or out).strip().splitlines()[-3:]
        raise UserFacingError(f"cannot start a local Ray head: {' / '.join(tail)}")
    head = RayHead(f"127.0.0.1:{port}", str(temp_dir), f"http://127.0.0.1:{dashboard_port}", starter.pid)
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(head)), encoding="utf-8")
    return head


def head_processes(head: RayHead) -> list[psutil.Process]:
    """Every process of the head: the session `ray start` led, or a command line naming the head's temp dir."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            same_session = os.getsid(process.pid) == head.session_id
        except OSError:
            continue
        cmdline = " ".join(process.info["cmdline"] or ())
        if same_session or head.temp_dir in cmdline:
            found.append(process)
    return found


def stop_head(settings: Settings, head: RayHead, grace_s: float = 10.0) -> int:
    """SIGTERM the head's processes, SIGKILL what is left after `grace_s`; forget the head. Returns how many."""
    processes = head_processes(head)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    state_path(settings).unlink(missing_ok=True)
    return len(processes)


def wait_for_head(head: RayHead, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_listening("127.0.0.1", head.port):
        if time.monotonic() > deadline:
            raise UserFacingError(f"the local Ray head at {head.address} does not answer")
        time.sleep(0.2)
