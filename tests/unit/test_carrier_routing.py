"""CarrierRouter: each parcel's carrier picks its route, the answer names the route used, and
`[carrier]` routes/config problems."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from handlers.clock import FakeClock
from handlers.ports import CarrierAnswer
from integrations.carrier.client import NoCarrier
from integrations.carrier.names import carrier_code, kuaidi100_code
from integrations.carrier.routing import CarrierRouter, config_problems, from_settings
from integrations.carrier.settings import CarrierSettings
from integrations.kuaidi100.client import Kuaidi100Interceptor
from integrations.sf.client import SfInterceptor


class Recording:
    def __init__(self, detail: str) -> None:
        self.detail = detail
        self.keys: list[str] = []

    async def intercept(self, key: str, data: dict[str, Any]) -> CarrierAnswer:  # noqa: ARG002
        self.keys.append(key)
        return CarrierAnswer("accepted", self.detail)


@pytest.mark.parametrize(
    ("written", "code", "company"),
    [
        ("SF", "SF", "shunfeng"),
        ("顺丰速运", "SF", "shunfeng"),
        ("zhongtong", "ZTO", "zhongtong"),
        (" 圆通 ", "YTO", "yuantong"),
        ("韵达", "YD", "yunda"),
        ("申通快递", "STO", "shentong"),
        ("京东", "JD", "jd"),
        ("EMS", "EMS", "ems"),
        ("极兔速递", "JT", "jtexpress"),
        ("nowhere", "NOWHERE", ""),
    ],
)
def test_carrier_names_fold_to_codes(written: str, code: str, company: str) -> None:
    assert carrier_code(written) == code
    assert kuaidi100_code(written) == company


async def test_router_picks_sf_direct_and_the_rest_kuaidi100() -> None:
    sf, k100 = Recording("顺丰已受理"), Recording("快递100已受理")
    router = CarrierRouter(
        [({"SF"}, sf, "经顺丰丰桥申请拦截")], k100, default_label="经快递100申请拦截"
    )
    first = await router.intercept("k1", {"carrier": "顺丰", "tracking_no": "SF1"})
    second = await router.intercept("k2", {"carrier": "中通", "tracking_no": "ZT1"})
    assert first == CarrierAnswer("accepted", "经顺丰丰桥申请拦截：顺丰已受理")
    assert second == CarrierAnswer("accepted", "经快递100申请拦截：快递100已受理")
    assert (sf.keys, k100.keys) == (["k1"], ["k2"])


async def test_manual_answer_is_not_labelled() -> None:
    router = CarrierRouter([], NoCarrier(), default_label="经快递100申请拦截")
    answer = await router.intercept("k1", {"carrier": "ZTO", "tracking_no": "ZT1"})
    assert answer.status == "manual"
    assert "快递100" not in answer.detail


def test_settings_take_the_new_modes_and_a_routes_table() -> None:
    settings = CarrierSettings.model_validate(
        {"mode": "kuaidi100", "routes": {"SF": "sf", "*": "kuaidi100"}}
    )
    assert settings.mode == "kuaidi100"
    with pytest.raises(ValidationError):
        CarrierSettings.model_validate({"mode": "fedex"})
    with pytest.raises(ValidationError):
        CarrierSettings.model_validate({"routes": {"SF": "pigeon"}})


async def test_from_settings_builds_one_carrier_per_route(clock: FakeClock) -> None:
    settings = CarrierSettings.model_validate(
        {"mode": "none", "routes": {"SF": "sf", "顺丰": "sf", "*": "kuaidi100"}}
    )
    async with aiohttp.ClientSession() as session:
        router = from_settings(settings, session, clock)
    sf, sf_label = router.route("顺丰速运")
    other, other_label = router.route("YTO")
    assert isinstance(sf, SfInterceptor)
    assert sf_label == "经顺丰丰桥申请拦截"
    assert isinstance(other, Kuaidi100Interceptor)
    assert other_label == "经快递100申请拦截"
    assert len(router.routes) == 1


def test_config_problems_name_what_each_used_route_lacks() -> None:
    settings = CarrierSettings.model_validate(
        {"mode": "kuaidi100", "routes": {"SF": "sf", "FEDEXX": "kuaidi100"}}
    )
    found = "\n".join(config_problems(settings))
    assert "unknown carrier 'FEDEXX'" in found
    assert "carrier.kuaidi100.key" in found
    assert "REFUNDOPS_CARRIER__KUAIDI100__SECRET" in found
    assert "carrier.kuaidi100.couriers" in found
    assert "carrier.sf.partner_id" in found
    assert "REFUNDOPS_CARRIER__SF__CHECKWORD" in found
    assert "monthly_card" in found
    assert "return_address" in found


def test_complete_config_has_no_problems() -> None:
    settings = CarrierSettings.model_validate(
        {
            "mode": "kuaidi100",
            "routes": {"SF": "sf"},
            "kuaidi100": {
                "key": "k",
                "secret": "s",
                "couriers": {"ZTO": {"partner_id": "p"}},
            },
            "sf": {
                "partner_id": "p",
                "checkword": "c",
                "monthly_card": "755",
                "return_address": {
                    "province": "广东省",
                    "city": "深圳市",
                    "county": "南山区",
                    "address": "1号",
                },
            },
        }
    )
    assert config_problems(settings) == []
    assert config_problems(CarrierSettings()) == []
