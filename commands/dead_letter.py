"""Admins send dead-lettered deliveries again once their cause (an outage, a removed robot)
is fixed."""

from __future__ import annotations

from pydantic import Field

from commands.router import Args, CommandContext, Router
from handlers import dead_letter
from handlers.message import Reply

router = Router()


class RequeueArgs(Args):
    kind: str = Field(default="", description="类型 card|text|notice|wecom.reply", max_length=40)
    since: str = Field(default="", description="起始时间 2h|2026-11-23", max_length=40)


@router.command("requeue", "重发死信", args=RequeueArgs, roles=("admin",), what="重发死信")
async def requeue(ctx: CommandContext, args: RequeueArgs) -> Reply:
    """重发放弃了的卡片和消息（可限类型与起始时间，如 重发死信 card 2h）"""
    kind, since_text = args.kind, args.since
    if kind and not since_text and dead_letter.looks_like_time(kind):
        kind, since_text = "", kind
    async with ctx.svc.tx() as tx:
        since = dead_letter.parse_since(since_text, tx.now, ctx.svc.tz) if since_text else None
        done = await dead_letter.requeue(tx, kind, since)
    when = f"（{since.astimezone(ctx.svc.tz):%m-%d %H:%M} 以来）" if since else ""
    lines = [f"♻ 已重发 {done.count} 条{when}"]
    if done.left:
        others = "、".join(f"{k} {n} 条" for k, n in sorted(done.left.items()))
        lines.append(f"未重发：{others}（退款、打款、拦截请在单据上用 重试 / 重新打款 / 拦截）")
    return Reply("\n".join(lines))
