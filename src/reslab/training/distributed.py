"""torchrun / DistributedDataParallel plumbing: the process group, rank helpers, agreement between ranks.

A run started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) trains with one
process per device: NCCL on CUDA (``cuda:LOCAL_RANK``), gloo on the CPU. Every rank holds the same
weights; each trains on its shard of every global batch, DDP averages the gradients. Rank 0 alone
writes files.

Without torchrun's variables :class:`DistContext` is the single-process context whose helpers do
nothing, so the trainer has one code path.

Ranks must reach every collective operation together. Two rules keep a failure on one rank from
leaving the others waiting forever:

- set-up work that can fail runs inside :meth:`DistContext.all_or_none`: the ranks exchange their
  outcome at its end and every rank raises the error (the same reslab type, naming the rank);
- the process group's timeout (``RESLAB_DDP_TIMEOUT`` seconds, default 600) bounds any later wait,
  and torchrun stops the other workers when one exits with an error.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .. import errors
from ..errors import ConfigError, TrainingError

logger = logging.getLogger("reslab.training")

#: signal names as numbers for the all-reduce that makes every rank stop at the same step
_SIGNAL_CODES = {None: 0, "SIGINT": 1, "SIGTERM": 2}
_SIGNAL_NAMES = {v: k for k, v in _SIGNAL_CODES.items()}


def launched_by_torchrun() -> bool:
    """Whether torchrun's (or torch.distributed's) environment variables are set."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def restart_count() -> int:
    """How often torchrun has restarted this job (``--max-restarts``); 0 for the first attempt."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def max_restarts() -> int:
    """torchrun's ``--max-restarts`` (0 when not launched by torchrun)."""
    try:
        return int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    except ValueError:
        return 0


def job_id() -> str | None:
    """torchrun's rendezvous id, the same for every attempt of one job (None outside torchrun)."""
    return os.environ.get("TORCHELASTIC_RUN_ID")


