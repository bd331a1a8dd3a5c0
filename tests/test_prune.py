"""Pruning: exact global counts, nesting, rewinding, the SNR ranking against brute force, and the baselines."""
import numpy as np
import pytest

from esprune import prune
from esprune.errors import ConfigError
from esprune.nets import MLP
from esprune.params import Mask

NET = MLP(4, (16, 16), 2, activation="tanh")


def trained(rng, init):
    mean = {n: v + rng.standard_normal(v.shape) for n, v in init.items()}
    std = {n: rng.uniform(0.05, 1.0, v.shape) for n, v in init.items()}
    return mean, std


def chain(kind, keep=0.8, K=8, seed=0):
    rng = np.random.default_rng(seed)
    init = NET.init(0)
    mask = Mask.dense(NET.spec)
    tickets = [prune.Ticket(init, mask)]
    for k in range(1, K + 1):
        mean, std = trained(rng, init)  # the same draws whatever the ticket, so baselines compare
        tickets.append(prune.next_ticket(kind, NET, init=init, mean=mean, std=std, mask=tickets[-1].mask,
                                         iteration=k, keep=keep, seed=seed))
    return init, tickets


@pytest.mark.parametrize("kind", [k for k in prune.TICKETS if k not in prune.GRADIENT])  # those: test_gd_runs
def test_sparsity_after_k_is_exactly_one_minus_keep_to_the_k(kind):
    _, tickets = chain(kind)
    n = NET.spec.prunable_size
    for k, t in enumerate(tickets):
        assert abs(t.mask.kept - n * 0.8**k) <= 0.5
        assert abs(t.mask.sparsity() - (1 - 0.8**k)) <= 0.5 / n + 1e-12


@pytest.mark.parametrize("kind", ["magnitude", "snr", "random-reinit", "magnitude-permute", "mask-reinit", "movement"])
def test_masks_nest(kind):
    _, tickets = chain(kind)
    for a, b in zip(tickets, tickets[1:]):
        for n in a.mask:
            assert not (b.mask[n] & ~a.mask[n]).any()


@pytest.mark.parametrize("kind", ["magnitude", "snr", "movement"])
def test_rewinding_restores_the_original_init(kind):
    init, tickets = chain(kind)
    for t in tickets:
        for n in init:
            np.testing.assert_array_equal(t.init[n], init[n])


def test_snr_equals_brute_force_ranking():
    rng = np.random.default_rng(3)
    init = NET.init(0)
    mask = Mask({n: rng.random(NET.spec[n].shape) < 0.7 for n in NET.spec.prunable_names}, NET.spec)
    mean, std = trained(rng, init)
    n_keep = 100
    got, threshold = prune.prune_to(prune.scores("snr", NET.spec, mean=mean, std=std), mask, n_keep)
    entries = []  # (snr, global position, name, index) of every active weight, one by one
    pos = 0
    for n in NET.spec.prunable_names:
        for i in range(mask[n].size):
            if mask[n].reshape(-1)[i]:
                entries.append((abs(mean[n].reshape(-1)[i]) / std[n].reshape(-1)[i], pos, n, i))
            pos += 1
    entries.sort(key=lambda e: (-e[0], e[1]))
    want = {n: np.zeros(NET.spec[n].size, dtype=bool) for n in NET.spec.prunable_names}
    for _, _, n, i in entries[:n_keep]:
        want[n][i] = True
    for n in want:
        np.testing.assert_array_equal(got[n].reshape(-1), want[n])
    assert threshold == entries[n_keep - 1][0]


def test_snr_variance_ranks_by_mean_over_variance():
    rng = np.random.default_rng(4)
    mean, std = trained(rng, NET.init(0))
    s = prune.scores("snr", NET.spec, mean=mean, std=std, snr_variance=True)
    n = NET.spec.prunable_names[0]
    np.testing.assert_allclose(s[n], np.abs(mean[n]) / std[n] ** 2)


def test_ties_keep_the_earliest_positions_and_pruned_weights_never_return():
    spec = NET.spec
    ones = {n: np.ones(spec[n].shape) for n in spec.prunable_names}
    mask, _ = prune.prune_to(ones, Mask.dense(spec), 10)
    first = spec.prunable_names[0]
    assert mask[first].reshape(-1)[:10].all() and mask.kept == 10
    revived = {n: np.where(mask[n], 0.0, 1e9) for n in spec.prunable_names}  # pruned weights score best
    again, _ = prune.prune_to(revived, mask, 5)
    assert again.kept == 5 and all(not (again[n] & ~mask[n]).any() for n in mask)
    with pytest.raises(ConfigError, match="cannot keep"):
        prune.prune_to(ones, mask, 11)


def test_permute_baselines_keep_values_and_layer_counts():
    init, mag = chain("magnitude", K=3, seed=5)
    _, perm = chain("magnitude-permute", K=3, seed=5)
    _, both = chain("permute-permute", K=3, seed=5)
    for k in (1, 2, 3):
        assert perm[k].mask == mag[k].mask
        for n in perm[k].mask:
            kept = mag[k].mask[n]
            np.testing.assert_array_equal(np.sort(perm[k].init[n][kept]), np.sort(init[n][kept]))
            if k == 1:  # later masks of permute-permute grow from its own earlier ones
                assert both[k].mask[n].sum() == kept.sum()
            np.testing.assert_array_equal(np.sort(both[k].init[n][both[k].mask[n]]),
                                          np.sort(init[n][both[k].mask[n]]))
        assert any(not np.array_equal(perm[k].init[n], init[n]) for n in perm[k].mask)
        assert not both[k].mask == mag[k].mask


def test_reinit_baselines_draw_a_fresh_init_and_random_masks_differ():
    init, rand = chain("random-reinit", K=2)
    _, mag = chain("magnitude", K=2)
    _, reinit = chain("mask-reinit", K=2)
    for t in (rand[1], reinit[1]):
        assert not np.array_equal(t.init["dense_0/w"], init["dense_0/w"])
    assert reinit[1].mask == mag[1].mask and not rand[1].mask == mag[1].mask
    _, again = chain("random-reinit", K=2)
    assert again[2].mask == rand[2].mask  # seeded: the same config gives the same ticket


def test_paper_names_and_unknown_method():
    assert prune.canonical("sig2noise") == "snr" and prune.canonical("final-ticket") == "magnitude"
    with pytest.raises(ConfigError, match="unknown pruning method"):
        prune.canonical("lamp")
