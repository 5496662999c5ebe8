"""Typed application-state keys."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.dispatch import Dispatcher
from bot.group_commit import GroupCommit
from bot.metrics import Metrics
from bot.processor import EventProcessor
from bot.scheduler import Scheduler
from bot.services import BotServices
from bot.settings import Settings
from integrations.dingtalk.channel import DingtalkChannel
from integrations.sandbox.channel import SandboxChannel

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", BotServices)
METRICS = web.AppKey("metrics", Metrics)
HTTP = web.AppKey("http", aiohttp.ClientSession)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
PROCESSOR = web.AppKey("processor", EventProcessor)
SCHEDULER = web.AppKey("scheduler", Scheduler)
SANDBOX = web.AppKey("sandbox", SandboxChannel)
DINGTALK_HTTP = web.AppKey("dingtalk_http", DingtalkChannel)
WRITER = web.AppKey("writer", GroupCommit)
# `refundops demo --via`: the in-process platform fake the demo shop is connected to.
FAKE_PLATFORM = web.AppKey("fake_platform", object)
