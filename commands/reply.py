"""Answering buyers from the group: a reply (text or #template) and the list of templates."""

from __future__ import annotations

from pydantic import Field

from commands.case import CASE, CaseArgs
from commands.router import Args, CommandContext, Router
from handlers import reply
from handlers.authority import DECIDERS
from handlers.message import Reply
from handlers.refund import people as refund

router = Router()


class ReplyArgs(Args):
    case: str = CASE
    text: str = Field(
        description="内容|#模板", min_length=1, max_length=2000, json_schema_extra={"rest": True}
    )


@router.command("reply", "回复", args=ReplyArgs, roles=DECIDERS, what="回复买家")
async def reply_(ctx: CommandContext, args: ReplyArgs) -> Reply:
    """给买家发消息：直接写内容，或用 #模板名 发常用回复"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        return await reply.send(tx, case, staff, args.text, ctx.channel)


@router.command("templates", "常用回复", "话术", args=CaseArgs, roles=DECIDERS, what="查看常用回复")
async def templates(ctx: CommandContext, args: CaseArgs) -> Reply:
    """列出适合这个单据的常用回复，已按单据填好"""
    async with ctx.svc.tx() as tx:
        case = await refund.load_for_change(tx, args.case)
        return await reply.offer(tx, case)
