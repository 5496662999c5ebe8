"""The first-response rule, once for every flow and figure: a case's first response is a person
answering the buyer or deciding. What a rule or a system does is automatic, however quick —
the digest counts it apart — and claiming or noting a case answers nobody.

`step()` stamps `first_response_at` by it, a reply to the buyer stamps it too, and the digest
reads the same actions from the audit log to say who answered.
"""

from __future__ import annotations

# Actors that are systems, not people: what they do to a case is not a response.
AUTOMATIC = ("platform", "commerce", "system", "warehouse", "carrier", "alipay", "wechatpay")
# A rule of the decision table acts as `rule:<name>`.
RULE = "rule:"
# What a person does that answers whoever waits on a case: a reply to the buyer, or a decision
# (approve, reject, escalate above one's limit, intercept the parcel, settle a parcel, a
# logistics problem or a payout). Claiming or noting a case answers nobody.
RESPONSES = frozenset(
    {
        "reply",
        "approve",
        "reject",
        "escalate",
        "retry",
        "intercept",
        "intercepted",
        "intercept_failed",
        "refunded",
        "contact_carrier",
        "reship",
        "ignore",
        "confirm",
        "paid",
    }
)


def is_person(actor: str) -> bool:
    """Whether `actor` is someone on the team: not a rule, the platform, the shop system, the
    warehouse, a carrier, the payment rail, the bot itself or the buyer."""
    return bool(actor) and actor != "buyer" and not actor.startswith((*AUTOMATIC, RULE))


def is_response(actor: str, action: str) -> bool:
    """Whether `actor` doing `action` (an audit action: a trigger, or `reply`) to a case is a
    response: a person replying to the buyer or deciding."""
    return is_person(actor) and action in RESPONSES
