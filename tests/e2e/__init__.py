"""Helpers for the end-to-end tests (``tests/test_browser.py``,
``tests/test_wheel.py``...): real servers on 127.0.0.1, a landing site, a
fake Twilio, and their data put in from the test process."""
