"""Chat commands: parse, check authority, call one handler, return a Reply. Each module keeps
its own `router`; the bot puts them together (bot.registry.commands)."""

from commands.router import ChatInput, CommandContext, Router

__all__ = ["ChatInput", "CommandContext", "Router"]
