"""Data-parallel helpers: `torchrun --nproc_per_node=N -m ainnoseg train ...`."""

import os

import torch
import torch.distributed as dist


def init_distributed():
    """Join the process group torchrun describes; (rank, world size, device).

    Without torchrun this is one process: (0, 1, cuda:0 or cpu). NCCL on
    CUDA, gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world_size, device


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def is_main_process():
    return not is_distributed() or dist.get_rank() == 0


def barrier():
    if is_distributed():
        dist.barrier()


def any_process(flag):
    """True if `flag` is true on any process (e.g. a non-finite loss)."""
    if not is_distributed():
        return bool(flag)
    value = torch.tensor([float(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_processes(values):
    """The mean of a dict of floats over all processes (for logging)."""
    if not is_distributed():
        return values
    keys = sorted(values)
    stacked = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(stacked)
    return dict(zip(keys, (stacked / dist.get_world_size()).tolist()))


def cleanup():
    if is_distributed():
        dist.destroy_process_group()
