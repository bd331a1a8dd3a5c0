"""esprune: evolution strategies for finding and studying sparse trainable initializations (lottery tickets)."""

__version__ = "0.1.0"
