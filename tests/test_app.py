"""The composition root holds only what it declares."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import App
from bot.config import load_settings
from bot.store.db import Store


async def test_app_takes_no_attributes_on_the_way(store: Store) -> None:
    app = App(settings=load_settings(text="sources: []"), store=store)
    loose: Any = app
    with pytest.raises(AttributeError):
        loose.delivery_wakeup = lambda: None  # a misspelt hook fails at once instead of never firing
    assert app.delivery_wake is None and app.on_subscription_changed is None
    app.wake_delivery()  # nothing runs to be woken: a no-op
    woken: list[int] = []
    app.delivery_wake = lambda: woken.append(1)
    app.wake_delivery()
    assert woken == [1]
