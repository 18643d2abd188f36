"""The train order is a pure function of (seed, epoch), resumes mid-epoch, and shards across ranks without loss."""

from __future__ import annotations

import itertools

from kdlab.data.sampling import ResumableShuffleSampler, ShardSampler

DATA = list(range(101))


def _epoch(sampler: ResumableShuffleSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_order_depends_only_on_seed_and_epoch() -> None:
    a, b = ResumableShuffleSampler(DATA, seed=3), ResumableShuffleSampler(DATA, seed=3)
    assert _epoch(a, 1) == _epoch(b, 1) != _epoch(a, 2)
    assert sorted(_epoch(a, 0)) == DATA
    assert _epoch(ResumableShuffleSampler(DATA, seed=4), 1) != _epoch(a, 1)


def test_restored_sampler_continues_where_the_state_was_taken() -> None:
    first = ResumableShuffleSampler(DATA, seed=0)
    first.set_epoch(2)
    stream = iter(first)
    seen = list(itertools.islice(stream, 40))
    state = first.state_dict()
    rest = list(stream)

    second = ResumableShuffleSampler(DATA, seed=0)
    second.load_state_dict(state)
    assert _epoch(second, 2) == rest
    assert sorted(seen + rest) == DATA
    assert len(_epoch(second, 2)) == len(DATA)  # the skip applies to one pass only


def test_a_saved_state_of_another_epoch_is_ignored() -> None:
    sampler = ResumableShuffleSampler(DATA, seed=0)
    sampler.load_state_dict({"epoch": 0, "yielded": 50, "seed": 0})
    assert len(_epoch(sampler, 1)) == len(DATA)


def test_two_ranks_split_each_global_batch_of_the_one_process_order() -> None:
    one = _epoch(ResumableShuffleSampler(DATA, seed=0), 5)
    ranks = [_epoch(ResumableShuffleSampler(DATA, num_replicas=2, rank=r, seed=0), 5) for r in (0, 1)]
    for step in range(len(DATA) // 32):
        together = ranks[0][16 * step : 16 * (step + 1)] + ranks[1][16 * step : 16 * (step + 1)]
        assert sorted(together) == sorted(one[32 * step : 32 * (step + 1)])


def test_evaluation_shards_cover_every_sample_once() -> None:
    shards = [list(ShardSampler(DATA, 3, r)) for r in range(3)]
    assert sorted(itertools.chain(*shards)) == DATA
    assert [len(ShardSampler(DATA, 3, r)) for r in range(3)] == [34, 34, 33]
