"""Kernel families: for each, the numba CPU twin and the launcher of its CUDA kernel (sources in ``kernels/``).

Nothing here knows about networks, strategies or tasks: ops take arrays and index structures.
"""
