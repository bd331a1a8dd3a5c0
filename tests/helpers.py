"""Shared by the network and task tests: a population around a network's init under a random mask."""
import numpy as np

from esprune.params import Layout, Mask


def masked_population(net, sparsity, P, rng, scale=0.3, init_seed=1):
    """(layout, pop): each prunable weight kept with probability 1 − sparsity; members = init + scale·N(0, 1)."""
    mask = Mask({n: rng.random(net.spec[n].shape) >= sparsity for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    pop = layout.flatten(net.init(init_seed))[None] + scale * rng.standard_normal((P, layout.dim)).astype(np.float32)
    return layout, pop.astype(np.float32)


def assert_close(out, ref, rtol):
    """Within ``rtol`` relative, and ``rtol`` of the output's scale absolute (float32 sums in another order)."""
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
