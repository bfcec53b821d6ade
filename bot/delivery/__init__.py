"""Delivery: the outbox table (``queue``), queueing a digest (``enqueue``), the worker that
sends within each adapter's limits (``worker``, ``ratelimit``), and ``digest --send`` (``drain``)."""
