"""TOP and TMC signatures against the official example and the research vectors, and the TMC
frame codec against frames encoded byte for byte from tmc.js lib/message.js."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.taobao import tmc
from integrations.taobao.signing import SignMethod, tmc_sign, top_sign

# open.taobao.com docId=101617, the official worked example.
OFFICIAL = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}

CONNECT_HEX = (
    "02000100070000006170705f6b65790108000000313233343536373801000a00000067726f75705f6e616d65"
    "010700000064656661756c7401000900000074696d657374616d70010d000000313731343533323430303030"
    "300100040000007369676e0120000000353841383739354634374142423744374341413331464646433438"
    "413137303301000300000073646b011200000054616f4d657373616765436f6e73756d657201000b000000"
    "696e7472616e65745f6970010800000031302e302e302e310000"
)
PULL_HEX = "0202050008000000544f4b454e3132330100060000005f5f6b696e6402010000"
CONFIRM_HEX = (
    "0202050008000000544f4b454e3132330100060000005f5f6b696e640202010002000000696405cb04fb711f"
    "0100000000"
)


def test_top_sign_official_md5_example() -> None:
    assert top_sign(OFFICIAL, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("hmac", "D56D7858309C31B6251083A874D48273"),
        ("hmac-sha256", "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"),
    ],
)
def test_top_sign_hmac_methods(method: SignMethod, expected: str) -> None:
    assert top_sign({**OFFICIAL, "sign_method": method}, "helloworld", method) == expected


def test_top_sign_refunds_receive_get_vector() -> None:
    params = {
        "method": "taobao.refunds.receive.get",
        "app_key": "12345678",
        "session": "test",
        "timestamp": "2024-05-01 12:00:00",
        "format": "json",
        "v": "2.0",
        "sign_method": "md5",
        "fields": "refund_id,tid,oid,status,modified,refund_fee",
        "start_modified": "2024-05-01 11:00:00",
        "end_modified": "2024-05-01 12:00:00",
        "page_no": "1",
        "page_size": "100",
        "use_has_next": "true",
    }
    assert top_sign(params, "helloworld", "md5") == "0268315870177C4256D0185D9FB493F5"


def test_top_sign_ignores_the_sign_parameter() -> None:
    signed = {**OFFICIAL, "sign": "66987CB115214E59E6EC978214934FB8"}
    assert top_sign(signed, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


def test_tmc_connect_sign_vector() -> None:
    sign = tmc_sign("12345678", "default", "1714532400000", "helloworld")
    assert sign == "58A8795F47ABB7D7CAA31FFFC48A1703"


def test_tmc_connect_frame_bytes() -> None:
    frame = tmc.connect_frame(
        "12345678",
        "helloworld",
        "default",
        1714532400000,
        sdk="TaoMessageConsumer",
        intranet_ip="10.0.0.1",
    )
    assert tmc.encode(frame).hex() == CONNECT_HEX
    decoded = tmc.decode(bytes.fromhex(CONNECT_HEX))
    assert decoded.type == tmc.CONNECT
    assert decoded.content["sign"] == "58A8795F47ABB7D7CAA31FFFC48A1703"


def test_tmc_pull_and_confirm_frame_bytes() -> None:
    assert tmc.encode(tmc.pull_frame("TOKEN123")).hex() == PULL_HEX
    assert tmc.encode(tmc.confirm_frame("TOKEN123", 1234567890123)).hex() == CONFIRM_HEX
    confirm = tmc.decode(bytes.fromhex(CONFIRM_HEX))
    assert (confirm.type, confirm.token) == (tmc.SEND, "TOKEN123")
    assert confirm.content == {"__kind": tmc.CONFIRM, "id": 1234567890123}


def test_tmc_small_ids_are_still_confirmed_as_int64() -> None:
    data = tmc.encode(tmc.confirm_frame("T", 7))
    assert data.endswith(bytes([tmc.INT64]) + (7).to_bytes(8, "little") + b"\x00\x00")


def test_tmc_every_value_format_round_trips() -> None:
    when = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    frame = tmc.Frame(
        tmc.CONNECTACK,
        status_code=500,
        status_phrase="签名错误",
        flag=3,
        token="tok",
        content={
            "void": None,
            "s": "退款",
            "b": -5,
            "h": 300,
            "i": 70000,
            "q": 2**40,
            "d": when,
            "raw": b"\x01\x02",
        },
    )
    back = tmc.decode(tmc.encode(frame))
    assert back == frame


@pytest.mark.parametrize("cut", [1, 3, 10, len(PULL_HEX) // 2 - 1])
def test_tmc_truncated_frames_are_refused(cut: int) -> None:
    with pytest.raises(tmc.FrameError):
        tmc.decode(bytes.fromhex(PULL_HEX)[:cut])
