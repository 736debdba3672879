"""Real Redis and PostgreSQL servers for the tests that need them: each a fresh instance on a free loopback port in
a temporary directory, stopped at the end. `make test` installs the Debian packages (scripts/install-services.sh).

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port


class ServerUnavailable(RuntimeError):
    """The server's binaries are not installed (run `make services`)."""


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start(self) -> None:
        """Start again on the same port (after :meth:`stop`), with an empty data set."""
        self.proc = _spawn_redis(self.port)


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed (make services)")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@contextmanager
def running_redis() -> Iterator[Redis]:
    port = free_port()
    server = Redis(port, _spawn_redis(port))
    try:
        yield server
    finally:
        server.stop()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise ServerUnavailable("PostgreSQL is not installed (make services)")
    return path


@dataclass
class Postgres:
    port: int
    data: Path
    socket_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://distillguard@127.0.0.1:{self.port}/distillguard"

    def _run(self, *argv: str) -> None:
        subprocess.run(_as_postgres([*argv]), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "server.log"), "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def running_postgres(tmp: Path) -> Iterator[Postgres]:
    """A PostgreSQL cluster with a database ``distillguard`` that user ``distillguard`` owns (trust auth, loopback)."""
    root = tmp / "pg"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        # The postgres user must reach its directory through the test's temporary one.
        os.chmod(tmp, 0o755)  # noqa: S103
    server = Postgres(free_port(), root / "data", root)
    subprocess.run(
        _as_postgres([_pg_bin("initdb"), "-D", str(server.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.start()
    try:
        psql = _pg_bin("psql") if glob.glob("/usr/lib/postgresql/*/bin/psql") else "psql"
        for sql in ("CREATE USER distillguard", "CREATE DATABASE distillguard OWNER distillguard"):
            subprocess.run(
                _as_postgres([psql, "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-c", sql]),
                check=True,
                capture_output=True,
                timeout=30,
            )
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop("immediate")
