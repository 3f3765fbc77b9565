#!/usr/bin/env python3
"""Benchmark of the tracked redirect against a bare Flask redirect.

What it measures
    Throughput (requests/s) and latency (p50, p99) of ``GET /s/<code>`` on
    * ``bare``: ``bench/bare_app.py``, a Flask app that only answers a 302, and
    * ``tracked``: the standalone app (``wsgi.py``), which records the click in the
      database before it answers the 302,
    both under the same gunicorn config (2 sync workers on 127.0.0.1, a free port),
    loaded by wrk with a Lua script (``bench/rotate_ua.lua``) that sends a different
    user agent from ``bench/user_agents.txt`` with each request. wrk does not follow
    redirects, so every request is one redirect response. With ``--recipients N`` the
    tracked campaign gets N imported recipients with their own links, and both apps are
    sent to those N paths in turn: each recipient's link is clicked again and again from
    different user agents, so the tracked side also tells a recipient's repeat from a
    forward on every click.

    The two apps are run alternately (bare, tracked, bare, tracked, ...), each run
    preceded by a short warm-up on a freshly started gunicorn. The result is the median
    per app over the rounds and the ratio of the medians (tracked / bare): on a shared,
    noisy machine only the ratio means something, not the absolute numbers.

    After the tracked runs it counts the rows added to ``smstrack_clicks`` and compares
    them with the 302 responses wrk received (warm-ups included): each click must be
    committed before its redirect, so there should be at least as many rows as 302s
    (a few more are normal: requests still queued when wrk stopped at the end of a run
    are served and recorded, but not counted by wrk).

    On SQLite it also samples the size of the database's write-ahead log (the
    ``-wal`` file) every 50 ms during each tracked run and prints its peak and its
    size when the load stopped, against ``SMSTRACK_SQLITE_WAL_LIMIT_BYTES``.

How to run (from the repo root, with the project installed in the current Python)
    python bench/run.py                      # 3 rounds x 10 s per app, SQLite
    python bench/run.py --rounds 5 --duration 20 --json /tmp/bench.json
    python bench/run.py --only bare --rounds 1 --duration 3
    python bench/run.py --recipients 2000    # per-recipient links
    python bench/run.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/run.py --only tracked --rounds 1 --duration 60   # SQLite's WAL under load
    python bench/run.py --recipients 2000 --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/smstrack_bench
        # as `make bench`: the tracked app on SQLite and on PostgreSQL with durable
        # commits, alternating with the bare app, one ratio for each

    With ``--pg-url`` a third app, ``pg``, runs in each round: the standalone app on
    that PostgreSQL database (created if missing; nothing is dropped), with durable
    commits (``SMSTRACK_CLICK_SYNC_COMMIT`` on: each click is flushed to disk before
    its 302), set up like the tracked one. Its ratio is also against the bare app.
    With ``--pg-worker-threads N`` (``make bench``: 8) the pg app runs on gthread
    workers with N threads each, so that clicks arriving together share a commit
    (group commit), and a fourth app, ``bare-pg``, runs the bare app on the same
    gunicorn config: the pg ratio is then against it, like for like (the ratio
    against the sync bare app is printed too).

    Needs wrk (``apt-get install wrk``) and gunicorn in the same environment as the
    Python running this script. The tracked side uses a fresh temporary SQLite database
    (deleted afterwards) unless ``--database-url`` is given; then the tables are created
    with ``init-db`` if missing, a uniquely named user, campaign and link are added, and
    nothing is dropped. Traffic only ever goes to 127.0.0.1.

Exit status: 0 when every run answered only 302s without socket errors, 1 when some
run did not (the figures are still printed), 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.util
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
UA_FILE = BENCH_DIR / "user_agents.txt"
LUA_SCRIPT = BENCH_DIR / "rotate_ua.lua"
RESULT_MARKER = "SMSTRACK_BENCH_RESULT "
CLICKS_TABLE = "smstrack_clicks"
DESTINATION = "https://example.com/landing"
HOST = "127.0.0.1"
APPS = ("bare", "tracked", "bare-pg", "pg")
#: The tracked apps: on --database-url (or SQLite), and on --pg-url.
TRACKED = ("tracked", "pg")


class BenchError(Exception):
    """The benchmark cannot go on (set-up failed, server did not start, ...)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Tracked redirect vs bare Flask redirect, under gunicorn and wrk.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per app (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2; 0 = none)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--timeout", type=int, default=5, help="wrk request timeout in seconds (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--worker-threads", type=int, default=1, metavar="N",
        help="threads per gunicorn worker, for both apps: 1 runs sync workers, more runs gthread "
        "workers (default 1)",
    )
    parser.add_argument(
        "--pg-worker-threads", type=int, default=None, metavar="N",
        help="threads per gunicorn worker for the pg app (and a bare run on the same config, bare-pg);"
        " default: --worker-threads",
    )
    parser.add_argument("--only", choices=APPS, help="run one app only")
    parser.add_argument(
        "--pg-url", metavar="URL",
        help="also run the tracked app on this PostgreSQL database with durable commits (app `pg`; "
        "created if missing, nothing is dropped)",
    )
    parser.add_argument(
        "--database-url",
        help="database for the tracked app (default: a fresh temporary SQLite file); "
        "nothing is dropped from it",
    )
    parser.add_argument(
        "--recipients", type=int, default=0, metavar="N",
        help="click N recipients' own links in turn instead of one shared link (default: a shared link)",
    )
    parser.add_argument(
        "--split", type=int, default=0, metavar="N",
        help="give the tracked link a landing-page test of N weighted destinations (2 to 10; default: none)",
    )
    parser.add_argument(
        "--addresses", type=int, default=0, metavar="N",
        help="send the requests from N client addresses in turn (X-Forwarded-For, both apps behind one "
        "proxy hop) instead of all from 127.0.0.1, whose clicks beyond the flood rate count as bots "
        "(default: 127.0.0.1 only)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--wrk", default=None, help="path to wrk (default: from PATH, then /usr/bin/wrk)")
    parser.add_argument(
        "--startup-timeout", type=int, default=60,
        help="seconds to wait for gunicorn to answer (default 60)",
    )
    args = parser.parse_args(argv)
    for name in ("rounds", "duration", "threads", "connections", "timeout", "workers", "worker_threads", "startup_timeout"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.recipients < 0:
        parser.error("--recipients must be 0 or more")
    if not 0 <= args.addresses <= 2**24:
        parser.error("--addresses must be between 0 and 16777216")
    if args.only == "pg" and not args.pg_url:
        parser.error("--only pg needs --pg-url")
    if args.pg_url and not re.match(r"^postgres(?:ql)?(?:\+\w+)?://", args.pg_url):
        parser.error("--pg-url must be a postgresql:// URL")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk needs one connection per thread)")
    return args


