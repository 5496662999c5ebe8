"""DingTalk card ids are unique per deployment, and "that id exists" never means "update it".

`outTrackId` was `refund-R1`: a second deployment (or a fresh database) on the same DingTalk
app got "card exists" for its own R1 and updated the old card, in another group, with the
new case's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update

from handlers.clock import FakeClock
from handlers.errors import PermanentError
from integrations.dingtalk.client import CardExistsError, DingtalkClient
from integrations.dingtalk.fake import FakeCard, FakeDingtalk
from integrations.dingtalk.models import CardData, CreateAndDeliver, GroupDeliverModel
from integrations.dingtalk.settings import DingtalkSettings
from storage.coordination import InProcessCoordination
from storage.models import CardMessage
from tests.support.app import Bot, BotFactory, make_refund
from tests.support.dingtalk import ding, ding_settings, running_fake, streaming

CHAT_A = "cidSHOPA=="
CHAT_B = "cidSHOPB=="


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDingtalk]:
    async with running_fake(clock) as running:
        yield running


async def deployment(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk, name: str, chat: str
) -> Bot:
    group = {"id": "aftersales", "channel": "dingtalk_stream", "chat_id": chat}
    settings = ding_settings(
        f"sqlite+aiosqlite:///{tmp_path / name}.db",
        fake,
        groups=[group, {"id": "ops", "name": "管理群", "channel": "sandbox"}],
    )
    return await make_bot(settings)


async def refund(bot: Bot, **overrides: Any) -> None:
    status, _ = await bot.post_event(make_refund(**overrides))
    assert status == 202
    await bot.drain()


def cards_in(fake: FakeDingtalk, chat: str) -> list[FakeCard]:
    return [c for c in fake.cards.values() if c.space_id.endswith(chat)]


async def test_dingtalk_second_deployment_never_overwrites_the_first_ones_card(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk
) -> None:
    first = await deployment(make_bot, tmp_path, fake, "first", CHAT_A)
    await refund(first, data_amount="12.00", data_order_amount="12.00")
    (old,) = cards_in(fake, CHAT_A)
    shown = dict(old.params)
    second = await deployment(make_bot, tmp_path, fake, "second", CHAT_B)
    await refund(second, data_amount="1800.00", data_order_amount="1800.00")
    assert old.params == shown
    assert old.updates == []
    (new,) = cards_in(fake, CHAT_B)
    assert new.params["handle"] == old.params["handle"] == "R1"
    assert "¥1,800.00" in new.params["title"]
    assert new.out_track_id != old.out_track_id
    assert fake.count("PUT", "/v1.0/card/instances") == 0
    for bot, track in ((first, old.out_track_id), (second, new.out_track_id)):
        async with bot.svc.tx() as tx:
            placement = await tx.cards.by_ref("dingtalk_stream", track)
        assert placement is not None


async def test_dingtalk_tap_on_another_deployments_card_never_acts_on_our_case(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk
) -> None:
    first = await deployment(make_bot, tmp_path, fake, "first", CHAT_A)
    await refund(first, data_amount="12.00", data_order_amount="12.00")
    (theirs,) = cards_in(fake, CHAT_A)
    second = await deployment(make_bot, tmp_path, fake, "second", CHAT_B)
    await refund(second, data_amount="1800.00", data_order_amount="1800.00")
    # Stream mode spreads an app's callbacks over every connection, whoever opened it.
    async with streaming(second):
        answer = await fake.click(theirs.out_track_id, ding("sup1"), "approve")
    assert answer == {}
    for bot in (first, second):
        _, case = await bot.get_case("R1")
        assert case["state"] == "awaiting_review"
    assert fake.group_messages == []


async def test_dingtalk_tap_on_a_card_we_no_longer_know_in_our_group_is_told_so(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk
) -> None:
    bot = await deployment(make_bot, tmp_path, fake, "ours", CHAT_A)
    await refund(bot)
    (card,) = fake.cards.values()
    async with bot.svc.tx() as tx:
        await tx.session.execute(update(CardMessage).values(ref="refund-R1-lost"))
    async with streaming(bot):
        assert await fake.click(card.out_track_id, ding("sup1"), "approve") == {}
    _, case = await bot.get_case("R1")
    assert case["state"] == "awaiting_review"
    (told,) = fake.group_messages
    assert told["conversation"] == CHAT_A
    assert str(told["param"]["content"]).startswith("@sup1 这张卡片已失效")


async def test_dingtalk_card_ids_carry_a_random_suffix_per_card(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk
) -> None:
    for name in ("one", "two"):
        bot = await deployment(make_bot, tmp_path, fake, name, CHAT_A)
        await refund(bot)
    tracks = [c.out_track_id for c in fake.cards.values()]
    assert len(set(tracks)) == 2
    assert all(t.startswith("refund-R1-") and len(t) <= 64 for t in tracks)


async def test_dingtalk_create_with_a_taken_id_is_an_error_never_an_update(
    fake: FakeDingtalk,
) -> None:
    settings = DingtalkSettings(
        app_key=fake.app_key,
        app_secret=fake.app_secret,
        robot_code=fake.robot_code,
        api_base=fake.base_url.rstrip("/"),
    )
    request = CreateAndDeliver(
        card_template_id="t.schema",
        out_track_id="refund-R1",
        callback_type="STREAM",
        card_data=CardData(card_param_map={"handle": "R1", "title": "old"}),
        open_space_id=f"dtv1.card//IM_GROUP.{CHAT_A}",
        im_group_open_deliver_model=GroupDeliverModel(robot_code=fake.robot_code),
    )
    async with aiohttp.ClientSession() as http:
        client = DingtalkClient(http, settings, InProcessCoordination())
        await client.create_and_deliver(request)
        again = request.model_copy(
            update={
                "card_data": CardData(card_param_map={"handle": "R1", "title": "new"}),
                "open_space_id": f"dtv1.card//IM_GROUP.{CHAT_B}",
            }
        )
        with pytest.raises(CardExistsError, match=r"cardAlreadyExist") as refused:
            await client.create_and_deliver(again)
    assert isinstance(refused.value, PermanentError)
    assert fake.cards["refund-R1"].params["title"] == "old"
    assert fake.count("PUT", "/v1.0/card/instances") == 0


async def test_dingtalk_cards_delivered_under_old_ids_still_resolve_to_their_case(
    make_bot: BotFactory, tmp_path: Path, fake: FakeDingtalk
) -> None:
    bot = await deployment(make_bot, tmp_path, fake, "old", CHAT_A)
    await refund(bot, data_amount="30.00", data_order_amount="30.00")
    (card,) = fake.cards.values()
    # As delivered before ids had a suffix: `<kind>-<handle>`, stored with the card.
    del fake.cards[card.out_track_id]
    card.out_track_id = "refund-R1"
    fake.cards["refund-R1"] = card
    async with bot.svc.tx() as tx:
        await tx.session.execute(update(CardMessage).values(ref="refund-R1"))
    async with streaming(bot):
        answer = await fake.click("refund-R1", ding("agent1"), "approve")
    assert answer["cardData"]["cardParamMap"]["status"] == "已通过"
    await bot.drain()
    assert card.updates[-1][0] == "api"
    assert card.params["status"] == "已通过 · 待手动退款"
    assert list(fake.cards) == ["refund-R1"]
