"""The `refundops` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tomllib
from collections.abc import Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config_check import problems, warnings
from bot.config_report import check_files
from bot.settings import ConfigError, Settings, load_settings
from handlers import masking
from integrations.simulator import backoffice, platforms

DEFAULT_CONFIG = Path("refundops.toml")


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config (default ./refundops.toml if present)",
    )
    parser.add_argument(
        "--secrets", type=Path, default=None, help="TOML secrets file, same shape as the config"
    )


def _demo_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo",
        action="store_true",
        help="the demo's settings and database (./refundops-demo.db, or --db), as "
        "`refundops demo` runs them",
    )
    parser.add_argument(
        "--db", type=Path, default=None, help="with --demo: the SQLite file `demo --db` was given"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refundops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot")
    _config_arg(serve)
    demo = sub.add_parser("demo", help="run the demo: sandbox group, demo staff, simulator")
    _config_arg(demo)
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument(
        "--db", type=Path, default=None, help="SQLite file (default refundops-demo.db)"
    )
    demo.add_argument(
        "--no-simulator",
        action="store_true",
        help="do not feed simulated events (nor write the past month into a new database)",
    )
    demo.add_argument(
        "--via",
        choices=["api", "douyin", "taobao", "jushuitan"],
        default="api",
        help="refunds arrive through a platform connector and its in-process fake "
        "(抖店 push / 淘宝 TMC) instead of the signed ingest API; jushuitan: the warehouse "
        "(聚水潭) and 顺丰 intercepts are in-process fakes reached through their connectors",
    )
    check = sub.add_parser("check-config", help="name every problem in a config and exit non-zero")
    _config_arg(check)
    rules = sub.add_parser(
        "rules", help="print the effective rule table, defaults included, in order"
    )
    _config_arg(rules)
    rules_sub = rules.add_subparsers(dest="rules_command")
    rules_test = rules_sub.add_parser(
        "test", help="which rule an event hits, and why each rule before it did not"
    )
    # Given after `test` or before it (`rules --config FILE test …`): a default here would
    # overwrite the one given before.
    rules_test.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML config")
    rules_test.add_argument(
        "--secrets", type=Path, default=argparse.SUPPRESS, help="TOML secrets file"
    )
    rules_test.add_argument(
        "--event", type=Path, required=True, help="a refund event as POST /api/v1/events takes it"
    )
    dig = sub.add_parser("digest", help="print a group's daily digest; --send posts it")
    _config_arg(dig)
    _demo_arg(dig)
    dig.add_argument("--group", required=True, help="group id from [[groups]]")
    dig.add_argument("--date", default="", help="local day YYYY-MM-DD (default: yesterday)")
    dig.add_argument("--send", action="store_true", help="post it to the group as well")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the migrations")
    _config_arg(upgrade)
    export = sub.add_parser(
        "export",
        help="CSV or xlsx of a period's payouts or refunds, to reconcile; alipay-batch: the "
        "支付宝批量付款 file of approved manual payouts (full accounts: finance only)",
    )
    _config_arg(export)
    _demo_arg(export)
    export.add_argument("what", choices=["payouts", "refunds", "alipay-batch"])
    export.add_argument(
        "--since", type=date.fromisoformat, default=None, help="first day (alipay-batch: approved)"
    )
    export.add_argument(
        "--until", type=date.fromisoformat, default=None, help="last day (alipay-batch: approved)"
    )
    export.add_argument(
        "--by", choices=["requested", "paid"], default="requested", help="which date counts"
    )
    export.add_argument("--out", type=Path, default=None, help="file (default: stdout)")
    export.add_argument("--format", choices=["csv", "xlsx"], default="csv", help="file format")
    connect = sub.add_parser(
        "connect", help="first authorisation of a back-office system (tokens kept in the database)"
    )
    _config_arg(connect)
    connect.add_argument("system", choices=["jushuitan"])
    connect.add_argument(
        "--code", default="", help="the code a 服务商 app's authorisation page handed back"
    )
    connect.add_argument(
        "--auth-url", action="store_true", help="print the authorisation page of a 服务商 app"
    )
    connect.add_argument("--state", default="", help="passed through the authorisation page")
    export.add_argument(
        "--lang", choices=["zh", "en"], default="zh", help="headers and labels (en: column keys)"
    )
    outbox = sub.add_parser("outbox", help="outbox maintenance")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    requeue = outbox_sub.add_parser(
        "requeue", help="send dead-lettered cards and messages again (due now, attempts reset)"
    )
    _config_arg(requeue)
    _demo_arg(requeue)
    requeue.add_argument("--kind", default="", help="card | text | notice | wecom.reply")
    requeue.add_argument(
        "--since", default="", help="dead-lettered since: 2h, 30m, 1d or an ISO date/time"
    )
    return parser


def demo_base() -> dict[str, Any]:
    return tomllib.loads(resources.files("bot").joinpath("demo.toml").read_text("utf-8"))


def _load(args: argparse.Namespace, **kwargs: Any) -> Settings:
    config = args.config
    if getattr(args, "demo", False):
        # The running demo's data: its embedded settings (and --config over them, as
        # `refundops demo --config` layers it), its database.
        db = {"database": {"url": f"sqlite+aiosqlite:///{args.db}"}} if args.db else {}
        return load_settings(
            config, secrets=args.secrets, base=demo_base(), overrides=db, demo=True
        )
    if args.command != "demo" and getattr(args, "db", None) is not None:
        raise ConfigError(["--db goes with --demo (a config names its database in [database] url)"])
    if config is None and DEFAULT_CONFIG.exists() and args.command != "demo":
        config = DEFAULT_CONFIG
    return load_settings(config, secrets=args.secrets, **kwargs)


def _warn(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"! {line}", file=sys.stderr)


def _fail(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"✗ {line}", file=sys.stderr)
    return 2


def _check_config(args: argparse.Namespace) -> int:
    """Every problem in one run, each at its file, section and key, with how to fix it."""
    config = args.config
    if config is None and DEFAULT_CONFIG.exists():
        config = DEFAULT_CONFIG
    report = check_files(config, args.secrets)
    for note in report.notes:
        print(f"· {note}")
    if report.settings is not None:
        _warn(warnings(report.settings))
    if report.findings:
        _fail([f.line() for f in report.findings])
        n = len(report.findings)
        print(f"{n} problem{'' if n == 1 else 's'}", file=sys.stderr)
        return 2
    settings = report.settings
    assert settings is not None
    print(
        f"✓ config ok: {len(settings.groups)} groups, {len(settings.staff)} staff, "
        f"channels {', '.join(sorted(settings.channels)) or 'none'}, "
        f"{len(settings.shops)} shops"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    masking.install_log_masking()
    try:
        if args.command == "demo":
            overrides: dict[str, Any] = {}
            if args.port is not None:
                overrides["server"] = {"port": args.port}
            if args.db is not None:
                overrides["database"] = {"url": f"sqlite+aiosqlite:///{args.db}"}
            if args.no_simulator:
                overrides["simulator"] = {"enabled": False, "history_days": 0}
            settings = _load(args, base=demo_base(), overrides=overrides, demo=True)
            if args.via not in ("api", "jushuitan") and settings.shops:
                return _fail(["demo --via brings its own shop: run it without [[shops]]"])
            if args.via != "api":
                host = settings.server.host
                base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:"
                base += str(settings.server.port)
                overrides["simulator"] = {**overrides.get("simulator", {}), "via": args.via}
                if args.via == "jushuitan":
                    jst, sf = backoffice.make_fakes()
                    overrides |= backoffice.demo_overrides(base, jst, sf)
                else:
                    overrides["shops"] = [platforms.demo_shop(args.via, base)]
                settings = _load(args, base=demo_base(), overrides=overrides, demo=True)
        elif args.command == "check-config":
            return _check_config(args)
        else:
            settings = _load(args)
    except ConfigError as exc:
        return _fail(exc.problems)
    if args.command == "rules":
        from bot.rules_cli import run_rules

        return run_rules(settings, getattr(args, "event", None))
    if args.command == "digest":
        from bot.digest_cli import run_digest

        if refused := settings.demo_only():
            return _fail(refused)

        return asyncio.run(run_digest(settings, args.group, args.date, send=args.send))
    if args.command == "db":
        from storage import migrate
        from storage.db import Database

        async def upgrade() -> None:
            db = Database(settings.database.url)
            await migrate.upgrade(db)
            await db.dispose()

        asyncio.run(upgrade())
        print(f"✓ database at the newest schema ({settings.database.url.split('@')[-1]})")
        return 0
    if args.command == "outbox":
        from bot.outbox_cli import run_requeue

        return asyncio.run(run_requeue(settings, args.kind, args.since))
    if args.command == "connect":
        from bot.connect_cli import run_connect

        return asyncio.run(
            run_connect(settings, code=args.code, auth_url=args.auth_url, state=args.state)
        )
    if args.command == "export":
        from bot import export

        return export.run(
            settings,
            args.what,
            args.since,
            args.until,
            by=args.by,
            out=args.out,
            fmt=args.format,
            lang=args.lang,
        )
    found = problems(settings)
    if found:
        return _fail(found)
    _warn(warnings(settings))
    from bot.app import create_app

    host, port = settings.server.host, settings.server.port
    if settings.demo:
        print(
            f"refundops demo: open http://{host}:{port}/sandbox  (ingest secret from "
            "REFUNDOPS_INGEST__SECRET, else demo-secret)"
        )
        if settings.simulator.via != "api":
            print(
                f"refunds arrive through the {settings.simulator.via} connector from an "
                f"in-process fake at http://{host}:{port}{platforms.FAKE_PATH}/{settings.simulator.via}"
            )
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        print=None,
        access_log=logging.getLogger("aiohttp.access") if settings.server.access_log else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
