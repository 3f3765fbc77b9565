"""HTTP: one module per blueprint (redirect, collect, api, webhooks, dashboard)."""
