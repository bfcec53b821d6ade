"""Digests: which stories (``select``, pure), read from the store (``queries``), put together
(``compose``), and the formatters every renderer shares (``format``)."""

from bot.digest.compose import compose, default_subscription
from bot.digest.queries import record_delivered

__all__ = ["compose", "default_subscription", "record_delivered"]
