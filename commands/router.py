"""Chat commands: a router with bilingual names, positional argument models and an ACL filter.

`@router.command("approve", "通过", roles=DECIDERS)` registers a coroutine taking a
`CommandContext` and its `<Name>Args`; its docstring is its help text. A command calls
handlers and returns a `Reply`; the platform adapter sends it.

Two filters run before a command, both failing closed: the ACL (the caller's roles) and the
scope (commands.scope): every argument marked `ref` must name a case, or a batch card, of
the group the command was typed in.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from commands.scope import Scope
from handlers import masking, material, reference
from handlers.config import StaffSettings
from handlers.context import Services
from handlers.errors import StaleCardError, UsageError, UserError
from handlers.message import Reply
from handlers.reference import explicit_handle, handle_ref
from storage.models import Case, Fold
from storage.repositories import StaleCaseError

log = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseModel)
Handler = Callable[["CommandContext", Any], Awaitable[Reply]]
MENTION = re.compile(r"^\s*(?:@\S+\s*)+")
STALE_RETRIES = 3


class Args(BaseModel):
    """Positional arguments in field order; a last `str` field marked `rest` takes the remainder."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoArgs(Args):
    pass


@dataclass(frozen=True)
class ChatInput:
    """One thing a person did in a chat, already verified and parsed by the platform adapter.

    A click (`action`) carries `card_version`, the version of the card it was drawn from (0
    when the platform cannot tell); typed text has None.
    """

    channel: str
    platform: str
    user: str
    text: str = ""
    # The configured group it came from; empty for a DM (`direct`) or a chat no group names.
    group_id: str = ""
    action: str = ""
    case_ref: str = ""
    input_id: str = ""
    direct: bool = False
    card_version: int | None = None

    @property
    def drawn(self) -> int | None:
        """The card version a click acts from (0 when unknown); None for typed text."""
        if not self.action:
            return None
        return 0 if self.card_version is None else self.card_version


@dataclass
class CommandContext:
    svc: Services
    input: ChatInput
    staff: StaffSettings | None
    router: Router

    @property
    def channel(self) -> str:
        return self.input.channel

    @property
    def me(self) -> StaffSettings:
        """The caller; the router's ACL filter has already refused anyone not in the directory."""
        assert self.staff is not None
        return self.staff

    def require(self, roles: Iterable[str], what: str) -> StaffSettings:
        return self.svc.staff.require(self.staff, roles, what)

    @cached_property
    def scope(self) -> Scope:
        return Scope.of(
            self.svc.settings, self.staff, group_id=self.input.group_id, direct=self.input.direct
        )

    def allow(self, case: Case) -> Case:
        """`case`, when it may be acted on from where the command was typed; else a refusal."""
        return self.scope.check(case)

    async def check_refs(self, args: Args) -> None:
        """The scope filter: each `ref` argument names a case (or batch card) of this place."""
        for name, field in type(args).model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            value = getattr(args, name)
            if not extra.get("ref") or not isinstance(value, str) or not value:
                continue
            async with self.svc.tx() as tx:
                if extra["ref"] == "fold":
                    fold = await tx.session.get(Fold, value.strip().lstrip("#＃").upper())
                    if fold is not None:
                        self.scope.check_group(fold.group_id, fold.key)
                    continue
                refs = value.split() if extra["ref"] == "cases" else [value]
                for ref in refs:
                    case = await reference.find(tx, ref)
                    if case is not None:
                        self.allow(case)


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    handler: Handler
    args: type[Args]
    roles: frozenset[str]
    what: str

    @property
    def help(self) -> str:
        return (self.handler.__doc__ or "").strip().splitlines()[0]

    def usage(self, name: str | None = None) -> str:
        parts = [name or self.names[1 if len(self.names) > 1 else 0]]
        for field_name, field in self.args.model_fields.items():
            label = field.description or field_name
            parts.append(f"<{label}>" if field.is_required() else f"[{label}]")
        return " ".join(parts)


