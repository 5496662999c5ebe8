"""规则 R12: which rule a refund takes in today's table, and why each rule before it did not."""

from __future__ import annotations

from pydantic import Field

from commands.router import Args, CommandContext, Router
from handlers import masking
from handlers.errors import UsageError
from handlers.message import Reply
from handlers.refund.data import RefundData, facts_of
from handlers.refund.people import load_for_change
from storage.enums import CaseKind

router = Router()
ANYONE = ("agent", "supervisor", "finance", "admin")


class RuleArgs(Args):
    case: str = Field(
        description="单号", min_length=1, max_length=128, json_schema_extra={"ref": "case"}
    )


@router.command("rule", "rules", "规则", args=RuleArgs, roles=ANYONE, what="查看规则判定")
async def explain(ctx: CommandContext, args: RuleArgs) -> Reply:
    """这个退款按现在的规则表命中哪条规则，前面每条为什么没命中"""
    async with ctx.svc.tx() as tx:
        case = await load_for_change(tx, args.case)
        if case.kind != CaseKind.REFUND:
            raise UsageError(f"{case.handle} 不是退款：规则只判定退款")
        decided = RefundData.of(case).rule
        explanation = tx.svc.rules.explain(facts_of(case))
    lines = [f"{case.handle} 的规则判定（现在的规则表，从上往下，第一条全部满足的决定）："]
    lines += explanation.lines()
    if decided and decided != explanation.hit.rule.name:
        lines.append(f"当时按规则 {decided} 处理（规则表之后改过）")
    return Reply("\n".join(lines), allow=tuple(masking.identifiers(case)))
