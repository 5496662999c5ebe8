"""The core's `Services` as the bot builds them: holding the whole `Settings`, not only the
domain's sections, so the loops and platform bridges read their own keys from the same object,
and the chat commands every channel hands its input to."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from commands.router import Router
from handlers.context import Services


@dataclass
class BotServices(Services):
    settings: Settings
    commands: Router