# --------------------------------------------------------------------------- tools


def find_wrk(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [shutil.which("wrk"), "/usr/bin/wrk"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BenchError(
        "wrk not found" + (f" at {explicit}" if explicit else "")
        + ": install it with `apt-get install wrk` (Debian/Ubuntu)"
    )


def gunicorn_command() -> list[str]:
    """gunicorn from the same environment as this Python."""
    script = Path(sys.executable).parent / "gunicorn"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    if importlib.util.find_spec("gunicorn") is None:
        raise BenchError(f"gunicorn is not installed for {sys.executable}: pip install gunicorn")
    return [sys.executable, "-m", "gunicorn"]


def load_user_agents() -> list[str]:
    try:
        lines = UA_FILE.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BenchError(f"cannot read {UA_FILE}: {exc}") from exc
    agents = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not agents:
        raise BenchError(f"no user agents in {UA_FILE}")
    return agents


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- gunicorn


class Server:
    """One gunicorn master started by this script, stopped by its PID."""

    def __init__(self, module: str, chdir: Path, env: dict[str, str], workers: int, log_path: Path,
                 threads: int = 1):
        self.module = module
        self.threads = threads
        self.chdir = chdir
        self.env = env
        self.workers = workers
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = gunicorn_command() + [
            "-w", str(self.workers),
            *(["-k", "sync"] if self.threads == 1 else ["-k", "gthread", "--threads", str(self.threads)]),
            "-b", f"{HOST}:{self.port}",
            "--log-level", "warning",
            "--chdir", str(self.chdir),
            f"{self.module}:app",
        ]
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches this script, which stops gunicorn itself
            )

    def wait_ready(self, path: str, timeout: float) -> tuple[int, str]:
        """Poll with HEAD until the app answers; returns (status, Location)."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise BenchError(
                    f"gunicorn ({self.module}:app) exited with status {code} before answering; "
                    f"its log:\n{tail(self.log_path)}"
                )
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                conn.request("HEAD", path, headers={"User-Agent": "smstrack-bench-probe"})
                resp = conn.getresponse()
                resp.read()
                return resp.status, resp.getheader("Location") or ""
            except (OSError, http.client.HTTPException) as exc:
                last_error = str(exc)
            finally:
                conn.close()
            time.sleep(0.2)
        raise BenchError(
            f"gunicorn ({self.module}:app) did not answer on {HOST}:{self.port} within {timeout:.0f} s "
            f"(last error: {last_error}); its log:\n{tail(self.log_path)}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------- wrk


def run_wrk(wrk: str, args: argparse.Namespace, url: str, seconds: int, paths_file: Path | None = None) -> dict:
    cmd = [
        wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
        "--timeout", f"{args.timeout}s", "-s", str(LUA_SCRIPT), url,
    ]
    env = dict(os.environ, SMSTRACK_BENCH_UA_FILE=str(UA_FILE), SMSTRACK_BENCH_ADDRESSES=str(args.addresses))
    if paths_file is not None:
        env["SMSTRACK_BENCH_PATHS_FILE"] = str(paths_file)
    try:
        proc = subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=seconds + args.timeout + 60,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish in time: {' '.join(cmd)}") from exc
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"stdout:\n{proc.stdout.strip()}\nstderr:\n{proc.stderr.strip()}"
        )
    raw = json.loads(line[len(RESULT_MARKER):])
    statuses = {int(code): count for code, count in raw["status"].items()}
    errors = raw["errors"]
    duration_s = raw["duration_us"] / 1e6
    redirects = statuses.get(302, 0)
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return {
        "requests": raw["requests"],
        "duration_s": round(duration_s, 3),
        "rps": raw["requests"] / duration_s if duration_s > 0 else 0.0,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "latency_us": raw["latency_us"],
        "status": {str(code): count for code, count in sorted(statuses.items())},
        "redirects_302": redirects,
        "non_302": sum(count for code, count in statuses.items() if code != 302),
        "errors": errors,
        "socket_errors": socket_errors,
    }


# --------------------------------------------------------------------------- tracked app set-up


def flask_cli(env: dict[str, str], *cli_args: str) -> str:
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "smstrack", *cli_args]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out: {' '.join(cmd[1:])}") from exc
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}):\n"
            f"{proc.stdout.strip()}\n{proc.stderr.strip()}".rstrip()
        )
    return proc.stdout + proc.stderr


def preflight_tracked() -> None:
    if not (REPO_ROOT / "wsgi.py").is_file():
        raise BenchError(f"{REPO_ROOT / 'wsgi.py'} not found: the standalone app is needed for the tracked side")
    if importlib.util.find_spec("flask_smstrack") is None:
        raise BenchError(
            f"flask_smstrack is not importable by {sys.executable}: "
            f"install the project first (pip install -e {REPO_ROOT})"
        )


def ensure_pg_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first():
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    except Exception as exc:
        raise BenchError(f"cannot reach or create {redact(url)}: {exc}") from exc
    finally:
        admin.dispose()


def prepare_tracked(database_url: str | None, workdir: Path, recipients: int = 0, split: int = 0) -> dict:
    """Create the tables, a user, a campaign and a link; returns env, code and database URL.
    With ``recipients``, also that many recipients with their own links, whose paths
    are written to a file for wrk."""
    preflight_tracked()
    if database_url:
        suffix = secrets.token_hex(3)  # reruns against the same database must not collide
        email, name, code = f"bench-{suffix}@example.com", f"Bench {suffix}", f"bench{suffix}"
    else:
        database_url = "sqlite:///" + str(workdir / "smstrack.db")  # absolute: four slashes
        email, name, code = "admin@example.com", "Bench", "bench01"
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY=secrets.token_hex(32))
    log(f"tracked: setting up {redact(database_url)}")
    flask_cli(env, "init-db")
    flask_cli(env, "create-user", email, "--password", "secret123", "--admin")
    out = flask_cli(
        env, "create-campaign", "--name", name, "--currency", "USD",
        "--cost", "10", "--sent", "1000", "--owner", email,
    )
    match = re.search(r"Campaign\s+#?([A-Za-z0-9_-]+)", out)
    if not match:
        raise BenchError(f"could not find 'Campaign <id>' in the output of create-campaign:\n{out.strip()}")
    campaign_id = match.group(1)
    flask_cli(env, "create-link", campaign_id, DESTINATION, "--code", code)
    if split:
        tests = [arg for n in range(split) for arg in ("--split", f"Page {n + 1}={n + 1}={DESTINATION}?page={n + 1}")]
        flask_cli(env, "update-link", code, *tests)
    log(f"tracked: campaign {campaign_id}, link /s/{code}")
    tracked = {"env": env, "code": code, "database_url": database_url, "campaign_id": campaign_id}
    if recipients:
        workdir = workdir / secrets.token_hex(3)
        workdir.mkdir()
        tracked["paths_file"] = prepare_recipients(env, campaign_id, recipients, workdir)
    return tracked


def prepare_recipients(env: dict[str, str], campaign_id: str, count: int, workdir: Path) -> Path:
    """Import ``count`` recipients, render their messages (one link each) and
    write their links' paths to a file, one per line."""
    people = workdir / "recipients.csv"
    with open(people, "w", encoding="utf-8") as f:
        f.write("phone\n")
        for i in range(count):
            area = (212, 213, 305, 310, 312, 415, 503, 617, 646, 702)[i // 100 % 10]
            f.write(f"+1{area}{555 + i // 1000}{100 + i % 100:04d}\n")
    flask_cli(env, "import-recipients", campaign_id, str(people))
    flask_cli(env, "add-variant", campaign_id, "A", "Spring sale: {link}")
    flask_cli(env, "add-variant", campaign_id, "B", "20% off today: {link}")
    out = flask_cli(dict(env, SMSTRACK_BASE_URL='"https://sms.example.com"'), "export-messages", campaign_id)
    paths = [urlsplit(line.rsplit(" ", 1)[-1].split(",")[0]).path for line in out.splitlines() if "/s/" in line]
    if len(paths) < count:
        raise BenchError(f"expected {count} recipients' links, got {len(paths)}:\n{out[-2000:]}")
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    log(f"tracked: {len(paths)} recipients with their own links")
    return paths_file


def redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


def sqlite_path(url: str) -> Path:
    match = re.match(r"^sqlite(?:\+\w+)?:///(.*)$", url)
    if not match:
        raise BenchError(f"unsupported SQLite URL {url}")
    raw = match.group(1).split("?", 1)[0]
    if not raw or raw == ":memory:":
        raise BenchError("an in-memory SQLite database cannot be inspected from outside the app")
    path = Path(raw)
    if path.is_absolute():
        return path
    # Flask-SQLAlchemy resolves relative SQLite paths against the app's instance folder.
    for candidate in (REPO_ROOT / "instance" / path, REPO_ROOT / path):
        if candidate.exists():
            return candidate
    return REPO_ROOT / "instance" / path


class WalSampler:
    """Samples the size of a SQLite database's ``-wal`` file from a thread."""

    EVERY = 0.05

    def __init__(self, database: Path) -> None:
        self.path = Path(str(database) + "-wal")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-sampler", daemon=True)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            self._stop.wait(self.EVERY)

    def __enter__(self) -> "WalSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.size())


def wal_limit(env: dict[str, str]) -> int:
    """The WAL limit the tracked app runs with (its default unless set)."""
    from flask_smstrack.config import DEFAULTS

    raw = env.get("SMSTRACK_SQLITE_WAL_LIMIT_BYTES")
    return int(raw) if raw else int(DEFAULTS["SMSTRACK_SQLITE_WAL_LIMIT_BYTES"])


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def count_clicks(database_url: str) -> int:
    query = f"SELECT count(*) FROM {CLICKS_TABLE}"
    if database_url.startswith("sqlite"):
        path = sqlite_path(database_url)
        if not path.exists():
            raise BenchError(f"SQLite database {path} does not exist")
        conn = sqlite3.connect(str(path), timeout=30)
        try:
            return conn.execute(query).fetchone()[0]
        finally:
            conn.close()
    if re.match(r"^postgres(?:ql)?(?:\+\w+)?://", database_url):
        conninfo = re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", database_url)
        try:
            import psycopg as driver  # type: ignore[import-not-found]
        except ImportError:
            try:
                import psycopg2 as driver  # type: ignore[import-not-found,no-redef]
            except ImportError as exc:
                raise BenchError("psycopg is needed to count clicks in PostgreSQL") from exc
        conn = driver.connect(conninfo)
        try:
            cur = conn.cursor()
            cur.execute(query)
            return cur.fetchone()[0]
        finally:
            conn.close()
    raise BenchError(f"counting clicks is not supported for {redact(database_url)}")


# --------------------------------------------------------------------------- report

COLUMNS = f"{'app':<8} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'302s':>8} {'other':>6}"


def row(run: dict) -> str:
    other = run["non_302"] + run["socket_errors"]
    return (
        f"{run['app']:<8} {run['round']:>5} {run['rps']:>9.1f} {run['p50_ms']:>8.2f} "
        f"{run['p99_ms']:>8.2f} {run['redirects_302']:>8} {other:>6}"
    )


def summarize(runs: list[dict]) -> dict:
    medians = {}
    for app in APPS:
        mine = [r for r in runs if r["app"] == app]
        if mine:
            medians[app] = {
                "rounds": len(mine),
                "rps": statistics.median(r["rps"] for r in mine),
                "p50_ms": statistics.median(r["p50_ms"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            }
    summary: dict = {"median": medians}
    for app in TRACKED:
        against = "bare-pg" if app == "pg" and "bare-pg" in medians else "bare"
        if against in medians and app in medians:
            bare, tracked = medians[against], medians[app]
            # "ratio": the tracked app's (SQLite or --database-url); "ratio_pg": --pg-url's.
            summary["ratio" if app == "tracked" else f"ratio_{app}"] = {
                "rps": tracked["rps"] / bare["rps"] if bare["rps"] else None,
                "p50": tracked["p50_ms"] / bare["p50_ms"] if bare["p50_ms"] else None,
                "p99": tracked["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else None,
                "against": against,
            }
    if "bare-pg" in medians and "pg" in medians and "bare" in medians and medians["bare"]["rps"]:
        summary["ratio_pg_vs_sync_bare"] = medians["pg"]["rps"] / medians["bare"]["rps"]
    return summary


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_summary(summary: dict) -> None:
    medians = summary["median"]
    parts = [f"{app} {m['rps']:.0f} req/s" for app, m in medians.items()]
    ratios = [(app, summary["ratio" if app == "tracked" else f"ratio_{app}"]) for app in TRACKED
              if ("ratio" if app == "tracked" else f"ratio_{app}") in summary]
    line = "median   " + ", ".join(parts)
    if ratios:
        line += ", " + ", ".join(
            f"ratio {fmt_ratio(r['rps'])}" if len(ratios) == 1 else f"{app}/{r['against']} {fmt_ratio(r['rps'])}"
            for app, r in ratios
        )
    if "ratio_pg_vs_sync_bare" in summary:
        line += f" (pg/bare {fmt_ratio(summary['ratio_pg_vs_sync_bare'])})"
    print(line)
    lat = [f"{app} p50 {m['p50_ms']:.2f} ms / p99 {m['p99_ms']:.2f} ms" for app, m in medians.items()]
    line = "latency  " + ", ".join(lat)
    if ratios:
        line += " (" + ", ".join(
            f"{app}/{r['against']} p50 x{fmt_ratio(r['p50'])}, p99 x{fmt_ratio(r['p99'])}" for app, r in ratios
        ) + ")"
    print(line)


# --------------------------------------------------------------------------- main


def check_clicks(app: str, tracked: dict, runs: list[dict], args, before: int, labelled: bool) -> dict:
    """Compare the click rows ``app`` committed with the 302s wrk received, and
    report SQLite's write-ahead log; returns the figures."""
    label = f"{app}: " if labelled else ""
    after = count_clicks(tracked["database_url"])
    committed = after - (before or 0)
    tracked_runs = [r for r in runs if r["app"] == app]
    measured = sum(r["redirects_302"] for r in tracked_runs)
    warm = sum(r["warmup_302"] for r in tracked_runs)
    seen = measured + warm
    wrk_runs = len(tracked_runs) * (2 if args.warmup else 1)
    slack = wrk_runs * args.connections
    clicks = {
        "rows_before": before,
        "rows_after": after,
        "committed": committed,
        "redirects_302_seen_by_wrk": seen,
        "measured_302": measured,
        "warmup_302": warm,
        "difference": committed - seen,
        "expected_max_extra": slack,
    }
    print(
        f"clicks   {label}{committed} rows committed to {CLICKS_TABLE}; wrk received {seen} tracked 302s "
        f"({measured} measured + {warm} warm-up); difference {committed - seen:+d}"
    )
    if committed < seen:
        print(
            f"WARNING: fewer click rows than redirects: {seen - committed} redirect(s) were answered "
            "without a committed click"
        )
    elif committed - seen > slack:
        print(
            f"WARNING: {committed - seen} more rows than redirects seen, more than the "
            f"{slack} requests that can be in flight when wrk stops ({wrk_runs} wrk runs x "
            f"{args.connections} connections)"
        )
    else:
        print(
            f"         every 302 had its click committed (extra rows <= {slack}: requests in "
            "flight when wrk stopped are served and recorded but not counted by wrk)"
        )
    if tracked["shared_database"]:
        print("         (row counts are the change in the whole table: other traffic to that database counts too)")
    walled = [r for r in tracked_runs if "wal_peak_bytes" in r]
    if walled:
        limit = wal_limit(tracked["env"])
        peak = max(r["wal_peak_bytes"] for r in walled)
        after = walled[-1]["wal_after_bytes"]
        clicks["wal"] = {"limit_bytes": limit, "peak_bytes": peak, "after_load_bytes": after}
        print(
            f"wal      SQLite's write-ahead log after {args.duration} s at full load: {mb(after)}"
            f" (peak {mb(peak)} over {len(walled)} run(s), limit {mb(limit)})"
        )
        if peak > limit:
            print(f"WARNING: the write-ahead log passed its limit ({mb(peak)} > {mb(limit)})")

    return clicks




def one_run(app: str, rnd: int, args, wrk: str, workdir: Path, tracked: dict | None) -> dict:
    paths_file = tracked.get("paths_file") if tracked else None
    if app in ("bare", "bare-pg"):
        module, chdir, env, path = "bare_app", BENCH_DIR, dict(os.environ), "/s/bench01"
    else:
        assert tracked is not None
        module, chdir, env, path = "wsgi", REPO_ROOT, tracked["env"], f"/s/{tracked['code']}"
    if args.addresses:
        env = dict(env, SMSTRACK_PROXY_HOPS="1")
    threads = (args.pg_worker_threads or args.worker_threads) if app in ("pg", "bare-pg") else args.worker_threads
    server = Server(module, chdir, env, args.workers, workdir / f"gunicorn-{app}-{rnd}.log", threads)
    current_servers.append(server)
    try:
        server.start()
        status, location = server.wait_ready(path, args.startup_timeout)
        if status != 302 or not location.startswith(DESTINATION):
            raise BenchError(
                f"{app}: HEAD {path} answered {status} (Location: {location or '-'}), "
                f"expected a 302 to {DESTINATION}...; gunicorn log:\n{tail(server.log_path)}"
            )
        url = f"http://{HOST}:{server.port}{path}"
        database = tracked["database_url"] if tracked and app != "bare" else ""
        sampler = WalSampler(sqlite_path(database)) if database.startswith("sqlite") else None
        with sampler or contextlib.nullcontext():
            warm = run_wrk(wrk, args, url, args.warmup, paths_file) if args.warmup else None
            result = run_wrk(wrk, args, url, args.duration, paths_file)
        if sampler is not None:
            # While the server still runs: what it leaves behind under load.
            result.update(wal_peak_bytes=sampler.peak, wal_after_bytes=sampler.size())
    finally:
        server.stop()
        current_servers.remove(server)
    result.update(app=app, round=rnd)
    result["warmup_302"] = warm["redirects_302"] if warm else 0
    result["warmup_requests"] = warm["requests"] if warm else 0
    return result


current_servers: list[Server] = []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pg_threads = args.pg_worker_threads or args.worker_threads
    pg_apps = (["bare-pg"] if pg_threads != args.worker_threads else []) + ["pg"]
    apps = [args.only] if args.only else ["bare", "tracked"] + (pg_apps if args.pg_url else [])

    def on_sigterm(signum, frame):  # make `kill <pid>` clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)

    workdir = Path(tempfile.mkdtemp(prefix="smstrack-bench-"))
    runs: list[dict] = []
    clicks: dict | None = None
    clicks_pg: dict | None = None
    try:
        wrk = find_wrk(args.wrk)
        gunicorn_command()
        agents = load_user_agents()
        trackeds: dict[str, dict] = {}
        if "tracked" in apps:
            trackeds["tracked"] = prepare_tracked(args.database_url, workdir, args.recipients, args.split)
            trackeds["tracked"]["shared_database"] = bool(args.database_url)
        if "pg" in apps:
            ensure_pg_database(args.pg_url)
            trackeds["pg"] = prepare_tracked(args.pg_url, workdir, args.recipients, args.split)
            # Durable: each click flushed to disk before its 302.
            trackeds["pg"]["env"]["SMSTRACK_CLICK_SYNC_COMMIT"] = "true"
            trackeds["pg"]["shared_database"] = True
        clicks_before = {app: count_clicks(t["database_url"]) for app, t in trackeds.items()}
        # The bare app is sent to the same paths (recipients' links with --recipients).
        first_tracked = next(iter(trackeds.values()), None)

        load = os.getloadavg()
        log(
            f"{len(agents)} user agents; gunicorn -w {args.workers} "
            f"{'-k sync' if args.worker_threads == 1 else f'-k gthread --threads {args.worker_threads}'}"
            f"{f' (pg: -k gthread --threads {pg_threads})' if pg_threads != args.worker_threads else ''}; "
            f"wrk -t{args.threads} -c{args.connections}; {args.rounds} round(s) x {args.duration} s "
            f"(+{args.warmup} s warm-up); {os.cpu_count()} CPUs, load {load[0]:.2f}"
        )
        print(COLUMNS, flush=True)
        for rnd in range(1, args.rounds + 1):
            for app in apps:
                log(f"{app} round {rnd}: starting gunicorn")
                run = one_run(app, rnd, args, wrk, workdir, trackeds.get(app, first_tracked))
                runs.append(run)
                print(row(run), flush=True)

        summary = summarize(runs)
        print_summary(summary)

        for app, tracked in trackeds.items():
            report = check_clicks(app, tracked, runs, args, clicks_before[app], len(trackeds) > 1)
            if app == "tracked":
                clicks = report
            else:
                clicks_pg = report

        bad = [r for r in runs if r["non_302"] or r["socket_errors"]]
        for r in bad:
            print(
                f"WARNING: {r['app']} round {r['round']}: statuses {r['status']}, socket errors {r['errors']}"
            )

        if args.json:
            doc = {
                "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "loadavg_at_start": list(load),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "config": {
                    "rounds": args.rounds, "duration_s": args.duration, "warmup_s": args.warmup,
                    "wrk_threads": args.threads, "wrk_connections": args.connections,
                    "gunicorn_workers": args.workers, "gunicorn_threads": args.worker_threads,
                    "gunicorn_threads_pg": pg_threads, "apps": apps, "user_agents": len(agents),
                    "database": redact(args.database_url) if args.database_url
                    else ("temporary sqlite" if "tracked" in trackeds else None),
                    "pg_database": redact(args.pg_url) if args.pg_url else None,
                },
                "runs": runs,
                **summary,
                "clicks": clicks,
                **({"clicks_pg": clicks_pg} if "pg" in trackeds else {}),
            }
            Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            log(f"wrote {args.json}")
        return 1 if bad else 0
    except BenchError as exc:
        log(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        log("bench: interrupted")
        return 130
    finally:
        for server in list(current_servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
