"""The staff directory: each person's platform accounts, and who a message @-mentions."""

from __future__ import annotations

from handlers.authority import StaffDirectory, account
from handlers.config import StaffSettings
from handlers.message import Mention

STAFF = [
    StaffSettings(id="agent1", roles=["agent"], refund_limit=50, wecom_userid="wx_a"),
    StaffSettings(id="agent2", name="小王", roles=["agent"], refund_limit=500),
    StaffSettings(id="sup1", roles=["supervisor"], refund_limit=2000, dingtalk_staff_id="d-1"),
    StaffSettings(id="admin1", roles=["admin"], sandbox_user="boss"),
]


def test_staff_directory_accounts_per_platform() -> None:
    directory = StaffDirectory(STAFF)
    assert directory.accounts("wecom") == {"agent1": "wx_a"}
    assert directory.accounts("dingtalk") == {"sup1": "d-1"}
    assert directory.accounts("sandbox") == {
        "agent1": "agent1",
        "agent2": "agent2",
        "sup1": "sup1",
        "admin1": "boss",
    }
    assert account(STAFF[0], "elsewhere") == ""
    assert directory.by_platform("sandbox", "boss") is STAFF[3]


def test_staff_directory_to_mention_first_else_approvers_else_roles() -> None:
    directory = StaffDirectory(STAFF)
    assert directory.to_mention("agent2", roles=["admin"]) == (Mention("agent2", "小王"),)
    assert directory.to_mention("nobody", approving=(100_00, "agent")) == (
        Mention("agent2", "小王"),
        Mention("sup1", "sup1"),
        Mention("admin1", "admin1"),
    )
    assert directory.to_mention(approving=(100_00, "supervisor")) == (
        Mention("sup1", "sup1"),
        Mention("admin1", "admin1"),
    )
    assert directory.to_mention("", roles=["admin"]) == (Mention("admin1", "admin1"),)
