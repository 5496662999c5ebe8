"""Help."""

from __future__ import annotations

from commands.router import CommandContext, NoArgs, Router
from handlers.message import Reply

router = Router()


@router.command("help", "帮助", "?", "？", args=NoArgs, what="查看帮助")
async def help_(ctx: CommandContext, _args: NoArgs) -> Reply:
    """列出全部命令"""
    lines = ["可用命令（中英文均可，在群里 @我 或私聊）："]
    for command in ctx.router.commands:
        chinese = next((n for n in command.names if not n.isascii()), command.names[0])
        english = next((n for n in command.names if n.isascii() and n.isalpha()), "")
        lines.append(
            f"• {command.usage(chinese)}  — {command.help}" + (f"（{english}）" if english else "")
        )
    lines.append("卡片编号（如 R12）和完整单号都可以；#R12 专指卡片编号 R12。")
    return Reply("\n".join(lines))
