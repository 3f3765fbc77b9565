"""Importing a campaign's recipients from CSV.

Phone numbers are normalised to E.164 with ``phonenumbers`` and kept only
when valid; numbers without a country code take ``SMSTRACK_DEFAULT_REGION``.
A number already in the campaign, or twice in the file, is merged into one
recipient (later non-empty values win). Invalid rows are reported with their
line numbers and the valid rows are still imported.

The ``timezone``, ``consent_source`` and ``consent_at`` columns go to the
recipient's own fields, not to its attributes (see :mod:`.consent`); an
invalid value is a row error naming the line.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable

import phonenumbers
from sqlalchemy import insert, select, update

from ..config import Keys
from ..models import Campaign, Recipient, utcnow
from ..state import get_state
from .consent import RECORD_COLUMNS, RecordColumns
from .suppression import SUPPRESSED, phone_hasher, suppressed_phones

#: Header names read as the phone number and the external id.
PHONE_HEADERS = ("phone", "phone_number", "mobile", "msisdn", "number", "to")
EXTERNAL_ID_HEADERS = ("external_id", "id", "customer_id")
BATCH = 2000


class ImportError_(ValueError):
    """The file cannot be imported at all (no phone column, not CSV...)."""


@dataclass
class ImportResult:
    imported: int = 0
    #: Rows whose number was already in the campaign or earlier in the file.
    merged: int = 0
    #: ``(line number, message)`` for every row that was left out.
    errors: list[tuple[int, str]] = field(default_factory=list)
    #: Recipients imported with the status ``suppressed``: their number opted out.
    suppressed: int = 0
    #: Attribute columns left out by ``keep_columns``.
    dropped_columns: list[str] = field(default_factory=list)


def normalize_phone(raw: str, region: str) -> str:
    """``raw`` in E.164, or ``ValueError`` with a message to show."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("the phone number is empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number in {region} or with its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def header_columns(header: list[str]) -> tuple[int, int | None, list[tuple[int, str]]]:
    names = [h.strip().lower().replace(" ", "_") for h in header]
    phone = next((i for i, n in enumerate(names) if n in PHONE_HEADERS), None)
    if phone is None:
        raise ImportError_(f"no phone column: name one of {', '.join(PHONE_HEADERS)} in the first line")
    external = next((i for i, n in enumerate(names) if n in EXTERNAL_ID_HEADERS and i != phone), None)
    attributes = [(i, n) for i, n in enumerate(names) if i not in (phone, external) and n]
    return phone, external, attributes


def read_csv(text: str) -> Iterable[tuple[int, list[str]]]:
    """``(line number, cells)`` of each row of a CSV text, header first.

    Lines may end with ``\r\n``, ``\n`` or a bare ``\r`` (old Mac files). A
    row the CSV reader cannot read raises :class:`ImportError_` naming its line.
    """
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ImportError_(f"line {reader.line_num}: {err}") from None
        yield reader.line_num, cells


def import_recipients(
    campaign_id: int,
    rows: Iterable[tuple[int, list[str]]],
    *,
    region: str | None = None,
    progress: Callable[[int], None] | None = None,
    keep_columns: Collection[str] | None = None,
) -> ImportResult:
    """Import CSV rows (header first) into the campaign; see the module doc.

    With ``keep_columns``, other attribute columns are not stored. A number
    whose recipient was forgotten (only its hash kept) merges with it too.
    """
    from flask import current_app

    region = region or current_app.config[Keys.DEFAULT_REGION]
    session = get_state().db.session
    table = Recipient.__table__
    existing: dict[str, int] = {}
    forgotten: dict[str, int] = {}
    for phone, hashed, rid in session.execute(
        select(table.c.phone, table.c.phone_hash, table.c.id).where(table.c.campaign_id == campaign_id)
    ):
        if phone is not None:
            existing[phone] = rid
        elif hashed is not None:
            forgotten[hashed] = rid
    digest = phone_hasher() if forgotten else None
    result = ImportResult()
    rows = iter(rows)
    try:
        _, header = next(rows)
    except StopIteration:
        raise ImportError_("the file is empty") from None
    if any("\x00" in c for c in header):
        raise ImportError_("line 1: the header contains a NUL character")
    phone_at, external_at, attribute_at = header_columns(header)
    records = RecordColumns([h.strip().lower().replace(" ", "_") for h in header])
    attribute_at = [(i, name) for i, name in attribute_at if name not in RECORD_COLUMNS]
    if keep_columns is not None:
        result.dropped_columns = [n for _, n in attribute_at if n not in keep_columns]
        attribute_at = [(i, n) for i, n in attribute_at if n not in result.dropped_columns]
    fresh: dict[str, dict] = {}
    updates: dict[str, dict] = {}
    now = utcnow()
    for line, cells in rows:
        if progress is not None:
            progress(1)
        if not any(c.strip() for c in cells):
            continue
        if any("\x00" in c for c in cells):
            result.errors.append((line, "the row contains a NUL character"))
            continue
        try:
            phone = normalize_phone(cells[phone_at] if phone_at < len(cells) else "", region)
        except ValueError as err:
            result.errors.append((line, str(err)))
            continue
        external = cells[external_at].strip() if external_at is not None and external_at < len(cells) else ""
        if len(external) > 128:
            result.errors.append((line, "the external id is longer than 128 characters"))
            continue
        try:
            fields = records.read(cells)
        except ValueError as err:
            result.errors.append((line, str(err)))
            continue
        attributes = {name: cells[i].strip() for i, name in attribute_at if i < len(cells) and cells[i].strip()}
        record = fresh.get(phone) or updates.get(phone)
        if digest is not None and phone not in existing and (hashed := digest(phone)) in forgotten:
            existing[phone] = forgotten[hashed]
        if record is not None or phone in existing:
            result.merged += 1
            if record is None:
                record = updates[phone] = {"phone": phone, "external_id": None, "attributes": {}, "fields": {}}
            record["attributes"] = {**(record["attributes"] or {}), **attributes}
            record["external_id"] = external or record["external_id"]
            record["fields"].update(fields)
            continue
        fresh[phone] = {
            "campaign_id": campaign_id, "phone": phone, "external_id": external or None,
            "attributes": attributes, "status": "pending", "created_at": now,
            "fields": {"timezone": None, "consent_source": None, "consent_at": None, **fields},
        }
    owner = session.execute(select(Campaign.owner_id).where(Campaign.id == campaign_id)).scalar()
    for phone in suppressed_phones(owner, fresh):
        fresh[phone]["status"] = SUPPRESSED
        result.suppressed += 1
    values = [{**{k: v for k, v in r.items() if k != "fields"}, **r["fields"]} for r in fresh.values()]
    for start in range(0, len(values), BATCH):
        session.execute(insert(table), values[start:start + BATCH])
    for phone, record in updates.items():
        current = session.execute(select(table.c.attributes, table.c.external_id).where(table.c.id == existing[phone])).one()
        session.execute(
            update(table)
            .where(table.c.id == existing[phone])
            .values(
                attributes={**(current.attributes or {}), **record["attributes"]} or None,
                external_id=record["external_id"] or current.external_id,
                **record["fields"],
            )
        )
    session.commit()
    result.imported = len(values)
    return result
