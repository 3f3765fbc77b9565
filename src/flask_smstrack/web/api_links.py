"""``PATCH /api/v1/links/<id>``: change a link (on the API blueprint, see
api.py)."""
from __future__ import annotations

from flask import g, jsonify
from werkzeug.wrappers import Response

from ..errors import Conflict, NotFound
from ..manage import get_link, update_link
from ..models import Link
from .api import _link_out, _load, bp
from .link_schemas import load_link_update


def link_or_404(link_id: int) -> Link:
    """The link if the caller may see its campaign, else 404 as for a link
    that does not exist."""
    link = get_link(link_id)
    if link is None or not g.smstrack_principal.can_see(link.campaign):
        raise NotFound({"link_id": [f"No link {link_id}."]})
    return link


@bp.patch("/links/<int:link_id>")
def links_update(link_id: int) -> Response:
    """Change a campaign link: the fields given change, the others stay."""
    link = link_or_404(link_id)
    if link.parent_id is not None:
        raise Conflict({"link_id": [f"A recipient's own link follows its campaign link: change link {link.parent_id}."]})
    data = _load(_LinkEdit())
    return jsonify(_link_out(update_link(link, data)))


class _LinkEdit:
    """The body's validation for :func:`~.api._load`."""

    load = staticmethod(load_link_update)
