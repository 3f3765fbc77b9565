"""Background jobs: run by RQ workers when ``SMSTRACK_REDIS_URL`` is set,
inline in the calling process otherwise (:mod:`.queue`)."""
