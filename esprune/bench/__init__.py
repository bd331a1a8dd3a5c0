"""The benchmark suites behind ``esprune bench``, one module each, sharing ``common`` (timing, peaks, threads,
the table): ``forward`` (population forward passes), ``rollouts`` (env steps/s), ``generation`` (whole ES
generations, W1 / W1-full / W2), ``imp_loop`` (the IMP loop), and ``compare`` (ratios against an earlier file).
Import the suite you need; only ``imp_loop`` reaches up to ``imp``."""
from .common import machine, matmul_peak, random_mask, set_threads, timeit

__all__ = ["machine", "matmul_peak", "random_mask", "set_threads", "timeit"]
