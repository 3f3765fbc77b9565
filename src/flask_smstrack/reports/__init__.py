"""Reads: campaign reports, tables, rollups, statistics and CSV export."""
