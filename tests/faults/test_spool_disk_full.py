"""The spool's disks fill up while the database is down: clicks go to the
preallocated segment, then the fallback directory, then memory, and every
one is stored once the database is back.

The spool and its fallback are small tmpfs mounts (``mount -t tmpfs``, as
root), filled with a file until the kernel answers ENOSPC; where mounting is
not permitted, a disk-full directory is simulated in the file layer (new
segments there fail with ENOSPC). The test prints which ran. The database
is a throwaway PostgreSQL cluster, stopped.
"""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from faults.spool_support import FULL, shared_cluster, stored_clicks
from flask_smstrack.tracking import spool_segment

pytestmark = pytest.mark.timeout(300)


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` at ``path``; yields whether it is a real mount."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> int:
    """Write a file in ``path`` until the disk is full; returns its size."""
    written = 0
    with open(path / "filler", "wb", buffering=0) as f:
        chunk = b"\xff" * 4096
        try:
            while True:
                written += f.write(chunk)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return written


def test_full_disks_while_the_database_is_down(tmp_path, monkeypatch):
    clicks_per_phase = 600 if FULL else 200
    primary, fallback = tmp_path / "spool", tmp_path / "fallback"
    pg = shared_cluster(tmp_path)
    with small_disk(primary, "1m") as real_a, small_disk(fallback, "1m") as real_b:
        real = real_a and real_b
        simulated: set[str] = set()
        if not real:
            create = spool_segment.Segment.create.__func__

            def full_create(cls, directory, size):
                if directory in simulated:
                    raise OSError(errno.ENOSPC, "No space left on device (simulated)", directory)
                return create(cls, directory, size)

            monkeypatch.setattr(spool_segment.Segment, "create", classmethod(full_create))
        from wsgi import create_app

        from conftest import _test_config

        app = create_app(dict(
            _test_config(pg.url, tmp_path),
            SMSTRACK_SPOOL_DIR=str(primary),
            SMSTRACK_SPOOL_FALLBACK_DIR=str(fallback),
            SMSTRACK_SPOOL_SIZE_BYTES=64 * 1024,
            SMSTRACK_SPOOL_MEMORY_RECORDS=clicks_per_phase * 2,
            SMSTRACK_SPOOL_REPLAY_SECONDS=0.2,
        ))
        from conftest import Actions, click_id_of

        actions = Actions(app)
        key = actions.api_key()
        link = actions.link(key, actions.campaign(key)["id"])
        ids = [click_id_of(actions.click(link["code"]))]  # the link is cached
        spool = app.extensions["smstrack_spool"]
        # The primary segment was preallocated at start; now the disk is full.
        if real:
            fill(primary)
        else:
            simulated.add(str(primary))
        pg.stop()
        where = []
        for phase in ("primary", "fallback", "memory"):
            if phase == "memory":
                if real:
                    fill(fallback)
                else:
                    simulated.add(str(fallback))
                # The fallback's own segment is full too by now, or will be.
            for _ in range(clicks_per_phase):
                response = actions.click(link["code"])
                assert response.status_code == 302
                ids.append(click_id_of(response))
            where.append(dict(spool.counts()))
        health = app.test_client().get("/smstrack/healthz").json["checks"]["spool"]
        counts = spool.counts()
        print(f"\ndisk full ({'tmpfs mounts' if real else 'simulated ENOSPC'}), database stopped:"
              f" {len(ids) - 1} clicks: {counts['primary']} in the preallocated segment,"
              f" {counts['fallback']} in the fallback, {counts['memory']} in memory, {counts['lost']} lost;"
              f" health says {health['status']} with {health['records']} waiting")
        assert counts["lost"] == 0
        assert counts["primary"] > 0 and counts["fallback"] > 0 and counts["memory"] > 0
        assert health["status"] == "failing"  # records only in memory
        pg.start()
        pg.wait_ready()
        deadline = time.monotonic() + 60
        stored = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                stored = stored_clicks(pg.url)
            if set(ids) <= set(stored):
                break
            time.sleep(0.2)
        after = spool.counts()
        print(f"after recovery: {len(set(ids) & set(stored))} of {len(ids)} clicks stored,"
              f" {sum(1 for n in stored.values() if n > 1)} twice; replayed {after['replayed']},"
              f" {after['in_memory']} left in memory")
        assert [i for i in ids if i not in stored] == []
        assert {i: n for i, n in stored.items() if n > 1} == {}
        assert after["in_memory"] == 0
        spool.stop()
        with app.app_context():
            from wsgi import db

            db.engine.dispose()
        os.sync()
