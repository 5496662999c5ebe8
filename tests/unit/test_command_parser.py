"""Command parsing: names in both languages, positional args, rest-of-line, usage."""

from __future__ import annotations

import pytest

from commands import router
from commands.case import CaseArgs, NoteArgs, ReasonArgs, TodoArgs
from handlers.errors import UsageError


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
    assert router.split(text) == (name, rest)


def test_parse_positional_and_rest() -> None:
    reject = router.lookup("拒绝")
    assert reject is not None
    args = router.parse(reject, "拒绝", "R12 买家 已经 收到货")
    assert args == ReasonArgs(case="R12", reason="买家 已经 收到货")
    note = router.lookup("note")
    assert note is not None
    assert router.parse(note, "note", "R1 hi") == NoteArgs(case="R1", text="hi")


def test_parse_missing_and_extra_arguments_give_usage() -> None:
    approve = router.lookup("通过")
    assert approve is not None
    with pytest.raises(UsageError, match=r"^用法：通过 <单号>$"):
        router.parse(approve, "通过", "")
    with pytest.raises(UsageError, match="多余的内容「R13」"):
        router.parse(approve, "通过", "R12 R13")
    reject = router.lookup("reject")
    assert reject is not None
    with pytest.raises(UsageError, match=r"reject <单号> <原因>"):
        router.parse(reject, "reject", "R12")


def test_parse_optional_choice() -> None:
    todo = router.lookup("待办")
    assert todo is not None
    assert router.parse(todo, "待办", "") == TodoArgs(scope="mine")
    assert router.parse(todo, "todo", "all") == TodoArgs(scope="all")
    with pytest.raises(UsageError, match=r"todo \[mine\|all\]"):
        router.parse(todo, "todo", "everything")


def test_every_command_has_help_and_both_languages() -> None:
    for command in router.commands:
        assert command.help, command.names
        assert any(n.isascii() for n in command.names), command.names
        assert any(not n.isascii() for n in command.names), command.names


def test_lookup_is_case_insensitive() -> None:
    assert router.lookup("APPROVE") is router.lookup("通过")
    assert CaseArgs(case="R1").case == "R1"
