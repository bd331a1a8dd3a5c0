"""Effective sparsity: which active weights lie on some input→output path of active weights.

Global pruning can leave weights that cannot matter: a weight whose source unit receives nothing from the input
only adds a constant (its unit's bias pushed through), and a weight whose target unit feeds no output changes
nothing at all. When a whole layer is empty no input reaches any output: the network is a constant function of
its input, whatever its other weights. Vysogorets & Kempe (2023), "Connectivity matters: neural network pruning
through the lens of effective sparsity" (JMLR 24), count only the weights on some input→output path
("effective" weights) and report the sparsity that leaves; this module computes it from a mask alone.

The network is read from its ``ParamSpec`` (esprune's MLP and CNN, DESIGN.md's naming): prunable tensors in spec
order form a chain of layers; a 2-D ``dense_k/w`` is ``(n_in, n_out)``, a 4-D ``conv_k/w`` is
``(C_out, C_in, K, K)``, and the first dense layer after a conv takes the flattened ``(C, H, W)`` output, so
its row ``r`` comes from channel ``r // (H·W)``. Biases are not counted (they are never pruned, and the paper's
sparsity counts prunable weights only).

MLP: exact graph reachability over units. CNN: reachability over *channels* — a conv tap ``(c_out, c_in, i, j)``
is effective when channel ``c_in`` is input-reachable and channel ``c_out`` reaches an output; a dense weight
from a flattened position of channel ``c`` when ``c`` is input-reachable and its target unit reaches an output.
Channel level ignores spatial reach (which pixel positions a tap pattern can carry signal to, through the
padding and pooling), so for a CNN the count is an upper bound on the pixel-level one; it is exact for MLPs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import Mask, ParamSpec


@dataclass(frozen=True)
class Effective:
    """The effective weights of one mask and their counts.

    ``mask``: boolean, per prunable tensor, True where the weight is active and on an input→output path (a
    subset of the mask). ``layers``: per prunable tensor name, ``(size, kept, effective)``. ``prunable``: all
    prunable weights. ``disconnected``: no input reaches any output (then no weight is effective).
    """
    mask: Mask
    layers: dict
    prunable: int
    disconnected: bool

    @property
    def kept(self) -> int:
        return sum(kept for _, kept, _ in self.layers.values())

    @property
    def count(self) -> int:
        """Effective weights in all (int)."""
        return sum(eff for _, _, eff in self.layers.values())

    @property
    def remaining(self) -> float:
        """Fraction of the prunable weights that are effective, in [0, 1] (1 − the effective sparsity)."""
        return self.count / self.prunable if self.prunable else 1.0

    @property
    def empty(self) -> list[str]:
        """Layers (tensor names without ``/w``) with no active weight, in spec order."""
        return [layer_name(name) for name, (_, kept, _) in self.layers.items() if kept == 0]

    def to_dict(self) -> dict:
        """JSON-able numbers (what run files store): ``prunable``, ``kept``, ``effective`` (counts),
        ``remaining`` (fraction effective), ``disconnected``, ``empty`` (layer names), ``layers``
        (``{layer: {size, kept, effective}}``)."""
        return {"prunable": self.prunable, "kept": self.kept, "effective": self.count, "remaining": self.remaining,
                "disconnected": self.disconnected, "empty": self.empty,
                "layers": {layer_name(n): {"size": s, "kept": k, "effective": e}
                           for n, (s, k, e) in self.layers.items()}}


def effective(spec: ParamSpec, mask) -> Effective:
    """The effective weights of ``mask`` (a ``Mask`` or a mapping of boolean arrays, one per prunable tensor of
    ``spec``) in the network ``spec`` describes. Raises ValueError for prunable tensors that do not form a chain
    of dense and conv layers (see the module docstring)."""
    names = spec.prunable_names
    masks = [np.asarray(mask[n], dtype=bool) for n in names]
    links = _links(spec, names)
    # unit-level adjacency of each layer: (source units, target units), True where any active weight joins them
    adjacency = [_adjacency(m, link) for m, link in zip(masks, links)]
    forward = [np.ones(adjacency[0].shape[0], dtype=bool)]             # every input unit is input-reachable
    for a in adjacency:
        forward.append(a[forward[-1]].any(axis=0))
    backward = [np.ones(adjacency[-1].shape[1], dtype=bool)]           # every output unit reaches an output
    for a in reversed(adjacency):
        backward.append(a[:, backward[-1]].any(axis=1))
    backward.reverse()
    out, layers = {}, {}
    for k, (name, m, link) in enumerate(zip(names, masks, links)):
        src, dst = forward[k], backward[k + 1]
        if m.ndim == 4:                                                 # (C_out, C_in, K, K)
            eff = m & src[None, :, None, None] & dst[:, None, None, None]
        else:                                                           # (n_in, n_out); rows grouped by channel
            eff = m & np.repeat(src, link)[:, None] & dst[None, :]
        out[name] = eff
        layers[name] = (int(m.size), int(m.sum()), int(eff.sum()))
    return Effective(Mask(out, spec), layers, spec.prunable_size, not bool(forward[-1].any()))


def warning(iteration: int, eff: dict) -> str:
    """The one line that says iteration ``iteration``'s ticket (``eff``: ``Effective.to_dict()``) is
    disconnected, and what that means for its score."""
    empty = eff["empty"]
    why = (f"{', '.join(empty)} empty" if empty else
           "no layer is empty, but no path of active weights joins an input to an output")
    return (f"iteration {iteration}: the ticket is disconnected ({why}): no input reaches an output, so the network "
            "computes a constant whatever its weights (its score is that of a constant policy or prediction)")


def layer_name(tensor: str) -> str:
    """``dense_1/w`` → ``dense_1``: how reports name a layer."""
    return tensor.rsplit("/", 1)[0]


def _links(spec: ParamSpec, names: list[str]) -> list[int]:
    """Per prunable tensor, how many of its input rows come from one source unit: 1 for a conv or a dense layer
    after a dense layer (or the input), H·W for the dense layer that reads a conv's flattened output."""
    links, units, conv = [], None, False                                # units: the previous layer's outputs
    for name in names:
        shape = spec[name].shape
        if len(shape) == 4:
            c_out, c_in = shape[:2]
            if units is not None and (not conv or c_in != units):
                raise ValueError(f"{name} {shape} does not follow the layer before it ({units} outputs)")
            links.append(1)
            units, conv = c_out, True
        elif len(shape) == 2:
            n_in, n_out = shape
            per = n_in // units if conv else 1
            if units is not None and per * units != n_in:
                raise ValueError(f"{name} {shape} does not follow the layer before it ({units} outputs)")
            links.append(per)
            units, conv = n_out, False
        else:
            raise ValueError(f"effective sparsity reads dense (2-D) and conv (4-D) weights, not {name} {shape}")
    if not names:
        raise ValueError("the network has no prunable weights")
    return links


def _adjacency(m: np.ndarray, link: int) -> np.ndarray:
    """``(source units, target units)`` boolean: some active weight joins the two units."""
    if m.ndim == 4:
        return m.any(axis=(2, 3)).T
    return m.reshape(m.shape[0] // link, link, m.shape[1]).any(axis=1)
