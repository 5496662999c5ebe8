"""What every handler works with: `Services` (long-lived) and `Tx` (one transaction's tools)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import masking, visibility
from handlers.authority import StaffDirectory
from handlers.case_keys import search_keys
from handlers.channel import Capabilities
from handlers.clock import Clock
from handlers.config import DomainSettings, GroupSettings
from handlers.message import Mention, Notice, one_line
from handlers.outbox import CardKey, EffectKey, NoticeKey, TextKey
from handlers.rules import RuleTable
from handlers.templates import TemplateBook
from handlers.view import CardContext
from storage.coordination import Coordination
from storage.db import Database
from storage.models import Case
from storage.repositories import (
    AuditRepository,
    CardMessageRepository,
    CaseRepository,
    EventRepository,
    OutboxRepository,
    ParcelRepository,
    SandboxMessageRepository,
    TimerRepository,
)


@dataclass
class Services:
    settings: DomainSettings
    db: Database
    clock: Clock
    coord: Coordination
    staff: StaffDirectory = field(init=False)
    rules: RuleTable = field(init=False)
    templates: TemplateBook = field(init=False)
    tz: tzinfo = field(init=False)
    # What each running channel declares it can do, by channel name (filled in by the wiring
    # once the channels are built; empty means nothing is known, so nothing is assumed).
    capabilities: dict[str, Capabilities] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.staff = StaffDirectory(self.settings.staff)
        self.rules = RuleTable.from_settings(self.settings.rules)
        self.templates = TemplateBook.from_settings(self.settings)
        self.tz = ZoneInfo(self.settings.bot.timezone)

    @asynccontextmanager
    async def tx(self, *, urgent: bool = False) -> AsyncIterator[Tx]:
        async with self.db.begin(urgent=urgent) as session:
            yield Tx(session, self, self.clock.now())

    def route(self, *, shop: str, platform: str, kind: str) -> GroupSettings | None:
        """The first configured group that takes this shop, platform and case kind."""
        return self.settings.route(shop=shop, platform=platform, kind=kind)

    @property
    def admin_group(self) -> str:
        groups = self.settings.groups
        return self.settings.bot.admin_group or (groups[0].id if groups else "")


@dataclass
class Tx:
    """One open transaction, with the repositories and the small writes every flow needs."""

    session: AsyncSession
    svc: Services
    now: datetime

    @cached_property
    def cases(self) -> CaseRepository:
        return CaseRepository(self.session, search_keys)

    @cached_property
    def events(self) -> EventRepository:
        return EventRepository(self.session)

    @cached_property
    def outbox(self) -> OutboxRepository:
        return OutboxRepository(self.session)

    @cached_property
    def timers(self) -> TimerRepository:
        return TimerRepository(self.session)

    @cached_property
    def audit_log(self) -> AuditRepository:
        return AuditRepository(self.session)

    @cached_property
    def cards(self) -> CardMessageRepository:
        return CardMessageRepository(self.session)

    @cached_property
    def parcels(self) -> ParcelRepository:
        return ParcelRepository(self.session)

    @cached_property
    def sandbox(self) -> SandboxMessageRepository:
        return SandboxMessageRepository(self.session)

    async def audit(
        self,
        case: Case | None,
        actor: str,
        action: str,
        *,
        from_state: str = "",
        channel: str = "",
        **detail: Any,
    ) -> None:
        await self.audit_log.add(
            case_pk=case.id if case else None,
            at=self.now,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=case.state if case else "",
            channel=channel,
            detail=detail,
        )

    async def sync_card(self, case: Case, *, refresh: str = "") -> None:
        """Queue the card of `case` to be (re)drawn from its current row.

        The card is drawn from the row at delivery time, so once per transaction is enough;
        `refresh` redraws an unchanged version (a countdown).
        """
        queued: set[int] = self.session.info.setdefault("cards_queued", set())
        if case.group_id and (refresh or case.id not in queued):
            if not await self._shown(case):
                return
            queued.add(case.id)
            await self.outbox.add(
                str(CardKey(case.id, case.version, refresh)),
                "card",
                now=self.now,
                case_pk=case.id,
                group_id=case.group_id,
                payload={"version": case.version},
            )

    async def _shown(self, case: Case) -> bool:
        """The group shows this case's card: it takes every card, or this one needs a person,
        or the card is there already (`handlers.visibility`)."""
        group = self.svc.settings.group(case.group_id)
        if visibility.shown(case, group):
            return True
        return await self.cards.get(case.id, case.group_id) is not None

    async def post(
        self,
        group_id: str,
        text: str,
        *,
        key: str,
        mentions: tuple[Mention, ...] = (),
        case: Case | None = None,
    ) -> None:
        """Queue a text line to a group under the deterministic id `key`: one line (no text
        carried in it can fake a line of its own), personal data masked (the numbers of `case`
        shown)."""
        if group_id:
            text = masking.redact(one_line(text), masking.identifiers(case) if case else ())
            await self.outbox.add(
                str(TextKey(group_id, key)),
                "text",
                now=self.now,
                case_pk=case.id if case else None,
                group_id=group_id,
                payload={"text": text, "mentions": [[m.staff_id, m.name] for m in mentions]},
            )

    async def notice(self, group_id: str, notice: Notice) -> None:
        """Queue a standalone card (a digest) to a group, once per notice key."""
        if group_id:
            notice = masking.redact_notice(notice)
            await self.outbox.add(
                str(NoticeKey(group_id, notice.key)),
                "notice",
                now=self.now,
                group_id=group_id,
                payload=notice.to_json(),
            )

    async def side_effect(
        self, case: Case, action: str, payload: dict[str, Any] | None = None, *, attempt: int = 1
    ) -> str:
        """Queue a call to the commerce/carrier/payout systems; its id is the idempotency key."""
        key = effect_key(case, action, attempt)
        await self.outbox.add(
            key, action, now=self.now, case_pk=case.id, group_id=case.group_id, payload=payload
        )
        return key

    async def schedule(
        self, case: Case, kind: str, due_at: datetime, suffix: str = "", **payload: Any
    ) -> None:
        await self.timers.schedule(
            f"{kind}:{case.id}{':' + suffix if suffix else ''}",
            kind,
            due_at=due_at,
            now=self.now,
            case_pk=case.id,
            payload=payload,
        )

    def after(self, **delta: float) -> datetime:
        return self.now + timedelta(**delta)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.svc.tz)

    @cached_property
    def view(self) -> CardContext:
        """What this transaction's cards are drawn with."""
        svc = self.svc
        return CardContext(self.now, svc.tz, svc.staff, svc.templates, svc.settings)


def effect_key(case: Case, action: str, attempt: int = 1) -> str:
    """The outbox id (and idempotency key) of one attempt of a side effect on a case."""
    return str(EffectKey(action, case.kind, case.case_id, attempt))
