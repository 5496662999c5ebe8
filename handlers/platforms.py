"""The shop platforms by id, the names people write for them, and how each is shown."""

from __future__ import annotations

# id → how cards show it. `wechat_channels` is the id events have always used for 视频号;
# `wechat` is what a `[[shops]]` entry may call it.
PLATFORMS: dict[str, str] = {
    "taobao": "淘宝",
    "tmall": "天猫",
    "douyin": "抖音",
    "pinduoduo": "拼多多",
    "jd": "京东",
    "kuaishou": "快手",
    "wechat": "视频号",
    "wechat_channels": "视频号",
}
# The names people write → the id they mean.
ALIASES: dict[str, str] = {
    "淘宝": "taobao",
    "天猫": "tmall",
    "抖音": "douyin",
    "抖店": "douyin",
    "拼多多": "pinduoduo",
    "京东": "jd",
    "快手": "kuaishou",
    "微信": "wechat",
    "视频号": "wechat",
    "微信小店": "wechat",
}


def platform_id(name: str) -> str:
    """The platform id `name` means (an id, or a Chinese name); ValueError naming the ids."""
    value = name.strip()
    if value in PLATFORMS:
        return value
    if value in ALIASES:
        return ALIASES[value]
    lowered = value.lower()
    if lowered in PLATFORMS:
        return lowered
    known = ", ".join(p for p in PLATFORMS if p != "wechat_channels")
    raise ValueError(f"{name!r} is not a platform id (one of {known}, or 淘宝 天猫 抖音 …)")


def label(platform: str) -> str:
    return PLATFORMS.get(platform, platform)
