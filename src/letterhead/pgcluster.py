"""A throwaway PostgreSQL cluster in a temporary folder, for the benchmark (``--postgres auto``) and the tests.

Runs the server binaries directly (initdb, pg_ctl), as the ``postgres`` user when we are root (initdb refuses
root), listening on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    return bool(pg_bin("initdb") and pg_bin("pg_ctl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, *, prefix: str = "lh-pg-", options: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.options = options
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self.as_root else list(args)
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> None:
        """Raises RuntimeError without the binaries, CalledProcessError when initdb or pg_ctl fails."""
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise RuntimeError("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            f"-c max_connections=200 {self.options}"
        )
        self._run(pg_ctl, "-D", data, "-o", opts, "-l", str(self.dir / "log"), "-w", "start")

    def cpu_seconds(self) -> float | None:
        """CPU time of the server so far: the postmaster, its live children (backends, WAL writer, checkpointer)
        and the children it already reaped. For ``letterhead bench``'s CPU-per-message figures."""
        try:
            postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
            elif ppid == postmaster:
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        if pg_ctl:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
