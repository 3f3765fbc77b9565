"""QR codes of links: the short URL as an SVG or PNG image (made by
`segno <https://segno.readthedocs.io>`_). The code holds the plain short
URL, so a scan is a click like any other."""
from __future__ import annotations

import io

import segno

from ..manage import short_url
from ..models import Link

#: The image formats and their media types.
QR_MIMETYPES = {"svg": "image/svg+xml", "png": "image/png"}


def qr_image(link: Link, fmt: str, *, scale: int = 8, border: int = 4, base: str | None = None) -> bytes:
    """The QR code of ``link``'s short URL (on ``base``, see
    :func:`~flask_smstrack.manage.short_url`) as ``svg`` or ``png`` bytes:
    ``scale`` pixels per module, ``border`` modules of quiet zone."""
    if fmt not in QR_MIMETYPES:
        raise ValueError(f"unknown QR code format {fmt!r}")
    url = short_url(link, base)
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    if fmt == "svg":
        code.save(out, kind="svg", scale=scale, border=border, xmldecl=True, title=url)
    else:
        code.save(out, kind="png", scale=scale, border=border)
    return out.getvalue()
