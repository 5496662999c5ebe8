"""快递100 interceptOrder signing: the §4 vector as it stands, and the form the client sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp

from handlers.clock import FakeClock
from integrations.kuaidi100.client import CourierAccount, Kuaidi100Interceptor
from integrations.kuaidi100.models import InterceptParam
from integrations.kuaidi100.signing import order_sign

VECTOR_PARAM = '{"kuaidicom":"zhongtong","kuaidinum":"ZT1234567890","interceptType":"RETURN"}'


def test_order_sign_matches_the_vector() -> None:
    sign = order_sign(VECTOR_PARAM, "1714525200000", "demo_key", "demo_secret")
    assert sign == "C5CCB270AD59B079E19B59DDC0E32045"


def test_order_sign_changes_with_the_secret() -> None:
    sign = order_sign(VECTOR_PARAM, "1714525200000", "demo_key", "other_secret")
    assert sign != "C5CCB270AD59B079E19B59DDC0E32045"


async def test_interceptor_form_signs_the_exact_param_it_sends() -> None:
    clock = FakeClock(datetime.fromtimestamp(1714525200, UTC))
    async with aiohttp.ClientSession() as session:
        interceptor = Kuaidi100Interceptor(
            session,
            api_base="http://127.0.0.1:9",
            key="demo_key",
            secret="demo_secret",
            clock=clock,
            courier={"中通": CourierAccount(partner_id="P1", partner_key="K1")},
            intercept_type="RETURN_SEND_ADDR",
        )
        param = interceptor.param({"carrier": "ZTO", "tracking_no": "ZT1", "reason": "退款"})
        assert isinstance(param, InterceptParam)
        text = param.text()
        form = interceptor.form(text)
    assert form["t"] == "1714525200000"
    assert form["method"] == "interceptOrder"
    assert form["sign"] == order_sign(text, form["t"], "demo_key", "demo_secret")
    sent = json.loads(form["param"])
    assert sent["kuaidicom"] == "zhongtong"
    assert sent["partnerId"] == "P1"
    assert sent["partnerKey"] == "K1"
    assert "partnerSecret" not in sent
