"""``flask smstrack worker``: run the app's background jobs (RQ), and the
enqueue path of ``flask smstrack send`` when ``SMSTRACK_REDIS_URL`` is set."""
from __future__ import annotations

import time

import click
from flask import current_app

from ..config import Keys
from .base import app_state, smstrack_cli


@smstrack_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
@click.option("--interval", type=click.IntRange(min=0),
              help=f"Seconds between periodic jobs (default {Keys.JOB_INTERVAL}); 0 for none.")
@click.option("--name", help="The worker's name in RQ (default: a random one).")
def worker_command(burst: bool, interval: int | None, name: str | None) -> None:
    """Run background jobs: sends, link checks, spool replay and rollups.

    Needs SMSTRACK_REDIS_URL. Run one or more on any node that has the
    app's config; each job runs inside the app, so a plain ``rq worker``
    cannot run them. A job whose worker died (kill -9, a lost machine)
    runs again, and a send goes on where it stopped without sending any
    message twice.
    """
    from ..jobs.queue import queue_name
    from ..jobs.worker import make_worker

    app_state()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        worker = make_worker(app, interval=interval, name=name)
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Worker {worker.name} on queue {queue_name(app)!r} (pid {worker.pid}).", err=True)
    worker.work(burst=burst, logging_level="INFO")


def _echo_result(result: dict, campaign_id: int) -> None:
    if result.get("error"):
        raise click.ClickException(result["error"])
    sent, failed = result.get("sent", 0), result.get("failed") or []
    line = f"Sent {sent} message{'s' if sent != 1 else ''} ({result.get('segments', 0)} segments)"
    if result.get("reconciled"):
        line += f"; {result['reconciled']} found already sent at Twilio"
    click.echo(f"{line}; {len(failed)} failed.")
    for phone, code, message in failed[:50]:
        click.echo(f"  {phone}: error {code}: {message}", err=True)
    if result.get("suppressed"):
        click.echo(f"{result['suppressed']} not sent: the number opted out during the send.")
    if result.get("held"):
        click.echo(f"{result['held']} recipients left ready (quiet hours or --at): run the same command again later.")
    if result.get("unknown"):
        click.echo(f"{result['unknown']} messages in an unknown state: run again with --retry-unknown.")
    if result.get("stopped"):
        if result.get("left"):
            click.echo(f"{result['left']} messages not sent yet: run the same command again to send them.")
        raise click.ClickException(f"stopped: {result['stopped']}")


def send_queued(campaign_id: int, todo: int, options: dict, wait: bool) -> None:
    """Enqueue the campaign's send; unless ``wait`` is off, show its progress
    from the job until it ends, then what it did."""
    from ..jobs.queue import job_view
    from ..jobs.tasks import enqueue_send

    job = enqueue_send(campaign_id, **options)
    click.echo(f"Send queued as job {job.id}; a `flask smstrack worker` sends it.")
    if not wait:
        click.echo("Follow it with: flask smstrack status, or the campaign's Send page.")
        return
    view = job_view(job)
    shown = 0
    warned = False
    started = time.monotonic()
    with click.progressbar(length=max(todo, 1), label="Sending") as bar:
        while view is not None and view.active:
            done = int(view.meta.get("done") or 0)
            total = int(view.meta.get("total") or 0)
            if total and total != bar.length:
                bar.length = max(total, 1)
            if done > shown:
                bar.update(done - shown)
                shown = done
            if view.status == "queued" and not warned and time.monotonic() - started > 5:
                click.echo("\nStill waiting for a worker: is `flask smstrack worker` running?", err=True)
                warned = True
            time.sleep(0.3)
            view = job_view(job)
        if view is not None and int(view.meta.get("done") or 0) > shown:
            bar.update(int(view.meta["done"]) - shown)
    if view is None:
        raise click.ClickException(f"job {job.id} is gone from Redis")
    if view.status != "finished":
        raise click.ClickException(f"the send job {view.status}: {view.error}. Run the same command again to go on.")
    _echo_result(view.result or {}, campaign_id)
