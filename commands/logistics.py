"""Commands on parcels: intercept, record the carrier's answer, and handle logistics anomalies."""

from __future__ import annotations

from pydantic import Field

from commands.case import CASE, CaseArgs
from commands.router import Args, CommandContext, Router
from handlers.authority import DECIDERS
from handlers.intercept import people as intercept_flow
from handlers.logistics import flow as anomaly_flow
from handlers.message import Reply
from handlers.refund.people import load_for_change

router = Router()


class DetailArgs(Args):
    case: str = CASE
    detail: str = Field(default="", description="说明", json_schema_extra={"rest": True})


@router.command("intercept", "拦截", args=CaseArgs, roles=DECIDERS, what="申请拦截")
async def intercept(ctx: CommandContext, args: CaseArgs) -> Reply:
    """拦截包裹：已发货的退款或物流异常找快递拦截，未发货的通知仓库截单"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await load_for_change(tx, args.case)
        return await intercept_flow.intercept(tx, case, staff, ctx.channel)


@router.command("intercepted", "拦截成功", args=DetailArgs, roles=DECIDERS, what="登记拦截结果")
async def intercepted(ctx: CommandContext, args: DetailArgs) -> Reply:
    """登记快递已拦截成功（电话或快递后台确认的），关联退款自动继续"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = ctx.allow(await intercept_flow.resolve(tx, await load_for_change(tx, args.case)))
        return await intercept_flow.confirm(
            tx, case, staff, ok=True, detail=args.detail, channel=ctx.channel
        )


@router.command(
    "intercept_failed", "拦截失败", args=DetailArgs, roles=DECIDERS, what="登记拦截结果"
)
async def intercept_failed(ctx: CommandContext, args: DetailArgs) -> Reply:
    """登记快递拦截失败，关联退款转入退货流程"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = ctx.allow(await intercept_flow.resolve(tx, await load_for_change(tx, args.case)))
        return await intercept_flow.confirm(
            tx, case, staff, ok=False, detail=args.detail, channel=ctx.channel
        )


@router.command("reship", "补发", args=CaseArgs, roles=DECIDERS, what="安排补发")
async def reship(ctx: CommandContext, args: CaseArgs) -> Reply:
    """物流异常的包裹改为补发"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await load_for_change(tx, args.case)
        return await anomaly_flow.reship(tx, case, staff, ctx.channel)


@router.command(
    "contact_carrier", "contact", "联系快递", args=CaseArgs, roles=DECIDERS, what="联系快递"
)
async def contact_carrier(ctx: CommandContext, args: CaseArgs) -> Reply:
    """由我联系快递核实物流异常"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await load_for_change(tx, args.case)
        return await anomaly_flow.contact_carrier(tx, case, staff, ctx.channel)


@router.command("ignore", "忽略", args=DetailArgs, roles=DECIDERS, what="忽略物流异常")
async def ignore(ctx: CommandContext, args: DetailArgs) -> Reply:
    """忽略物流异常（可写原因）"""
    staff = ctx.me
    async with ctx.svc.tx() as tx:
        case = await load_for_change(tx, args.case)
        return await anomaly_flow.ignore(tx, case, staff, args.detail, ctx.channel)
