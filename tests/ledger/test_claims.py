"""Two task instances that meet the same new content at once: exactly one claims it (local disk)."""

from __future__ import annotations

import multiprocessing
import threading

from airflow_provider_mineru.ledger import LedgerStore
from tests.ledger.conftest import TOKEN, file_key


def _race(store_factory, key, owners: list[str]) -> list[bool]:
    barrier = threading.Barrier(len(owners))
    results: dict[str, bool] = {}

    def run(owner: str) -> None:
        store = store_factory()
        barrier.wait()
        results[owner] = store.claim(key, owner, ttl=600)

    threads = [threading.Thread(target=run, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[o] for o in owners]


def test_one_of_many_threads_wins_a_claim(tmp_path) -> None:
    for round_ in range(5):
        key = file_key(str(round_).encode())
        won = _race(lambda: LedgerStore(tmp_path, TOKEN), key, [f"ti-{i}" for i in range(8)])
        assert won.count(True) == 1, won


def _claim_in_process(root: str, key_dict: dict, owner: str, start, queue) -> None:
    from airflow_provider_mineru.ledger import LedgerKey

    store = LedgerStore(root, TOKEN)
    key = LedgerKey.from_dict(key_dict)
    start.wait()
    queue.put((owner, store.claim(key, owner, ttl=600)))


def test_one_of_two_processes_wins_a_claim(tmp_path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        key = file_key(f"p{round_}".encode())
        start, queue = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_claim_in_process, args=(str(tmp_path), key.to_dict(), f"w{i}", start, queue))
            for i in range(2)
        ]
        for p in procs:
            p.start()
        start.set()
        results = dict(queue.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(60)
        assert sorted(results.values()) == [False, True], results


def test_a_claim_holds_for_its_owner_until_it_expires_or_is_released(tmp_path) -> None:
    now = [1000.0]
    store = LedgerStore(tmp_path, TOKEN, clock=lambda: now[0])
    key = file_key()
    assert store.claim(key, "a", ttl=60)
    assert store.claim(key, "a", ttl=60)  # an Airflow retry of the same task instance
    assert not store.claim(key, "b", ttl=60)
    now[0] += 61
    assert store.claim(key, "b", ttl=60)  # a's claim expired (a crashed)
    assert not store.claim(key, "a", ttl=60)
    store.release(key, "b")
    assert store.claim(key, "c", ttl=60)
    claims = sorted((tmp_path / ".mineru-ledger" / "claims" / key.id).iterdir())
    assert len(claims) <= 2  # older generations are cleaned up


def test_a_planted_or_foreign_claim_blocks_nothing(tmp_path) -> None:
    key = file_key()
    assert LedgerStore(tmp_path, "other-token").claim(key, "intruder", ttl=10**9)
    assert LedgerStore(tmp_path, TOKEN).claim(key, "a", ttl=60)


def test_without_an_atomic_create_a_claim_is_check_write_read_back(tmp_path) -> None:
    store = LedgerStore(tmp_path, TOKEN, exclusive=False)
    assert not store.atomic_claims
    key = file_key()
    assert store.claim(key, "a", ttl=60)
    assert not store.claim(key, "b", ttl=60)


def test_a_waiter_that_claims_after_the_winner_released_reuses_its_result(tmp_path) -> None:
    """
    The winner records and releases between the waiter's look at the entry and its claim: the waiter
    wins the next claim, reads the entry again, and reuses (the Celery deployment test paid twice here).
    The waiter does not send the input it lost (``await``); it takes the result after its own landed.
    """
    import logging
    from types import SimpleNamespace

    from airflow_provider_mineru.ledger import Action, PlanInput, PlanItem, Reason
    from airflow_provider_mineru.ledger.run import LedgerRun
    from tests.ledger.conftest import land

    key, out = file_key(), tmp_path / "out"
    winner = LedgerStore(out, TOKEN)
    assert winner.claim(key, "winner", ttl=600)

    class Waiter(LedgerStore):
        looks = 0

        def get(self, wanted):  # the first look happens just before the winner records and releases
            Waiter.looks += 1
            if Waiter.looks == 1:
                land(out, "a", "task-1")
                winner.record_done(key, "a", source="/in/a.pdf", name="a.pdf", task_id="task-1")
                winner.release(key, "winner")
                return None
            return super().get(wanted)

    item = PlanItem(PlanInput("a.pdf", "/in/a.pdf", key, "a"), Action.PARSE, Reason.NEW, None)
    run = LedgerRun(Waiter(out, TOKEN), [item], "waiter")
    run._claim_or_wait(SimpleNamespace(force=False, timeout=60, log=logging.getLogger("test")))
    assert run.items[0].action is Action.AWAIT, run.items[0]  # not sent; its result is taken after landing
    assert run.sends == []
    settled = run._awaited(run.items[0], ttl=60)
    assert settled.action is Action.REUSE, settled
    assert winner.claim(key, "third", ttl=600)  # the waiter released the claim it won
