import torch

from ainnoseg.engine.sampler import SeededDataset, StepBatchSampler


def _flatten(batches):
    return sorted(index for batch in batches for index, _ in batch)


def test_two_processes_see_the_samples_one_process_sees_in_two_micro_batches():
    single = StepBatchSampler(50, 8, accumulate=2, seed=3)
    ranks = [StepBatchSampler(50, 8, world_size=2, rank=r, seed=3) for r in range(2)]
    for step in range(12):  # crosses epochs (6 steps each)
        micro = single.micro_batches(step)
        assert [ranks[r].micro_batches(step)[0] for r in range(2)] == micro
        assert len(set(_flatten(micro))) == 8


def test_every_sample_once_per_epoch_and_a_new_order_each_epoch():
    sampler = StepBatchSampler(40, 8, seed=0)
    epoch0 = [sampler.micro_batches(s)[0] for s in range(5)]
    epoch1 = [sampler.micro_batches(s)[0] for s in range(5, 10)]
    assert _flatten(epoch0) == list(range(40)) == _flatten(epoch1)
    assert epoch0 != epoch1


def test_resuming_at_a_step_continues_the_same_stream():
    full = list(StepBatchSampler(30, 4, seed=1, steps=10))
    resumed = list(StepBatchSampler(30, 4, seed=1, start_step=6, steps=4))
    assert resumed == full[6:]


def test_seeded_dataset_makes_loading_repeatable():
    class Noisy:
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return torch.rand(2) + index

    data = SeededDataset(Noisy())
    assert torch.equal(data[(1, 99)], data[(1, 99)])
    assert not torch.equal(data[(1, 99)], data[(1, 98)])
