"""The demo's carrier: accepts every intercept and reports the outcome a little later, as an
`intercept.result` event that the shop simulator (integrations.simulator.feed) sends."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from handlers.clock import Clock
from handlers.ports import CarrierAnswer

OUTCOMES = (
    ("intercepted", 70, "拦截成功，快件已转退回"),
    ("failed", 20, "快件已派送，拦截失败"),
    ("returned", 10, "快件已退回发件人"),
)


@dataclass(frozen=True)
class PlannedResult:
    due: datetime
    shop: str
    platform: str
    data: dict[str, str]


class SimulatedCarrier:
    def __init__(self, clock: Clock, seed: int | None = None) -> None:
        self.clock = clock
        self.random = random.Random(seed)
        self.answers: dict[str, CarrierAnswer] = {}
        self.planned: list[PlannedResult] = []

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:
        if key in self.answers:
            return self.answers[key]
        result, _, detail = self.random.choices(OUTCOMES, [w for _, w, _ in OUTCOMES])[0]
        self.planned.append(
            PlannedResult(
                due=self.clock.now() + timedelta(seconds=self.random.uniform(30, 90)),
                shop=str(data.get("shop", "")),
                platform=str(data.get("platform", "")),
                data={
                    "carrier": str(data["carrier"]),
                    "tracking_no": str(data["tracking_no"]),
                    "result": result,
                    "detail": detail,
                },
            )
        )
        answer = CarrierAnswer("accepted", "模拟快递已受理拦截")
        self.answers[key] = answer
        return answer

    def due_results(self) -> list[PlannedResult]:
        """Results whose time has come, each handed out once."""
        now = self.clock.now()
        ready = [p for p in self.planned if p.due <= now]
        self.planned = [p for p in self.planned if p.due > now]
        return ready
