"""SMS campaigns: segments, messages, recipients, sending and link checks."""
