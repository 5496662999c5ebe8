"""`[[shops]]`: platform ids or their Chinese names, secrets by shop id, and check-config
naming every problem of a shop's connector where it is and how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.config_check import notes, problems
from bot.settings import ConfigError, Settings, load_settings, shop_secrets_from_env
from handlers.platforms import platform_id
from integrations.shop.settings import ShopSettings


def settings(*shops: dict[str, Any], groups: list[dict[str, Any]] | None = None) -> Settings:
    return Settings(
        demo=True,
        ingest={"secret": "long-random-0123456789"},
        groups=groups or [{"id": "aftersales", "channel": "sandbox"}],
        staff=[{"id": "admin1", "roles": ["admin"]}],
        shops=list(shops),
    )


DOUYIN = {
    "id": "dy",
    "platform": "douyin",
    "connector": "douyin",
    "app_key": "7000000000000000001",
    "app_secret": "a-real-looking-secret-0123",
    "shop_id": "123456",
}
TAOBAO = {
    "id": "tb",
    "platform": "tmall",
    "connector": "taobao",
    "app_key": "12345678",
    "app_secret": "a-real-looking-secret-0123",
    "access_token": "session-0123",
    "seller_nick": "旗舰店",
    "operator": "旗舰店:售后",
}


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("淘宝", "taobao"),
        ("天猫", "tmall"),
        ("抖音", "douyin"),
        ("抖店", "douyin"),
        ("拼多多", "pinduoduo"),
        ("京东", "jd"),
        ("快手", "kuaishou"),
        ("微信", "wechat"),
        ("视频号", "wechat"),
        ("Douyin", "douyin"),
        ("wechat_channels", "wechat_channels"),
    ],
)
def test_platform_names_mean_their_ids(written: str, meant: str) -> None:
    assert platform_id(written) == meant


def test_an_unknown_platform_is_refused_naming_the_ids() -> None:
    with pytest.raises(ValidationError, match="`抖` is not a platform id"):
        ShopSettings(id="x", platform="抖")


def test_a_chinese_name_is_taken_and_check_config_says_as_what() -> None:
    found = settings(DOUYIN | {"platform": "抖店"})
    assert found.shops[0].platform == "douyin"
    assert notes(found) == ["shops[0] (dy): platform '抖店' is taken as 'douyin'"]
    assert problems(found) == []


def test_connectors_fill_in_the_platforms_hosts() -> None:
    found = settings(DOUYIN, TAOBAO).shops
    assert found[0].api_base == "https://openapi-fxg.jinritemai.com"
    assert found[1].tmc_url == "ws://mc.api.taobao.com/"
    assert settings(DOUYIN | {"api_base": "http://127.0.0.1:9"}).shops[0].api_base == (
        "http://127.0.0.1:9"
    )


def test_check_config_names_every_problem_of_a_shop() -> None:
    broken = settings(
        {"id": "dy", "platform": "taobao", "connector": "douyin", "api_base": "ftp://x"},
        {
            "id": "tb",
            "platform": "tmall",
            "connector": "taobao",
            "app_key": "1",
            "app_secret": "changeme",
        },
        {"id": "dy", "platform": "jd", "connector": "webhook"},
    )
    found = "\n".join(problems(broken.model_copy(update={"demo": False})))
    for expected in (
        "shops[0] (dy): connector 'douyin' reaches douyin shops, not 'taobao'",
        "shops[0] (dy): app_key is empty",
        "shops[0] (dy): missing secret app_secret (in the secrets file under [[shops]] id = 'dy', "
        "or REFUNDOPS_SHOP_DY__APP_SECRET)",
        "shops[0] (dy): api_base 'ftp://x' does not start with http:// or https://",
        "shops[0] (dy): set shop_id",
        "shops[1] (tb): app_secret is a placeholder",
        "shops[1] (tb): seller_nick is empty",
        "shops[1] (tb): missing secret access_token",
        "shops[1] (tb): operator is empty",
        "shops[2] (dy): id 'dy' is also shops[0]'s",
    ):
        assert expected in found, expected


def test_a_shop_no_group_takes_is_named() -> None:
    only_jd = [{"id": "aftersales", "channel": "sandbox", "platforms": ["jd"]}]
    assert problems(settings(DOUYIN, groups=only_jd)) == [
        "shops[0] (dy): no [[groups]] entry routes its refunds (add 'dy' to a group's shops, "
        "or leave a group's shops empty)"
    ]


def test_secrets_come_from_the_secrets_file_by_id_and_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "refundops.toml"
    config.write_text(
        '[[shops]]\nid = "dy-1"\nplatform = "抖音"\nconnector = "douyin"\napp_key = "7"\n'
        '[[shops]]\nid = "tb"\nplatform = "taobao"\nconnector = "taobao"\n',
        encoding="utf-8",
    )
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[[shops]]\nid = "dy-1"\napp_secret = "from-file"\n', encoding="utf-8")
    loaded = load_settings(config, secrets=secrets, demo=True)
    assert loaded.shops[0].app_secret.get_secret_value() == "from-file"
    assert loaded.shops[0].app_key == "7"
    data = shop_secrets_from_env(
        {"shops": [{"id": "dy-1"}, {"id": "tb"}]},
        {"REFUNDOPS_SHOP_DY_1__ACCESS_TOKEN": "t1", "REFUNDOPS_SHOP_TB__APP_SECRET": "s2"},
    )
    assert data["shops"] == [{"id": "dy-1", "access_token": "t1"}, {"id": "tb", "app_secret": "s2"}]


def test_a_shop_secret_written_in_the_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "refundops.toml"
    config.write_text(
        '[[shops]]\nid = "dy"\nplatform = "douyin"\nconnector = "douyin"\napp_secret = "s"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"secret shops\[0\]\.app_secret is written in"):
        load_settings(config, demo=True)
