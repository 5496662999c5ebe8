"""Every Redis key refundops uses, in one place."""

from __future__ import annotations

PREFIX = "refundops"


def dedup(key: str) -> str:
    return f"{PREFIX}:dedup:{key}"


def bucket(name: str) -> str:
    return f"{PREFIX}:bucket:{name}"


def wake(topic: str) -> str:
    return f"{PREFIX}:wake:{topic}"


def fanout(channel: str) -> str:
    return f"{PREFIX}:fanout:{channel}"


def lock(name: str) -> str:
    return f"{PREFIX}:lock:{name}"


def cache(name: str) -> str:
    return f"{PREFIX}:cache:{name}"
