"""The per-job write lock: never two holders of one key at once, even for a newcomer that
arrives between a release and the waiter's wake-up (the moment the lock reads unlocked)."""

from __future__ import annotations

import asyncio

from recon_operator.keyed_lock import KeyedLock


def test_a_newcomer_between_release_and_wake_up_waits_its_turn() -> None:
    async def scenario() -> list[str]:
        locks = KeyedLock()
        inside: set[str] = set()
        overlaps: list[str] = []
        a_holds, a_may_go = asyncio.Event(), asyncio.Event()

        async def writer(name: str, hold: asyncio.Event | None = None) -> None:
            async with locks.hold("uid"):
                if inside:
                    overlaps.append(f"{name} beside {sorted(inside)}")
                inside.add(name)
                if hold is not None:
                    a_holds.set()
                    await hold.wait()
                else:
                    await asyncio.sleep(0.01)
                inside.discard(name)

        a = asyncio.create_task(writer("a", a_may_go))
        await a_holds.wait()
        b = asyncio.create_task(writer("b"))
        await asyncio.sleep(0)  # b now waits on the lock
        a_may_go.set()
        await a  # released; b is woken but has not run yet
        c = asyncio.create_task(writer("c"))
        await asyncio.gather(b, c)
        assert len(locks) == 0, "the entry goes with its last user"
        return overlaps

    assert asyncio.run(scenario()) == []


def test_keys_are_apart() -> None:
    async def scenario() -> bool:
        locks = KeyedLock()
        async with locks.hold("one"):
            async with asyncio.timeout(1):
                async with locks.hold("two"):
                    return True

    assert asyncio.run(scenario())
