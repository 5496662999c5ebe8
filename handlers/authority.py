"""The staff directory and who may do what: checked at click and command time, failing closed."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from handlers.config import StaffSettings
from handlers.errors import PermissionDeniedError
from handlers.message import Mention
from handlers.money import fen_to_yuan, format_fen

ROLE_NAMES = {"agent": "客服", "supervisor": "主管", "finance": "财务", "admin": "管理员"}
DECIDERS = frozenset({"agent", "supervisor", "admin"})
SUPERVISORS = frozenset({"supervisor", "admin"})
PLATFORMS = ("sandbox", "wecom", "dingtalk")


def account(staff: StaffSettings, platform: str) -> str:
    """Who `staff` is on `platform` (the id its messages carry and its @-mentions use); "" when
    they have no account there. The sandbox knows everyone, by staff id unless told otherwise."""
    if platform == "sandbox":
        return staff.sandbox_user or staff.id
    if platform == "wecom":
        return staff.wecom_userid
    if platform == "dingtalk":
        return staff.dingtalk_staff_id
    return ""


class StaffDirectory:
    def __init__(self, staff: Iterable[StaffSettings]) -> None:
        self.staff = list(staff)
        self._by_id = {s.id: s for s in self.staff}
        self._by_platform: dict[tuple[str, str], StaffSettings] = {}
        holders: dict[tuple[str, str], set[str]] = {}
        for s in self.staff:
            for platform in PLATFORMS:
                ident = account(s, platform)
                if ident:
                    self._by_platform[(platform, ident)] = s
                    holders.setdefault((platform, ident.strip().casefold()), set()).add(s.id)
        # An account two entries claim (check-config names it) is nobody's: fail closed.
        for (platform, ident), _ in list(self._by_platform.items()):
            if len(holders[(platform, ident.strip().casefold())]) > 1:
                del self._by_platform[(platform, ident)]

    def get(self, staff_id: str) -> StaffSettings | None:
        return self._by_id.get(staff_id)

    def by_platform(self, platform: str, ident: str) -> StaffSettings | None:
        return self._by_platform.get((platform, ident))

    def accounts(self, platform: str) -> dict[str, str]:
        """Staff id → their account on `platform`, for everyone who has one there."""
        return {s.id: ident for s in self.staff if (ident := account(s, platform))}

    def with_role(self, roles: Iterable[str]) -> list[StaffSettings]:
        wanted = set(roles)
        return [s for s in self.staff if wanted & set(s.roles)]

    def mention(self, staff: StaffSettings) -> Mention:
        return Mention(staff.id, staff.display)

    def mentions(self, staff: Iterable[StaffSettings]) -> tuple[Mention, ...]:
        return tuple(self.mention(s) for s in staff)

    def to_mention(
        self,
        first: str = "",
        *,
        roles: Iterable[str] = (),
        approving: tuple[int, str] | None = None,
    ) -> tuple[Mention, ...]:
        """Who a message @-mentions: `first` (a staff id: the assignee, the requester) when that
        is someone on the staff; else whoever may approve `approving` (fen, as role), smallest
        authority first; else everyone holding one of `roles`."""
        if first and (staff := self.get(first)) is not None:
            return (self.mention(staff),)
        if approving is not None:
            return self.mentions(self.approvers(*approving))
        return self.mentions(self.with_role(roles))

    def name(self, actor: str) -> str:
        staff = self._by_id.get(actor)
        if staff is not None:
            return staff.display
        if actor.startswith("rule:"):
            return f"规则 {actor[5:]}"
        return {
            "system": "系统",
            "platform": "平台",
            "commerce": "店铺系统",
            "warehouse": "仓库",
            "carrier": "快递",
            "buyer": "买家",
        }.get(actor, actor)

    # -- authority ---------------------------------------------------------------------------

    @staticmethod
    def refund_limit_fen(staff: StaffSettings) -> int | None:
        """The most this person may approve alone, in fen; None means no limit."""
        if "admin" in staff.roles:
            return None
        return int((staff.refund_limit or 0) * 100)

    def may_approve(self, staff: StaffSettings, amount_fen: int, role: str = "agent") -> bool:
        if not DECIDERS & set(staff.roles):
            return False
        if role == "supervisor" and not SUPERVISORS & set(staff.roles):
            return False
        limit = self.refund_limit_fen(staff)
        return limit is None or amount_fen <= limit

    def approvers(self, amount_fen: int, role: str = "agent") -> list[StaffSettings]:
        """Who may approve this amount, smallest authority first (they are the ones to ask)."""
        able = [s for s in self.staff if self.may_approve(s, amount_fen, role)]
        return sorted(able, key=lambda s: _limit_key(self.refund_limit_fen(s)))

    def require(
        self, staff: StaffSettings | None, roles: Iterable[str], what: str
    ) -> StaffSettings:
        """The ACL filter: `staff` must exist and hold one of `roles`, else a refusal naming who can."""
        wanted = set(roles)
        if staff is not None and wanted & set(staff.roles):
            return staff
        able = self.with_role(wanted)
        who = "、".join(s.display for s in able) or "管理员"
        role_text = "/".join(ROLE_NAMES.get(r, r) for r in sorted(wanted))
        if staff is None:
            admins = self.with_role(["admin"])
            raise PermissionDeniedError(
                f"你不在售后名单中，不能{what}。请管理员"
                f"{'、'.join(s.display for s in admins)}把你加入 staff 配置"
            )
        raise PermissionDeniedError(
            f"{staff.display} 没有{what}的权限（需要{role_text}）。可以{what}的是：{who}",
            mentions=self.mentions(able),
        )

    def who_may_approve(self, amount_fen: int, role: str) -> tuple[str, tuple[Mention, ...]]:
        """Who may approve this amount, as text with their limits, and as @-mentions."""
        able = self.approvers(amount_fen, role)
        who = "、".join(_with_limit(s, self.refund_limit_fen(s)) for s in able) or "管理员"
        return who, self.mentions(able)

    def limit_text(self, staff: StaffSettings | None) -> str:
        if staff is None:
            return format_fen(0)
        limit = self.refund_limit_fen(staff)
        return "无" if limit is None else format_fen(limit)

    def refuse_amount(
        self, staff: StaffSettings, amount_fen: int, role: str
    ) -> PermissionDeniedError:
        who, mentions = self.who_may_approve(amount_fen, role)
        return PermissionDeniedError(
            f"{format_fen(amount_fen)} 超出 {staff.display} 的退款权限"
            f"（{self.limit_text(staff)}）。可以批准的是：{who}",
            mentions=mentions,
        )


def _limit_key(limit: int | None) -> Decimal:
    return Decimal("Infinity") if limit is None else fen_to_yuan(limit)


def _with_limit(staff: StaffSettings, limit: int | None) -> str:
    return f"{staff.display}（{'不限' if limit is None else format_fen(limit)}）"