@dataclass
class DistContext:
    """This process's place in the job: ``rank`` of ``world_size`` (``local_rank`` on its node).

    ``active``: a process group is initialised (torchrun); otherwise every helper is a no-op and the
    run is the plain single-process run.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory, the log and the checkpoints."""
        return self.rank == 0

    # -- set-up / teardown -----------------------------------------------------------------------------
    @classmethod
    def from_env(cls) -> DistContext:
        """The context torchrun's variables describe (not yet initialised), or the single-process one."""
        if not launched_by_torchrun():
            return cls()
        try:
            rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        except ValueError:
            raise ConfigError(
                f"RANK/WORLD_SIZE/LOCAL_RANK must be whole numbers, got {os.environ['RANK']!r}/"
                f"{os.environ['WORLD_SIZE']!r}/{os.environ['LOCAL_RANK']!r} (start the job with torchrun)"
            ) from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"RANK {rank} is not within WORLD_SIZE {world} (start the job with torchrun)")
        return cls(rank=rank, world_size=world, local_rank=local)

    def device_for(self, name: str) -> torch.device:
        """This rank's device for ``--device name``: ``cuda:LOCAL_RANK`` on CUDA, else the CPU."""
        from .runtime import resolve_device

        device = resolve_device(name)
        if device.type != "cuda":
            return device
        if device.index is not None and device.index != self.local_rank:
            raise ConfigError(
                f"--device {name} under torchrun: each rank uses cuda:LOCAL_RANK (this is local rank "
                f"{self.local_rank}); pass --device cuda and choose GPUs with CUDA_VISIBLE_DEVICES"
            )
        if self.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {self.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc-per-node)"
            )
        return torch.device("cuda", self.local_rank)

    def init(self, device: torch.device) -> None:
        """Join the process group: NCCL for CUDA devices, gloo for the CPU."""
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=float(os.environ.get("RESLAB_DDP_TIMEOUT", "600")))
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        kwargs.update(_attempt_store(self.rank, self.world_size, timeout))
        dist.init_process_group(backend, timeout=timeout, **kwargs)
        self.active = True
        self.device = device
        if not self.is_main:
            # the console shows rank 0's messages; other ranks speak only for their own warnings/errors
            logging.getLogger("reslab").setLevel(logging.WARNING)

    def barrier_before_leaving(self) -> None:
        """Wait for every rank (after a run that ended well, before leaving the group): a rank that left while
        rank 0 was still writing the run's last files sometimes aborted in gloo's teardown ("terminate called
        without an active exception", exit -6) and failed the job. A rank that died is not waited for."""
        if self.active and dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.barrier()

    def destroy(self) -> None:
        """Leave the process group (at the end of the run and on errors)."""
        if self.active and dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        self.active = False

    # -- agreement ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def all_or_none(self, what: str) -> Iterator[None]:
        """Run a block on every rank; if it raises on any rank, raise on every rank (an error of the same
        reslab type, naming the rank), so no rank goes on to wait for the others. Single process: as is."""
        if not self.active:
            yield
            return
        failure: BaseException | None = None
        try:
            yield
        except Exception as e:  # KeyboardInterrupt etc. stop this rank; torchrun stops the others
            failure = e
        self.raise_if_any(failure, what)

    def raise_if_any(self, failure: BaseException | None, what: str) -> None:
        """Exchange ``failure`` (None: this rank succeeded) between the ranks and raise it everywhere."""
        if not self.active:
            if failure is not None:
                raise failure
            return
        mine = None if failure is None else (type(failure).__name__, str(failure))
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, mine)
        if failure is not None:
            raise failure
        for rank, other in enumerate(gathered):
            if other is not None:
                kind, message = other
                cls = getattr(errors, kind, None)
                if not (isinstance(cls, type) and issubclass(cls, errors.ReslabError)):
                    cls, message = TrainingError, f"{kind}: {message}"
                raise cls(f"rank {rank} ({what}): {message}")

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (a list indexed by rank) on every rank."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    # -- tensors -----------------------------------------------------------------------------------------
    def sum_(self, *tensors: torch.Tensor) -> None:
        """Sum tensors (on this rank's device) over the ranks, in place."""
        if self.active:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def sum_numbers(self, values: list[float], device: torch.device) -> list[float]:
        """Python numbers summed over the ranks (in float64)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def reduce_meter(self, meter: Any) -> None:
        """Add every rank's sums of a :class:`~reslab.training.metrics.ClassificationMeter` (its shard of a
        split) in place, so the figures are the whole split's."""
        if not self.active:
            return
        count = torch.tensor(meter.count, dtype=torch.int64, device=meter.top1.device)
        tensors = [meter.loss_sum, meter.top1, meter.topk, count]
        if meter.confusion is not None:
            tensors.append(meter.confusion)
        self.sum_(*tensors)
        meter.count = int(count)

    def agree_step(self, finite: torch.Tensor, signal_name: str | None) -> tuple[bool, str | None]:
        """Whether every rank's losses were finite, and the signal any rank received (SIGTERM before SIGINT),
        in one all-reduce, so every rank stops at the same step."""
        if not self.active:
            return bool(finite), signal_name
        flags = torch.stack(
            [(~finite.bool()).to(torch.int64), torch.tensor(_SIGNAL_CODES.get(signal_name, 2), device=finite.device)]
        )
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        bad, code = flags.tolist()
        return not bad, _SIGNAL_NAMES[int(code)]

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank (BatchNorm statistics differ
        between ranks; evaluation and the checkpoints use rank 0's)."""
        if not self.active:
            return
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel (or itself in a single process)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


def no_sync(model: nn.Module, skip: bool):
    """DDP's ``no_sync`` (no gradient all-reduce) for accumulation micro-steps other than the last."""
    inner = getattr(model, "_orig_mod", model)  # a torch.compile'd DDP model
    if skip and hasattr(inner, "no_sync"):
        return inner.no_sync()
    return contextlib.nullcontext()


def check_sync_bn(sync_bn: bool, device: torch.device) -> None:
    """Refuse ``--sync-bn`` where SyncBatchNorm cannot run: it has CUDA kernels only."""
    if sync_bn and device.type != "cuda":
        raise ConfigError(
            f"--sync-bn needs CUDA devices (SyncBatchNorm has no CPU kernel), but this run is on {device}; "
            "drop --sync-bn (each rank then normalises with its own batch statistics)"
        )


def _attempt_store(rank: int, world_size: int, timeout: datetime.timedelta) -> dict[str, Any]:
    """The process group's store for a restarted torchrun job: the agent's store, under a prefix of its own.

    Under torchrun the workers share the agent's TCPStore, and torch does not clear or prefix it between
    attempts (``--max-restarts``): a restarted rank could read the dead rank's address from the previous
    attempt and fail with gloo's "connection refused" (seen here about one restart in two). A prefix per
    ``TORCHELASTIC_RESTART_COUNT`` keeps each attempt's keys apart. The first attempt, and any launcher
    without the agent's store, keep torch's ``env://`` default (returns no arguments).
    """
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if restart == "0" or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False, timeout=timeout
    )
    return {"store": dist.PrefixStore(f"reslab/attempt_{restart}", store), "rank": rank, "world_size": world_size}
