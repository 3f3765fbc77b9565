"""Real processes for the end-to-end tests: gunicorn on 127.0.0.1, the
``flask smstrack`` CLI, and plain HTTP that never follows a redirect.

Every process started here is stopped by its PID when the ``with`` block
ends, whether the test passed or not.
"""
from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

T = TypeVar("T")

#: Inherited variables that could point a child process at another app,
#: database, virtualenv or source tree.
_UNSAFE_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "DATABASE_URL", "SECRET_KEY")


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without app, database or import settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _UNSAFE_ENV and not k.startswith(("SMSTRACK_", "FLASK_"))
    }
    # Sends do not depend on the hour the tests run at.
    env["SMSTRACK_QUIET_HOURS"] = "null"
    # No periodic jobs on a thread of the servers (or of a Seed app built
    # from this environment in the test process, where it would outlive the
    # test): a test that wants them sets SMSTRACK_JOB_INTERVAL itself.
    env["SMSTRACK_JOB_INTERVAL"] = "0"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None) -> Reply:
    """One HTTP request to 127.0.0.1; redirects are returned, not followed."""
    parts = urlsplit(url)
    assert parts.hostname == HOST, f"the tests only talk to {HOST}, not {url}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def poll(get: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 15.0) -> T:
    """Call ``get`` until ``done`` says yes or ``timeout`` seconds pass, and
    return the last value, so that the caller's assert shows it."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen) -> None:
    """Stop one process we started: TERM (gunicorn's graceful stop), then KILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@functools.lru_cache
def _gunicorn_options(executable: Path) -> tuple[str, ...]:
    """Options for this gunicorn version: newer ones open a control socket in
    ``~/.gunicorn`` shared by every server of the user; the tests need none."""
    usage = subprocess.run([str(executable), "--help"], capture_output=True, text=True, timeout=60).stdout
    return ("--no-control-socket",) if "--no-control-socket" in usage else ()


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def gunicorn(
    executable: Path,
    target: str,
    *,
    port: int,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    workers: int = 1,
    ready_path: str = "/",
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Run ``gunicorn target`` on 127.0.0.1:``port`` until the block ends.

    Waits until ``ready_path`` answers with something other than a 5xx; the
    server's output goes to ``log`` and is quoted when it does not start.
    """
    command = [
        str(executable), "-w", str(workers), "-b", f"{HOST}:{port}",
        "--access-logfile", "-", "--graceful-timeout", "5", *_gunicorn_options(executable), target,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{_tail(log)}")
            try:
                if fetch(url + ready_path).status < 500:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not answer in {timeout}s:\n{_tail(log)}")
            time.sleep(0.1)
        yield Server(url, process, log)
    finally:
        stop(process)


class Cli:
    """``flask --app APP smstrack ...`` as a user types it, in ``cwd``."""

    def __init__(self, flask: Path, app: str, *, cwd: Path, env: dict[str, str]) -> None:
        self.flask, self.app, self.cwd, self.env = flask, app, cwd, env

    def __call__(self, *args: str) -> str:
        command = [str(self.flask), "--app", self.app, "smstrack", *args]
        result = subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited with {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result.stdout

    def user_with_key(self, email: str) -> str:
        """Create an admin user and return a new API key for it."""
        self("create-user", email, "--password", "correct horse battery", "--admin")
        key = self("create-api-key", email).splitlines()[0].strip()
        assert key.startswith("smst_"), key
        return key

    def campaign_with_link(self, owner: str, destination: str, code: str) -> tuple[int, str]:
        """Create a campaign with one link; return the campaign id and short URL."""
        out = self("create-campaign", "--name", f"Campaign {code}", "--currency", "USD",
                   "--cost", "10", "--sent", "100", "--owner", owner)
        found = re.match(r"Campaign (\d+) created", out)
        assert found, out
        campaign_id = int(found.group(1))
        lines = self("create-link", str(campaign_id), destination, "--code", code).splitlines()
        assert lines[0] == f"Link {code} -> {destination}", lines
        return campaign_id, lines[-1].strip()


def report(base_url: str, key: str, campaign_id: int) -> dict:
    """The campaign report from the JSON API."""
    reply = fetch(
        f"{base_url}/smstrack/api/v1/campaigns/{campaign_id}/report",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status == 200, (reply.status, reply.body)
    return reply.json()
