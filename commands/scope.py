"""Where a command may act: on the cases routed to the group it was typed in (or a button
tapped in), or from a DM on those of the person's own groups; an admin on any case.

A person's own groups are the `wecom_app` groups whose chat_id (the DM list) names them and
the groups their [[staff]] entry lists in `groups`. A chat that no [[groups]] entry names
has none. Lists and searches (待办, 查 by order, tracking number or nick, 待打款, 批量打款,
全部审批, 日报) read the same groups; an admin's DM reads all.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.authority import account
from handlers.config import DomainSettings, GroupSettings, StaffSettings
from handlers.errors import PermissionDeniedError
from storage.models import Case


def own_groups(settings: DomainSettings, staff: StaffSettings) -> frozenset[str]:
    """The groups whose cases `staff` may act on from a DM."""
    listed = {
        g.id
        for g in settings.groups
        if g.channel == "wecom_app"
        and {staff.id, account(staff, "wecom")}
        & {p.strip() for p in g.chat_id.split("|") if p.strip()}
    }
    return frozenset(listed | {g for g in staff.groups if settings.group(g) is not None})


@dataclass(frozen=True)
class Scope:
    settings: DomainSettings
    place: str
    direct: bool
    groups: frozenset[str]
    admin: bool

    @classmethod
    def of(
        cls, settings: DomainSettings, staff: StaffSettings | None, *, group_id: str, direct: bool
    ) -> Scope:
        place = group_id if settings.group(group_id) is not None else ""
        if staff is None:
            groups: frozenset[str] = frozenset()
        elif place:
            groups = frozenset({place})
        elif direct:
            groups = own_groups(settings, staff)
        else:
            groups = frozenset()
        admin = staff is not None and "admin" in staff.roles
        return cls(settings, place, direct and not place, groups, admin)

    @property
    def listed(self) -> frozenset[str] | None:
        """The groups whose cases a list shows; None for every group (an admin's DM)."""
        return None if self.admin and self.direct else self.groups

    def allows_listed(self, case: Case) -> bool:
        listed = self.listed
        return listed is None or case.group_id in listed

    def allows(self, case: Case) -> bool:
        return self.allows_group(case.group_id)

    def allows_group(self, group_id: str) -> bool:
        return self.admin or (bool(group_id) and group_id in self.groups)

    def check(self, case: Case) -> Case:
        """`case`, when a command here may act on it; else a refusal naming its group."""
        self.check_group(case.group_id, case.handle)
        return case

    def check_group(self, group_id: str, what: str) -> None:
        if self.allows_group(group_id):
            return
        owner = self._name(self.settings.group(group_id))
        if not group_id:
            raise PermissionDeniedError(f"{what} 没有分到任何群，只有管理员可以处理")
        if self.place:
            here = self._name(self.settings.group(self.place))
            raise PermissionDeniedError(
                f"{what} 属于「{owner}」，不能在「{here}」处理：请到「{owner}」操作"
            )
        if self.direct:
            raise PermissionDeniedError(
                f"{what} 属于「{owner}」，私聊只能处理你所在群的单据：请到「{owner}」操作"
            )
        raise PermissionDeniedError(
            f"{what} 属于「{owner}」，这个群没有配置在 [[groups]] 里：请到「{owner}」操作"
        )

    @staticmethod
    def _name(group: GroupSettings | None) -> str:
        return (group.name or group.id) if group is not None else "未知群"
