"""TmcConsumer against FakeTaobao's TMC: a checked CONNECT, messages confirmed only once
stored, a failed store nacked and delivered again, a refused CONNECT retried, and a newer
connection for the same group kicking the older one."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from integrations.shop.connector import PlatformMessage
from integrations.taobao.tmc import TmcConsumer
from tests.support.taobao import APP_KEY, APP_SECRET, Rig


def consumer(rig: Rig, session: aiohttp.ClientSession, secret: str = APP_SECRET) -> TmcConsumer:
    return TmcConsumer(
        session, f"{rig.url}/tmc", APP_KEY, secret, "default", rig.clock, 0.05, min_backoff_s=0.05
    )


async def until(check: object, seconds: float = 3.0) -> None:
    assert callable(check)
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_messages_are_confirmed_after_the_handler_stored_them(
    rig: Rig, session: aiohttp.ClientSession
) -> None:
    stored: list[PlatformMessage] = []

    async def store(message: PlatformMessage) -> None:
        stored.append(message)

    refund_id = rig.fake.new_refund()
    tmc = consumer(rig, session)
    task = asyncio.create_task(tmc.run(store))
    try:
        await asyncio.wait_for(tmc.connected.wait(), 3)
        await until(lambda: len(rig.fake.confirms) == 1)
        (message,) = stored
        assert message.topic == "taobao_refund_RefundCreated"
        assert message.id == str(rig.fake.confirms[0])
        assert f'"refund_id": {refund_id}' in message.body["content"]
        assert rig.fake.queue == {}
        (hello,) = rig.fake.connects
        assert hello["accepted"]
        assert hello["group_name"] == "default"
        translated = await rig.connector.translate(message)
        assert translated[0]["data"]["refund_id"] == refund_id
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not tmc.is_connected


async def test_a_failed_store_is_nacked_and_delivered_again(
    rig: Rig, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []

    async def flaky(message: PlatformMessage) -> None:
        seen.append(message.id)
        if len(seen) == 1:
            raise RuntimeError("database down")

    rig.fake.new_refund()
    tmc = consumer(rig, session)
    task = asyncio.create_task(tmc.run(flaky))
    try:
        await until(lambda: len(rig.fake.confirms) == 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (nack,) = rig.fake.nacks
    assert "database down" in nack[1]
    assert seen == [str(nack[0]), str(nack[0])]


async def test_unconfirmed_messages_come_back_after_the_redelivery_time(
    rig: Rig, session: aiohttp.ClientSession
) -> None:
    rig.fake.redeliver_s = 0.2
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow(message: PlatformMessage) -> None:
        seen.append(message.id)
        if len(seen) == 1:
            await gate.wait()

    rig.fake.new_refund()
    tmc = consumer(rig, session)
    task = asyncio.create_task(tmc.run(slow))
    try:
        await until(lambda: len(seen) == 1)
        await asyncio.sleep(0.3)
        assert rig.fake.confirms == []
        gate.set()
        await until(lambda: len(seen) == 2 and len(rig.fake.confirms) >= 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_bad_sign_is_refused_and_retried(rig: Rig, session: aiohttp.ClientSession) -> None:
    async def store(_: PlatformMessage) -> None:
        raise AssertionError("nothing may arrive")

    rig.fake.new_refund()
    tmc = consumer(rig, session, secret="wrong")
    task = asyncio.create_task(tmc.run(store))
    try:
        await until(lambda: len(rig.fake.connects) >= 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not any(c["accepted"] for c in rig.fake.connects)
    assert "invalid sign" in tmc.last_error
    assert not tmc.is_connected


async def test_a_second_connection_for_the_group_kicks_the_first(
    rig: Rig, session: aiohttp.ClientSession
) -> None:
    async def store(_: PlatformMessage) -> None:
        return None

    first, second = consumer(rig, session), consumer(rig, session)
    tasks = [asyncio.create_task(first.run(store))]
    try:
        await asyncio.wait_for(first.connected.wait(), 3)
        tasks.append(asyncio.create_task(second.run(store)))
        await until(lambda: rig.fake.kicked >= 1)
        rig.fake.new_refund()
        await until(lambda: len(rig.fake.confirms) == 1)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
