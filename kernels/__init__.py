"""CUDA C sources of esprune's kernels, shipped as package data (``esprune.kernels``)."""
