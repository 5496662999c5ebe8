"""Chat commands: parse, check authority, call one handler, return a Reply."""

from commands import (  # noqa: F401  (registers the commands)
    case,
    dead_letter,
    digest,
    fold,
    general,
    logistics,
    payout,
    reply,
)
from commands.router import ChatInput, CommandContext, router

__all__ = ["ChatInput", "CommandContext", "router"]
