"""A throw-away PostgreSQL server on loopback (Debian's `postgresql` package: initdb + pg_ctl) for the
tracking-server test with the production backend. `available()` says why not when it cannot run here."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.distributed.tracking_server import free_port

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def _bin(name: str) -> str | None:
    for folder in BIN_DIRS:
        if Path(folder, name).exists():
            return str(Path(folder, name))
    return shutil.which(name)


def available() -> str | None:
    """None when a PostgreSQL server can be started here, else the reason it cannot."""
    try:
        import psycopg2  # noqa: F401  (MLflow's PostgreSQL driver)
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


class Postgres:
    """initdb into a fresh folder, start on a free port (trust auth, loopback only), one database `mlflow`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="enpire-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://enpire@127.0.0.1:{self.port}/mlflow"  # SQLAlchemy 2.1 defaults to psycopg 3

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120, cwd=self.dir)

    def start(self) -> None:
        self._run(str(_bin("initdb")), "-D", str(self.data), "-U", "enpire", "--auth=trust", "-E", "UTF8")
        self._run(str(_bin("pg_ctl")), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "start",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")
        self._run(str(_bin("createdb")), "-h", "127.0.0.1", "-p", str(self.port), "-U", "enpire", "mlflow")

    def stop(self) -> None:
        try:
            self._run(str(_bin("pg_ctl")), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
