"""The digest on demand."""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field

from commands.router import Args, CommandContext, Router
from handlers import digest
from handlers.message import Reply

router = Router()


class DigestArgs(Args):
    span: str = Field(default="", description="今天|昨天|7", max_length=12)


@router.command("digest", "日报", args=DigestArgs, what="查看日报")
async def show_digest(ctx: CommandContext, args: DigestArgs) -> Reply:
    """今天到现在的日报（昨天 / 7 = 最近 7 天）；在群里会发成卡片"""
    if (
        args.span not in ("", "今天", "today", "昨天", "yesterday")
        and not args.span.rstrip("天d").isdigit()
    ):
        return Reply("用法：日报 [今天|昨天|7]", ok=False)
    svc, scope = ctx.svc, ctx.scope
    # Here: this group's; in a DM: the admin group's for an admin, else the person's own group's.
    group_id = scope.place or (svc.admin_group if scope.admin else min(scope.groups, default=""))
    if not group_id or not (scope.place or scope.direct):
        return Reply("这里看不了日报：请在售后群里 @我 日报", ok=False)
    async with svc.tx() as tx:
        span = digest.span_for(svc, args.span, tx.now)
        notice = await digest.build(tx, group_id, span)
        if not scope.place:
            return Reply(notice.plain())
        await tx.notice(group_id, replace(notice, key=f"{notice.key}:asked:{tx.now:%H%M%S%f}"))
    return Reply(f"📊 {notice.title} 已发到群里")
