"""A campaign's page: its report, charts and tables (and their CSVs), the
snippet to install, and the link checker.

Every number shown comes from :mod:`flask_smstrack.reports`; the views only
pick, order, format and draw what the reports computed."""
from __future__ import annotations

from collections import Counter
from typing import Any

from flask import (
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from ...config import Keys
from ...errors import InvalidInput, NotFound
from ...manage import (
    short_url,
)
from ...models.channels import is_sms
from ...reports.campaign import CampaignData, ratio
from ...reports.channels import CHANNEL_LABELS
from ...reports.export import csv_download, table_csv
from ...reports.tables import (
    BREAKDOWNS,
    TABLES,
    campaign_table,
)
from ..snippet import snippet_tag
from .base import bp, campaign_or_404, local, timezone_names, tz_arg
from .charts import breakdown, chart, delays, heatmap
from .destinations import destination_cards
from .messages import messages_card


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign(campaign_id: int) -> tuple[str, int]:
    campaign = campaign_or_404(campaign_id)
    sms = is_sms(campaign)
    tz, tz_error = tz_arg()
    data = CampaignData(campaign, tz)
    report = data.report
    breakdowns = [breakdown(campaign_table(data, name)) for name in BREAKDOWNS]
    breakdowns = [b for b in breakdowns if b["table"].name != "variants" or b["known"]]
    return render_template(
        "smstrack/campaign.html",
        campaign=campaign,
        r=report,
        has_data=bool(report.clicks or report.previews or report.bots or report.conversions),
        other_revenue=sorted((cur, v) for cur, v in report.revenue.items() if cur != report.currency),
        links=[(link, short_url(link)) for link in campaign.links],
        chart=chart(campaign_table(data, "timeseries"), campaign.currency),
        breakdowns=breakdowns,
        heatmaps=[
            heatmap(campaign_table(data, "heatmap_clicks"), "clicks"),
            heatmap(campaign_table(data, "heatmap_conversions"), "conversions"),
        ],
        delays=[
            delays(campaign_table(data, "send_to_click")),
            delays(campaign_table(data, "click_to_conversion")),
        ],
        tz=tz,
        tz_error=tz_error,
        tz_arg=tz if request.args.get("tz") and not tz_error else None,
        timezones=timezone_names(),
        sent_at=local(campaign.sent_at, tz),
        messages_card=messages_card(data) if sms else None,
        opt_outs=opt_out_card(data) if sms else None,
        sms=sms,
        channel_label=CHANNEL_LABELS.get(campaign.channel, campaign.channel),
        destination_cards=destination_cards(campaign),
    ), (400 if tz_error else 200)


def opt_out_card(data: CampaignData) -> dict[str, Any] | None:
    """The campaign page's Opt-outs card: the numbers that replied STOP to
    the campaign's messages and their rate (per variant too), and the
    recipients left out because they had opted out before; ``None`` for a
    campaign without imported recipients, variants or opt-outs."""
    campaign, report = data.campaign, data.report
    totals = data.recipients
    if not totals and not campaign.variants and not report.opt_outs:
        return None
    receipts = sum(t["receipts"] for t in totals.values())
    variants = []
    if campaign.variants:
        by_variant = data.variant_opt_outs
        for v in campaign.variants:
            n, t = by_variant.get(v.id, 0), totals.get(v.id, Counter())
            variants.append({"name": v.name, "opt_outs": n, "rate": ratio(n, t["delivered"] if receipts else None)})
    return {
        "opt_outs": report.opt_outs,
        "rate": report.opt_out_rate,
        "delivered": report.delivered,
        "suppressed": sum(t["suppressed"] for t in totals.values()),
        "variants": variants,
    }


@bp.get("/campaigns/<int:campaign_id>/tables/<name>.csv")
@login_required
def table_download(campaign_id: int, name: str) -> Response:
    campaign = campaign_or_404(campaign_id)
    if name not in TABLES:
        raise NotFound(f"There is no table “{name}”; the tables are: {', '.join(sorted(TABLES))}.")
    tz, tz_error = tz_arg()
    if tz_error:
        return Response(tz_error + "\n", status=400, mimetype="text/plain")
    table = campaign_table(CampaignData(campaign, tz), name)
    return csv_download(table_csv(table), f"campaign-{campaign.id}-{name}")


@bp.get("/campaigns/<int:campaign_id>/install")
@login_required
def install(campaign_id: int) -> str:
    campaign = campaign_or_404(campaign_id)
    return render_template(
        "smstrack/install.html",
        campaign=campaign,
        r=CampaignData(campaign).report,
        snippet_tag=snippet_tag(),
        links=[(link, short_url(link)) for link in campaign.links],
    )


class LinkCheckForm(FlaskForm):
    """CSRF only: "Test links" has no fields."""


@bp.route("/campaigns/<int:campaign_id>/check-links", methods=["GET", "POST"])
@login_required
def check_links(campaign_id: int) -> Any:
    """"Test links" runs the check as a job (see :mod:`flask_smstrack.jobs`:
    on the worker with Redis, else on a thread of this process); the page
    shows its progress, then its results."""
    from ...jobs.tasks import check_links_view, link_checks, start_check_links

    campaign = campaign_or_404(campaign_id)
    form = LinkCheckForm()
    checks = None
    if request.method == "POST":
        if not form.validate_on_submit():
            raise InvalidInput("The form expired; please go back and press “Test links” again.")
        start_check_links(campaign.id)
        return redirect(url_for("smstrack_dashboard.check_links", campaign_id=campaign.id), 303)
    view = check_links_view(campaign.id)
    if view is not None and view.status == "finished":
        checks = link_checks(view.result)
    return render_template(
        "smstrack/link_check.html",
        campaign=campaign,
        form=form,
        checks=checks,
        job=view,
        timeout=current_app.config[Keys.LINK_CHECK_TIMEOUT],
    )
