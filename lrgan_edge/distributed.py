"""Multi-process training under torchrun: the process group, and the few collectives the trainer needs.

`lrgan-edge train` run by `torchrun --nproc_per_node=K` (or with `--gpus K`, which starts torchrun
itself) finds RANK / WORLD_SIZE / LOCAL_RANK in its environment, joins the process group (NCCL on
GPUs, gloo on CPU) and trains with DistributedDataParallel. Without those variables nothing here
runs and training is single-process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .errors import ConfigError, TrainingError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's rank (0 outside torchrun): who prints and writes."""
    return int(os.environ.get("RANK", "0"))


def init_from_env(device: str = "auto") -> DistContext | None:
    """Join the process group torchrun describes; None when not launched by torchrun with K > 1."""
    if not launched_by_torchrun():
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible); "
                              f"start at most that many processes per node")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        # Long timeout: rank 0 alone writes checkpoints and evaluates while the others wait.
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    return DistContext(rank, world, local, dev)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of `values` over all ranks (the tensor itself in one process)."""
    if not dist.is_initialized():
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def any_rank(*flags: bool) -> list[bool]:
    """For each flag, whether it is set on any rank — so every rank takes the same branch."""
    if not dist.is_initialized():
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def gather(obj) -> list:
    """`obj` of every rank, in rank order, on every rank."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def digest(*modules: torch.nn.Module) -> str:
    """A hash of every parameter and buffer: equal on two ranks only if their weights are bit-identical."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def check_ranks_agree(digests: list[str], step: int) -> None:
    if len(set(digests)) > 1:
        raise TrainingError(f"the ranks' weights differ at step {step} (digests {', '.join(digests)}); "
                            f"the run is no longer data-parallel; resume from the last checkpoint")


def launch(nproc: int, argv: list[str]) -> int:
    """Re-run `lrgan-edge argv` under torchrun with `nproc` processes on this node; its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "lrgan_edge", *argv]
    return subprocess.call(cmd)
