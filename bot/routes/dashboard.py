"""GET /dashboard: the digest's figures for a date range, with inline SVG charts."""

from __future__ import annotations

import hmac
from datetime import date, timedelta
from html import escape

from aiohttp import web

from bot import charts
from bot.keys import SERVICES, SETTINGS
from bot.routes.verification import verified
from handlers import digest, scorecard
from handlers.digest import PATH_TEXT

routes = web.RouteTableDef()
MAX_DAYS = 92


class DashboardToken:
    """`?token=…` or `Authorization: Bearer …` against `[dashboard] token`; without a token
    the dashboard is off (the demo alone runs it open)."""

    async def verify(self, request: web.Request) -> web.Response | None:
        settings = request.app[SETTINGS]
        token = settings.dashboard.token.get_secret_value()
        if settings.demo and not token:
            return None
        if not token:
            return web.Response(
                status=403,
                text="dashboard disabled: set [dashboard] token (REFUNDOPS_DASHBOARD__TOKEN)",
            )
        given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix(
            "Bearer "
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(
                status=401,
                text="dashboard token missing or wrong (?token=… or Authorization: Bearer …)",
            )
        return None


def _range(request: web.Request, today: date) -> tuple[date, date] | web.Response:
    try:
        last = date.fromisoformat(request.query["to"]) if request.query.get("to") else today
        first = (
            date.fromisoformat(request.query["from"])
            if request.query.get("from")
            else last - timedelta(days=6)
        )
    except ValueError:
        return web.Response(status=400, text="from and to are dates like 2026-11-23")
    if first > last:
        return web.Response(status=400, text="from is after to")
    if (last - first).days >= MAX_DAYS:
        return web.Response(status=400, text=f"at most {MAX_DAYS} days at once")
    return first, last


@routes.get("/dashboard")
@verified(DashboardToken())
async def dashboard(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    tz = digest.digest_tz(svc)
    picked = _range(request, svc.clock.now().astimezone(tz).date())
    if isinstance(picked, web.Response):
        return picked
    first, last = picked
    group_id = request.query.get("group") or None
    if group_id is not None and svc.settings.group(group_id) is None:
        return web.Response(status=400, text=f"no group {group_id!r}")
    span = digest.Span.days(first, last, tz)
    async with svc.tx() as tx:
        fig = await digest.figures(tx, group_id, span)
        days = await digest.daily(tx, group_id, span)
    names = digest.staff_names(svc, fig)
    notice = digest.render(fig, group_id or "全部群", names=names)
    labels = [d for d, _, _ in days]
    series = [(PATH_TEXT[p], [by_path.get(p, 0) for _, by_path, _ in days]) for p in (1, 2, 3, 4)]
    closed = ("完结", [n for _, _, n in days])
    trend = charts.stacked_bars(labels, series, line=closed)
    # A phone gets the same chart drawn narrow, so its text is not shrunk below legibility.
    trend_phone = charts.stacked_bars(labels, series, line=closed, width=360, height=260)
    reasons = charts.hbars(fig.top_reasons, title="退款原因 Top 5")
    pending = charts.hbars(
        [(PATH_TEXT.get(p, "其他"), n) for p, n in sorted(fig.pending_by_path.items())],
        title="待处理（按路径）",
    )
    tiles = "".join(
        f'<div class="tile"><div class="k">{escape(f.label)}</div><div class="v">{escape(f.value)}</div></div>'
        for f in notice.fields
    )
    lines = "".join(
        f"<li>{escape(line)}</li>" for line in notice.lines if not line.startswith("👤")
    )
    options = "".join(
        f'<option value="{escape(g.id)}"{" selected" if g.id == group_id else ""}>{escape(g.name or g.id)}</option>'
        for g in svc.settings.groups
    )
    token = escape(request.query.get("token", ""))
    html = PAGE.format(
        title=escape(f"售后看板 · {group_id or '全部群'} · {span.label}"),
        first=first.isoformat(),
        last=last.isoformat(),
        options=options,
        token=f'<input type="hidden" name="token" value="{token}">' if token else "",
        status=escape(notice.status),
        tiles=tiles,
        trend=trend,
        trend_phone=trend_phone,
        reasons=reasons,
        pending=pending,
        people=_people_table(fig, names),
        lines=lines or "<li>暂无</li>",
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def _people_table(fig: digest.Figures, names: dict[str, str]) -> str:
    """Per person: first-response median (and over how many cases), handled, overdue, approvals."""
    if not fig.people:
        return '<p class="none">暂无</p>'
    head = (
        "<tr><th>人员</th><th>首次响应中位</th><th>处理</th><th>买家留言超时</th><th>审批</th></tr>"
    )
    rows = []
    for staff_id in scorecard.order(fig.people, names):
        person = fig.people[staff_id]
        cells = (
            scorecard.name(staff_id, names),
            scorecard.first_text(person),
            str(len(person.handled)),
            str(person.overdue),
            str(person.approvals),
        )
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="people">{head}{"".join(rows)}</table>'


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; font: 14px/1.5 -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif;
       background: #f3f4f6; color: #1f2329; }}
header {{ background: #2b2f36; color: #fff; padding: 14px 24px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }}
header h1 {{ font-size: 17px; margin: 0; }}
header form {{ margin-left: auto; display: flex; gap: 8px; align-items: center; }}
header input, header select, header button {{ font: inherit; padding: 4px 8px; border-radius: 4px; border: 0; }}
main {{ padding: 20px 24px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); }}
section {{ background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }}
section.wide {{ grid-column: 1 / -1; }}
h2 {{ font-size: 14px; margin: 0 0 10px; color: #4b5563; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 10px; }}
.tile {{ background: #f9fafb; border-radius: 6px; padding: 10px 12px; }}
.tile .k {{ color: #6b7280; font-size: 12px; }} .tile .v {{ font-size: 15px; font-weight: 600; }}
svg .axis {{ font-size: 11px; fill: #6b7280; }} svg .label {{ font-size: 12px; fill: #374151; }}
ul {{ margin: 0; padding-left: 18px; }} li {{ margin: 3px 0; }}
table.people {{ width: 100%; border-collapse: collapse; font-size: 13px; }}
table.people th, table.people td {{ text-align: left; padding: 6px 8px; border-bottom: 1px solid #eef0f3; }}
table.people th {{ color: #6b7280; font-weight: 500; }} .none {{ color: #6b7280; margin: 0; }}
.chart-phone {{ display: none; }} .scroll-x {{ overflow-x: auto; }}
/* Narrower than the wide chart's own size: the narrow chart, chart text at least 11 px. */
@media (max-width: 799px) {{
  .chart-wide {{ display: none; }} .chart-phone {{ display: block; }}
  svg .axis, svg .label {{ font-size: 13px; }}
}}
/* A phone: the range picker wraps under the title, the cards take the width. */
@media (max-width: 600px) {{
  header {{ padding: 12px; gap: 6px 12px; }}
  header form {{ margin-left: 0; width: 100%; flex-wrap: wrap; }}
  header select {{ flex: 1 1 100%; }}
  header input[type=date] {{ flex: 1 1 110px; min-width: 0; }}
  main {{ padding: 12px; gap: 12px; grid-template-columns: minmax(0, 1fr); }}
  section {{ padding: 12px; }}
  .tiles {{ grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); }}
}}
</style></head><body>
<header><h1>{title}</h1><span>{status}</span>
<form method="get" action="/dashboard">{token}
<select name="group"><option value="">全部群</option>{options}</select>
<input type="date" name="from" value="{first}"> — <input type="date" name="to" value="{last}">
<button type="submit">查看</button></form></header>
<main>
<section class="wide"><h2>概览</h2><div class="tiles">{tiles}</div></section>
<section class="wide"><h2>按天新增（按路径）与完结</h2><div class="chart-wide">{trend}</div><div class="chart-phone">{trend_phone}</div></section>
<section><h2>退款原因 Top 5</h2>{reasons}</section>
<section><h2>待处理（当前，按路径）</h2>{pending}</section>
<section class="wide"><h2>按人（首次响应 = 回复买家或做出决定）</h2><div class="scroll-x">{people}</div></section>
<section class="wide"><h2>明细</h2><ul>{lines}</ul></section>
</main></body></html>
"""
