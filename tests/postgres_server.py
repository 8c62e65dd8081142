"""A private, throwaway PostgreSQL server, for tests that take the database down and back up."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sentiment_cli.processes import free_port


def server_binaries() -> Path | None:
    """The folder with `initdb` and `pg_ctl`: on the PATH, else Debian's newest
    /usr/lib/postgresql/<version>/bin; None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    debian = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    candidates = ([Path(on_path).parent] if on_path else []) + debian
    return next((c for c in candidates if (c / "initdb").is_file()), None)


class PostgresServer:
    """A server of its own in `folder` (trust authentication, its unix socket there too) on a
    free port of 127.0.0.1; `url` names its `postgres` database. `folder` must belong to the
    `postgres` user when the tests run as root, since PostgreSQL refuses to run as root."""

    def __init__(self, binaries: Path, folder: Path) -> None:
        self.binaries = binaries
        self.folder = folder
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.folder / "server.log"
        self._run("pg_ctl", "start", "-w", "-D", str(self.folder / "data"), "-l", str(log),
                  "-o", options)  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.folder / "data"))

    @property
    def running(self) -> bool:
        status = self._command("pg_ctl", "status", "-D", str(self.folder / "data"))
        return subprocess.run(status, capture_output=True).returncode == 0

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(self._command(program, *args), capture_output=True, text=True)
        if result.returncode:
            log = self.folder / "server.log"
            raise RuntimeError(
                f"{program} failed: {result.stderr}" + (log.read_text() if log.exists() else "")
            )

    def _command(self, program: str, *args: str) -> list[str]:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*as_postgres, str(self.binaries / program), *args]
