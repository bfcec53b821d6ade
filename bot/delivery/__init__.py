"""Delivery: rate limits, failure classification and the worker that drains the outbox."""
