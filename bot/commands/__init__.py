"""Chat commands as platform-neutral handlers; ``handle`` is the one way in."""

from bot.commands.context import apply_filter_args
from bot.commands.dispatch import COMMAND_NAMES, descriptions, handle, needs_admin, resolve

__all__ = ["COMMAND_NAMES", "apply_filter_args", "descriptions", "handle", "needs_admin", "resolve"]