class Router:
    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._by_name: dict[str, Command] = {}

    @classmethod
    def of(cls, *routers: Router) -> Router:
        """One router answering every command of `routers`, listed in their order; a name
        claimed twice is a mistake in the code, refused at once."""
        merged = cls()
        for router in routers:
            for command in router.commands:
                merged._add(command)
        return merged

    def _add(self, command: Command) -> None:
        for name in command.names:
            if name.lower() in self._by_name:
                raise ValueError(f"command name {name!r} is registered twice")
        self.commands.append(command)
        for name in command.names:
            self._by_name[name.lower()] = command

    def command(
        self, *names: str, args: type[Args] = NoArgs, roles: Iterable[str] = (), what: str = ""
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._add(Command(names, handler, args, frozenset(roles), what or names[-1]))
            return handler

        return register

    def lookup(self, name: str) -> Command | None:
        return self._by_name.get(name.lower())

    def split(self, text: str) -> tuple[str, str]:
        """('通过', 'R12') from '@bot 通过 R12', '通过R12' or 'approve r12'."""
        text = MENTION.sub("", text).strip()
        head, _, rest = text.partition(" ")
        if self.lookup(head) is None:
            for name in sorted(self._by_name, key=len, reverse=True):
                if not name.isascii() and text.startswith(name):
                    return name, text[len(name) :].strip()
        return head, rest.strip()

    def parse(self, command: Command, name: str, rest: str) -> Args:
        fields = list(command.args.model_fields.items())
        values: dict[str, str] = {}
        remaining = rest
        for i, (field_name, field) in enumerate(fields):
            if not remaining:
                break
            extra = field.json_schema_extra
            takes_rest = i == len(fields) - 1 and isinstance(extra, dict) and extra.get("rest")
            if takes_rest:
                values[field_name], remaining = remaining, ""
            else:
                values[field_name], _, remaining = remaining.partition(" ")
                remaining = remaining.strip()
        if remaining:
            raise UsageError(f"多余的内容「{remaining}」。用法：{command.usage(name)}")
        try:
            return command.args.model_validate(values)
        except ValidationError as exc:
            raise UsageError(f"用法：{command.usage(name)}") from exc

    async def handle(self, svc: Services, chat: ChatInput) -> Reply:
        """Run the command in `chat.text` (or the click `chat.action`) and return the reply,
        personal data masked (the chat is wider than the case's buyer)."""
        return masking.redact_reply(await self._handle(svc, chat))

    async def _handle(self, svc: Services, chat: ChatInput) -> Reply:
        input_id = chat.input_id or uuid.uuid4().hex[:12]
        staff = svc.staff.by_platform(chat.platform, chat.user)
        ctx = CommandContext(svc, chat, staff, self)
        try:
            command, args = self._resolve(chat)
            ctx.require(command.roles or {"agent", "supervisor", "finance", "admin"}, command.what)
            await ctx.check_refs(args)
            if chat.action:
                await _ensure_fresh(svc, chat)
            for attempt in range(STALE_RETRIES):
                try:
                    return await command.handler(ctx, args)
                except StaleCaseError:
                    if attempt == STALE_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")
        except StaleCardError as exc:
            await _redraw(svc, exc.case_pk, input_id)
            return Reply(exc.message, ok=False)
        except UserError as exc:
            # A refusal calls on whoever was refused; those who could do it are named, not @-ed.
            asker = (svc.staff.mention(staff),) if staff is not None and exc.mentions else ()
            return Reply(exc.message, mentions=asker, ok=False)
        except Exception:
            log.exception("command failed: input %s from %s/%s", input_id, chat.channel, chat.user)
            return Reply(f"处理出错了，已记录（编号 {input_id}），请稍后再试或联系管理员", ok=False)

    def _resolve(self, chat: ChatInput) -> tuple[Command, Args]:
        if chat.action:
            command = self.lookup(chat.action)
            if command is None:
                raise UsageError(f"这个按钮已失效（{chat.action}）")
            # A button carries its card's reference (R12, F3 …) as the first argument.
            fields = list(command.args.model_fields.items())
            if not fields:
                return command, command.args()
            required = [name for name, info in fields if info.is_required()]
            if len(required) > 1:
                first = fields[0][1].description or fields[0][0]
                raise UsageError(
                    f"请在群里输入：{command.usage().replace(f'<{first}>', chat.case_ref)}"
                )
            # The card names its case by handle: never let an id shaped like it stand in.
            ref = chat.case_ref if explicit_handle(chat.case_ref) else handle_ref(chat.case_ref)
            return command, command.args.model_validate({fields[0][0]: ref})
        name, rest = self.split(chat.text)
        if not name:
            raise UsageError(self.hint())
        command = self.lookup(name)
        if command is None:
            raise UsageError(f"没有「{name[:20]}」这个命令。{self.hint()}")
        return command, self.parse(command, name, rest)

    def hint(self) -> str:
        return "试试：帮助 · 待办 · 查 R12 · 通过 R12 · 拒绝 R12 原因（英文：help / todo / show / approve / reject）"


async def _ensure_fresh(svc: Services, chat: ChatInput) -> None:
    """Refuse any click on a card drawn before its case last changed materially. Commands that
    move money check again inside their own transaction, where nothing can slip in between."""
    async with svc.tx() as tx:
        case = await tx.cases.find(chat.case_ref) if chat.case_ref else None
        if case is not None:
            material.ensure_fresh(case, chat.drawn)


async def _redraw(svc: Services, case_pk: int, input_id: str) -> None:
    """Queue the refused click's card to be drawn again as the case is now."""
    async with svc.tx() as tx:
        case = await tx.cases.get(case_pk)
        if case is not None:
            await tx.sync_card(case, refresh=f"stale-{input_id[-24:]}")
