"""Command parsing: names in both languages, positional args, rest-of-line, usage."""

from __future__ import annotations

import pytest

from bot.registry import commands
from commands.case import CaseArgs, DecideArgs, NoteArgs, ReasonArgs, TodoArgs
from handlers.errors import UsageError

ROUTER = commands()


@pytest.mark.parametrize(
    ("text", "name", "rest"),
    [
        ("通过 R12", "通过", "R12"),
        ("@refundops 通过 R12", "通过", "R12"),
        ("@机器人  @张三 拒绝 R3 买家 已收货", "拒绝", "R3 买家 已收货"),
        ("通过R12", "通过", "R12"),
        ("拒绝R12 原因", "拒绝", "R12 原因"),
        ("approve r12", "approve", "r12"),
        ("  帮助  ", "帮助", ""),
        ("hello world", "hello", "world"),
    ],
)
def test_split_finds_the_command(text: str, name: str, rest: str) -> None:
    assert ROUTER.split(text) == (name, rest)


def test_parse_positional_and_rest() -> None:
    reject = ROUTER.lookup("拒绝")
    assert reject is not None
    args = ROUTER.parse(reject, "拒绝", "R12 买家 已经 收到货")
    assert args == ReasonArgs(case="R12", reason="买家 已经 收到货")
    note = ROUTER.lookup("note")
    assert note is not None
    assert ROUTER.parse(note, "note", "R1 hi") == NoteArgs(case="R1", text="hi")


def test_parse_missing_and_extra_arguments_give_usage() -> None:
    approve = ROUTER.lookup("通过")
    assert approve is not None
    with pytest.raises(UsageError, match=r"^用法：通过 <单号> \[更多单号 备注\]$"):
        ROUTER.parse(approve, "通过", "")
    assert ROUTER.parse(approve, "通过", "R12 R13 已核实") == DecideArgs(
        case="R12", more="R13 已核实"
    )
    claim = ROUTER.lookup("认领")
    assert claim is not None
    with pytest.raises(UsageError, match="多余的内容「R13」"):
        ROUTER.parse(claim, "认领", "R12 R13")
    reject = ROUTER.lookup("reject")
    assert reject is not None
    with pytest.raises(UsageError, match=r"reject <单号> <原因>"):
        ROUTER.parse(reject, "reject", "R12")


def test_parse_optional_choice() -> None:
    todo = ROUTER.lookup("待办")
    assert todo is not None
    assert ROUTER.parse(todo, "待办", "") == TodoArgs(filters="")
    assert ROUTER.parse(todo, "todo", "all") == TodoArgs(filters="all")
    assert ROUTER.parse(todo, "待办", "打款 超时 agent2") == TodoArgs(filters="打款 超时 agent2")


def test_every_command_has_help_and_both_languages() -> None:
    for command in ROUTER.commands:
        assert command.help, command.names
        assert any(n.isascii() for n in command.names), command.names
        assert any(not n.isascii() for n in command.names), command.names


def test_lookup_is_case_insensitive() -> None:
    assert ROUTER.lookup("APPROVE") is ROUTER.lookup("通过")
    assert CaseArgs(case="R1").case == "R1"
