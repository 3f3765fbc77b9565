"""Sales reported by the places where they happen: Stripe's and Shopify's
signed webhooks, stored as verified conversions (see :mod:`.sales`)."""
