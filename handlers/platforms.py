"""The shop platforms by id, the names people write for them, and how each is shown."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

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
    raise ValueError(f"{_not_one(name)} ({KNOWN})")


KNOWN = (
    "one of " + ", ".join(p for p in PLATFORMS if p != "wechat_channels") + ", or 淘宝 天猫 抖音 …"
)


def _not_one(name: str) -> str:
    guess = suggest(name, [*PLATFORMS, *ALIASES])
    meant = f"; did you mean `{ALIASES.get(guess, guess)}`?" if guess else ""
    return f"`{name}` is not a platform id{meant}"


def platform_ids(names: Iterable[str]) -> list[str]:
    """The ids `names` mean, in order, once each; 视频号 is both ids events have used for it.
    ValueError naming every name that is none (with a suggestion)."""
    ids: list[str] = []
    wrong: list[str] = []
    for name in names:
        try:
            found = platform_id(name)
        except ValueError:
            wrong.append(_not_one(name))
            continue
        for one in WECHAT if found in WECHAT else (found,):
            if one not in ids:
                ids.append(one)
    if wrong:
        raise ValueError(f"{'; '.join(wrong)} ({KNOWN})")
    return ids


# The ids 视频号 goes by: a rule or a group naming one takes events carrying either.
WECHAT = ("wechat", "wechat_channels")


def suggest(word: str, known: Iterable[str]) -> str:
    """The known value `word` most likely meant to be, or '' when none is close."""
    close = difflib.get_close_matches(word.strip(), list(known), n=1, cutoff=0.5)
    return close[0] if close else ""


def label(platform: str) -> str:
    return PLATFORMS.get(platform, platform)
