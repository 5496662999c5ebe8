"""Chat commands: parse, check authority, call one handler, return a Reply."""

from commands import case, digest, fold, general, logistics, payout, reply  # noqa: F401  (registers the commands)
from commands.router import ChatInput, CommandContext, router

__all__ = ["ChatInput", "CommandContext", "router"]
