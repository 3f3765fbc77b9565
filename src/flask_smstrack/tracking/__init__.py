"""Writes: click recording, the click writer, the spool and conversions."""
