"""`refundops rules [test --event FILE]`: the effective rule table in order, and which row one
refund event takes and why each row before it did not."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.settings import Settings
from handlers.refund.data import facts_of_request
from handlers.rules import RuleTable
from handlers.schema import InvalidEventError, RefundRequested, parse_event


def run_rules(settings: Settings, event: Path | None) -> int:
    table = RuleTable.from_settings(settings.rules)
    if event is None:
        for line in table_header(settings, table) + table.table_lines():
            print(line)
        return 0
    try:
        raw = event.read_bytes()
    except OSError as exc:
        print(f"✗ {event}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        envelope, data = parse_event(raw)
    except InvalidEventError as exc:
        for error in exc.errors:
            print(f"✗ {event}: {error['field']}: {error['message']}", file=sys.stderr)
        return 2
    if not isinstance(data, RefundRequested):
        print(
            f"✗ {event}: the rules decide refund.requested events; this one is {envelope.type}",
            file=sys.stderr,
        )
        return 2
    facts = facts_of_request(envelope.shop, envelope.platform, data)
    group = settings.route(shop=envelope.shop, platform=envelope.platform, kind="refund")
    print(
        f"{data.refund_id}: {len(table.rows) + 1} rows, the first whose conditions all hold decides"
    )
    for line in table.explain(facts).lines():
        print(line)
    print(f"group: {group.id if group else 'none — no [[groups]] entry takes it'}")
    return 0


def table_header(settings: Settings, table: RuleTable) -> list[str]:
    own = sum(1 for r in table.rows if r.origin == "config")
    defaults = len(table.rows) - own
    if settings.rules.replace_defaults:
        where = f"{own} rows from the config (replace_defaults = true: no defaults)"
    else:
        where = f"{own} rows from the config, then {defaults} defaults"
    return [
        f"The rule table: {where}, then the fallback. Top-down; the first row whose conditions "
        "all hold decides.",
        "",
    ]
