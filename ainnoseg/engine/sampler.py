"""The training sample stream: sharded like DistributedSampler, resumable at
any step, and with a seed per sample so the stream does not depend on the
number of worker processes or on where a run was resumed."""

import torch
from torch.utils.data import Dataset


def _epoch_order(length, seed, epoch):
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(length, generator=generator)


def sample_seed(seed, epoch, position):
    """The augmentation seed of one sample: a fixed function of where it falls."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + position


class StepBatchSampler:
    """Yields, from step `start_step` on, the micro-batches of this process.

    Each epoch is a seeded permutation; step j of an epoch covers positions
    [j * B, (j + 1) * B) with B the global batch size. Within a step, position
    q goes to the process and micro-batch numbered q mod (world * accumulate),
    so 2 processes x 1 micro-batch see exactly the samples that 1 process x 2
    micro-batches sees (and torch's DistributedSampler interleaving).
    Items are (dataset index, sample seed) pairs for `SeededDataset`.
    """

    def __init__(self, length, global_batch, world_size=1, rank=0, accumulate=1, seed=0,
                 start_step=0, steps=None):
        self.length, self.global_batch = length, global_batch
        self.world_size, self.rank, self.accumulate = world_size, rank, accumulate
        self.seed, self.start_step, self.steps = seed, start_step, steps
        self.steps_per_epoch = length // global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the dataset has {length} samples, fewer than one global batch of "
                f"{global_batch}; lower batch_size")

    def micro_batches(self, step):
        """The `accumulate` micro-batches this process trains on at `step`."""
        epoch, index_in_epoch = divmod(step, self.steps_per_epoch)
        order = _epoch_order(self.length, self.seed, epoch)
        first = index_in_epoch * self.global_batch
        shards = self.world_size * self.accumulate
        batches = []
        for micro in range(self.accumulate):
            owner = micro * self.world_size + self.rank
            positions = range(first + owner, first + self.global_batch, shards)
            batches.append([(int(order[p]), sample_seed(self.seed, epoch, p)) for p in positions])
        return batches

    def __iter__(self):
        step = self.start_step
        while self.steps is None or step < self.start_step + self.steps:
            yield from self.micro_batches(step)
            step += 1


class SeededDataset(Dataset):
    """Seeds torch's generator with the sample's seed before loading it, so the
    random transforms, and the Mosaic collate after the last sample of a
    batch, draw the same numbers wherever and whenever the sample is loaded."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        torch.manual_seed(seed)
        return self.dataset[index]
