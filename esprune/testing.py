"""Hooks that exist for esprune's own tests only; nothing here changes a run's numbers.

``ESPRUNE_KILL_AT=k:g`` makes a run SIGKILL itself when IMP iteration k finishes generation g (GD: optimizer
step or PPO update g): the crash tests' way to die mid-iteration at a known point. ``ESPRUNE_OOM_AT=k:g:r``
raises MemoryError there instead, on MPI rank r only (r = 0 outside MPI): the way to run out of memory on one
rank of a sharded run. Unset, they do nothing.
The host emulation of the CUDA kernels (``esprune.ops.host_cuda``) is the other test-only part of the package.
"""
from __future__ import annotations

import os
import signal


def kill_point(k: int, generation: int) -> None:
    at = os.environ.get("ESPRUNE_KILL_AT")
    if at and at == f"{k}:{generation}":
        os.kill(os.getpid(), signal.SIGKILL)
    oom = os.environ.get("ESPRUNE_OOM_AT")
    if oom:
        from .distributed import rank

        if oom == f"{k}:{generation}:{rank()}":
            raise MemoryError(f"ESPRUNE_OOM_AT={oom}")
