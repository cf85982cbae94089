"""torch.distributed helpers: one code path for one process and for torchrun / accelerate.

Launched by ``torchrun`` (or ``accelerate launch``), ``WORLD_SIZE`` > 1 and the process group
is initialised here: gloo on CPU; with GPUs, each process on the GPU its ``LOCAL_RANK`` names
and nccl for CUDA tensors (gloo for CPU ones). Without it, everything is rank 0 of 1 and
torch is never imported.
"""

from __future__ import annotations

import atexit
import os
from typing import Any


class Dist:
    """Rank, world size and the few collectives the engine needs."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self._torch_dist: Any = None
        if self.world > 1:
            if "MASTER_ADDR" not in os.environ and "TORCHELASTIC_RUN_ID" not in os.environ:
                from .errors import UserError

                raise UserError(f"WORLD_SIZE={self.world} is set but no launcher set MASTER_ADDR: "
                                "launch with torchrun (or accelerate launch), or unset WORLD_SIZE")
            import torch
            import torch.distributed as td

            if not td.is_initialized():
                backend = "gloo"
                if torch.cuda.is_available():
                    # each process on its own GPU ("cuda" then means this one), and CPU
                    # tensors (a model left on the CPU, object gathers) through gloo
                    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", self.rank)))
                    backend = "cpu:gloo,cuda:nccl"
                td.init_process_group(backend=backend)
                # a process group still alive at interpreter exit can abort the process
                # ("terminate called without an active exception", SIGABRT) after the
                # work is done; tear it down while Python is still whole
                atexit.register(_destroy_process_group)
            self._torch_dist = td

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, items: list[Any]) -> list[Any]:
        """Every rank's list, concatenated in rank order, on every rank."""
        if self._torch_dist is None:
            return list(items)
        parts: list[Any] = [None] * self.world
        self._torch_dist.all_gather_object(parts, items)
        return [x for part in parts for x in part]

    def barrier(self) -> None:
        if self._torch_dist is not None:
            self._torch_dist.barrier()

    def all_reduce_sum(self, tensor: Any) -> None:
        """Sum a tensor over ranks, in place (data-parallel gradients); no-op on one process."""
        if self._torch_dist is not None:
            self._torch_dist.all_reduce(tensor, op=self._torch_dist.ReduceOp.SUM)

    def broadcast(self, tensor: Any, src: int = 0) -> None:
        """Overwrite ``tensor`` on every rank with rank ``src``'s, in place; no-op on one process."""
        if self._torch_dist is not None:
            self._torch_dist.broadcast(tensor, src=src)


def _destroy_process_group() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


_DIST: Dist | None = None


def get_dist() -> Dist:
    global _DIST
    if _DIST is None:
        _DIST = Dist()
    return _DIST
