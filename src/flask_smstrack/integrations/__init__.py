"""Integrations with other tools.

Sales reported by the places where they happen: Stripe's and Shopify's
signed webhooks, stored as verified conversions (see :mod:`.sales`).

Events sent to other tools: owners' webhook endpoints, signed with the
Standard Webhooks scheme, and conversions forwarded to Google Analytics 4.
:mod:`.endpoints` adds and changes endpoints, :mod:`.events` turns new rows
into deliveries, :mod:`.webhooks_out` delivers them with retries, and
:mod:`.log` reads both for the dashboard and the API."""
