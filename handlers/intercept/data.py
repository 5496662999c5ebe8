"""The typed shape of an intercept's `case.data`: the parcel, who asked and why, the refunds and
anomalies it serves, and what the carrier (or a person) answered.
"""

from __future__ import annotations

from pydantic import Field

from handlers.case_data import CaseData, InterceptShown, Stored
from handlers.intercept.machine import LINK_TEXT
from storage.models import Case


class Link(Stored):
    """A case the intercept serves."""

    pk: int
    handle: str
    case_id: str


class RefundLink(Link):
    amount_fen: int


class AnswerRecord(Stored):
    """The carrier's synchronous answer to our request."""

    status: str
    detail: str = ""
    at: str = ""


class Result(Stored):
    """How the intercept ended, and on whose word."""

    result: str
    detail: str = ""
    by: str = ""
    at: str = ""


class CarrierWord(Stored):
    """An `intercept.result` that came after the intercept was settled."""

    result: str
    detail: str = ""
    at: str = ""


class InterceptData(CaseData):
    carrier: str
    tracking_no: str
    source: str = ""
    requested_by: str = ""
    attempt: int = 1
    refunds: list[RefundLink] = Field(default_factory=list)
    anomalies: list[Link] = Field(default_factory=list)
    carrier_answer: AnswerRecord | None = None
    error: str = ""
    outcome: str = ""
    result: Result | None = None
    carrier_confirmed: CarrierWord | None = None
    late_results: list[CarrierWord] = Field(default_factory=list)


def link_of(case: Case) -> Link:
    return Link(pk=case.id, handle=case.handle, case_id=case.case_id)


def refund_link_of(case: Case) -> RefundLink:
    return RefundLink(
        pk=case.id, handle=case.handle, case_id=case.case_id, amount_fen=case.amount_fen
    )


def recorded_by(case: Case) -> str:
    """Whose word settled the intercept: "carrier" once the carrier's API or event said so."""
    data = InterceptData.of(case)
    if data.carrier_confirmed is not None:
        return "carrier"
    return data.result.by if data.result is not None else ""


def shown_on_links(case: Case) -> InterceptShown:
    return InterceptShown(handle=case.handle, text=LINK_TEXT[case.state])
