"""聚水潭 md5 signature against the official worked example and published vectors."""

from __future__ import annotations

from integrations.jushuitan import signing
from integrations.jushuitan.fake import md5_sign


def test_jushuitan_signing_official_docid_70_example() -> None:
    params = {
        "app_key": "5b53060f23d84ddf9703056e84fa5a2d",
        "timestamp": "1639128407",
        "grant_type": "authorization_code",
        "charset": "utf-8",
        "code": "123456",
    }
    assert signing.sign("e9c5ca33fecb404b8e6cdbd0ef4a6d25", params) == (
        "05e3a51e19e0883afd1882ccd309e0b9"
    )


def test_jushuitan_signing_kocotree_vector() -> None:
    params = {"timestamp": "100", "app_key": "app", "charset": "utf-8"}
    assert signing.sign("secret", params) == "706427ca94e342781ac36d501151cb10"


def test_jushuitan_signing_business_call_with_biz() -> None:
    # ieu/jst-java DefaultJstDigestTest: a business form (biz JSON, charset, version 2).
    params = {
        "access_token": "d7b01bf0842a4742a9450e21ffd95f60",
        "app_key": "5b53060f23d84ddf9703056e84fa5a2d",
        "biz": '{"page_index":"1","page_size":"100","nicks":["老板"]}',
        "charset": "utf-8",
        "timestamp": "1639128407",
        "version": "2",
    }
    assert signing.sign("e9c5ca33fecb404b8e6cdbd0ef4a6d25", params) == (
        "395f5a78b446be465ac03a02491296c7"
    )


def test_jushuitan_signing_leaves_out_sign_and_empty_values() -> None:
    params = {"timestamp": "100", "app_key": "app", "charset": "utf-8"}
    noisy = {**params, "sign": "whatever", "scope": ""}
    assert signing.sign("secret", noisy) == signing.sign("secret", params)
    assert signing.signed("secret", params)["sign"] == "706427ca94e342781ac36d501151cb10"


def test_jushuitan_signing_fake_agrees_on_the_official_vectors() -> None:
    official = {
        "app_key": "5b53060f23d84ddf9703056e84fa5a2d",
        "timestamp": "1639128407",
        "grant_type": "authorization_code",
        "charset": "utf-8",
        "code": "123456",
    }
    assert md5_sign("e9c5ca33fecb404b8e6cdbd0ef4a6d25", official) == (
        "05e3a51e19e0883afd1882ccd309e0b9"
    )
    kocotree = {"timestamp": "100", "app_key": "app", "charset": "utf-8"}
    assert md5_sign("secret", kocotree) == "706427ca94e342781ac36d501151cb10"
