"""Setting a group up: what the bot says when it is @-mentioned in a group that no [[groups]]
entry names yet. The answer goes to that group only and carries the group's chat id and the
lines to put in the config; the admin group is told once per chat id."""

from __future__ import annotations

from handlers.config import DomainSettings, GroupSettings
from handlers.context import Tx


def waiting(settings: DomainSettings, channel: str) -> list[GroupSettings]:
    """The [[groups]] entries of `channel` still without their chat id."""
    return [g for g in settings.groups if g.channel == channel and g.awaiting_chat_id]


def unknown_group_hint(settings: DomainSettings, channel: str, chat_id: str) -> str:
    """The lines a group that no [[groups]] entry names gets with every answer of the bot.

    No line starts with a markup character, so the config lines copy out of a Markdown
    answer without an invisible character in front."""
    entries = waiting(settings, channel)
    if len(entries) == 1:
        entry = entries[0].id
        what = f'把它补进 [[groups]] 里 id = "{entry}" 那一段'
    else:
        taken = {g.id for g in settings.groups}
        entry = next(
            f"group{n}"
            for n in range(len(taken) + 1, 2 * len(taken) + 2)
            if f"group{n}" not in taken
        )
        what = "在 refundops.toml 里给这个群加一段 [[groups]]（id 可改成好记的名字）"
    return "\n".join(
        (
            f"本群还没有接入 refundops，本群的 chat_id 是：{chat_id}",
            f"管理员：{what}，然后重启 refundops，卡片就会发到这里：",
            f'id = "{entry}"',
            f'channel = "{channel}"',
            f'chat_id = "{chat_id}"',
        )
    )


async def tell_admins(tx: Tx, channel: str, chat_id: str, title: str = "") -> None:
    """The admin group learns of the new group once (a group still without its chat id is
    told nothing: it is reached by nobody yet)."""
    admin = tx.svc.settings.group(tx.svc.admin_group)
    if admin is None or admin.awaiting_chat_id:
        return
    name = f"「{title}」" if title else ""
    await tx.post(
        admin.id,
        f"🆕 有人在新群{name}（{channel}）@了机器人：它的 chat_id 是 {chat_id}，"
        "写进 [[groups]] 的 chat_id 并重启后，这个群就能收卡片",
        key=f"new-group:{channel}:{chat_id}"[:200],
        mentions=tx.svc.staff.to_mention(roles=["admin"]),
    )
