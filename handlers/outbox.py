"""Outbox item ids as values: each kind of item names itself the same way every time, so adding it
twice is a no-op, and what the dispatcher needs to know is read from fields, not from the text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardKey:
    """`card:<case pk>:<version>[:<refresh>]`: draw the case's card at this version; a
    `refresh` redraws a version already shown (a countdown, a stale click)."""

    case_pk: int
    version: int
    refresh: str = ""

    def __str__(self) -> str:
        return f"card:{self.case_pk}:{self.version}" + (f":{self.refresh}" if self.refresh else "")

    @classmethod
    def parse(cls, item_id: str) -> CardKey:
        _, case_pk, version, *refresh = item_id.split(":", 3)
        return cls(int(case_pk), int(version), refresh[0] if refresh else "")


@dataclass(frozen=True)
class TextKey:
    """`text:<group>:<key>`: one line to a group, once per `key`."""

    group_id: str
    key: str

    def __str__(self) -> str:
        return f"text:{self.group_id}:{self.key}"


@dataclass(frozen=True)
class NoticeKey:
    """`notice:<group>:<key>`: one standalone card (a digest) to a group."""

    group_id: str
    key: str

    def __str__(self) -> str:
        return f"notice:{self.group_id}:{self.key}"


@dataclass(frozen=True)
class EffectKey:
    """`<action>:<case kind>:<case id>:<attempt>`: one attempt of a call to another system; the
    id is also the call's idempotency key there."""

    action: str
    kind: str
    case_id: str
    attempt: int = 1

    def __str__(self) -> str:
        return f"{self.action}:{self.kind}:{self.case_id}:{self.attempt}"


@dataclass(frozen=True)
class InputKey:
    """`<kind>:<channel>:<dedup>` (at most 255 characters): a platform input or the reply it
    still owes, under the platform's own dedup key, so a retried callback finds it."""

    kind: str
    channel: str
    dedup: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.channel}:{self.dedup}"[:255]


OutboxKey = CardKey | TextKey | NoticeKey | EffectKey | InputKey
