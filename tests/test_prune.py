"""Pruning: exact global counts, nesting, rewinding, the SNR ranking against brute force, and the baselines."""
import numpy as np
import pytest

from esprune import prune
from esprune.errors import ConfigError
from esprune.nets import CNN, MLP
from esprune.params import Mask

NET = MLP(4, (16, 16), 2, activation="tanh")


def trained(rng, init):
    mean = {n: v + rng.standard_normal(v.shape) for n, v in init.items()}
    std = {n: rng.uniform(0.05, 1.0, v.shape) for n, v in init.items()}
    return mean, std


def chain(kind, keep=0.8, K=8, seed=0, net=NET, options=None):
    rng = np.random.default_rng(seed)
    init = net.init(0)
    mask = Mask.dense(net.spec)
    tickets = [prune.Ticket(init, mask)]
    for k in range(1, K + 1):
        mean, std = trained(rng, init)  # the same draws whatever the ticket, so baselines compare
        # as in training, pruned weights end at 0 (they are not searched)
        mean = {n: np.where(tickets[-1].mask[n], v, 0.0) if n in tickets[-1].mask else v for n, v in mean.items()}
        tickets.append(prune.next_ticket(kind, net, init=init, mean=mean, std=std, mask=tickets[-1].mask,
                                         iteration=k, keep=keep, seed=seed, options=options))
    return init, tickets


@pytest.mark.parametrize("kind", [k for k in prune.TICKETS if k not in prune.GRADIENT])  # those: test_gd_runs
def test_sparsity_after_k_is_exactly_one_minus_keep_to_the_k(kind):
    _, tickets = chain(kind)
    n = NET.spec.prunable_size
    for k, t in enumerate(tickets):
        assert abs(t.mask.kept - n * 0.8**k) <= 0.5
        assert abs(t.mask.sparsity() - (1 - 0.8**k)) <= 0.5 / n + 1e-12


@pytest.mark.parametrize("kind, options", [("magnitude", None), ("snr", None), ("magnitude-permute", None),
                                           ("mask-reinit", None), ("movement", None),
                                           ("random-reinit", {"nested": True})])
def test_masks_nest(kind, options):
    _, tickets = chain(kind, options=options)
    for a, b in zip(tickets, tickets[1:]):
        for n in a.mask:
            assert not (b.mask[n] & ~a.mask[n]).any()


def test_random_reinit_draws_a_fresh_uniform_global_mask_every_iteration():
    """The paper's get_random_masks: the pruned count of the magnitude mask, chosen uniformly from all prunable
    weights each iteration, so masks do not nest; each weight is kept with probability keep**k."""
    K, n = 6, NET.spec.prunable_size
    _, tickets = chain("random-reinit", K=K)
    pairs = zip(tickets[1:], tickets[2:])  # (ticket 0 is dense: everything nests in it)
    nested = sum(all(not (b.mask[m] & ~a.mask[m]).any() for m in a.mask) for a, b in pairs)
    assert nested == 0  # an independent draw falls inside the last mask only with negligible probability
    # uniform: across 200 seeds each position is kept at iteration 3 about 200·0.512 times (binomial)
    counts = np.zeros(n)
    for seed in range(200):
        t = prune.next_ticket("random-reinit", NET, init=NET.init(0), mean=NET.init(0), std=None,
                              mask=Mask.dense(NET.spec), iteration=3, keep=0.8, seed=seed)
        assert t.mask.kept == prune.kept_after(n, 0.8, 3)
        counts += np.concatenate([t.mask[m].reshape(-1) for m in NET.spec.prunable_names])
    p = prune.kept_after(n, 0.8, 3) / n
    z = (counts - 200 * p) / np.sqrt(200 * p * (1 - p))
    assert abs(z.mean()) < 0.1 and 0.8 < z.std() < 1.2
    # the mask does not depend on the mask it replaces
    a = prune.next_ticket("random-reinit", NET, init=NET.init(0), mean=NET.init(0), std=None,
                          mask=tickets[2].mask, iteration=3, keep=0.8, seed=0)
    b = prune.next_ticket("random-reinit", NET, init=NET.init(0), mean=NET.init(0), std=None,
                          mask=Mask.dense(NET.spec), iteration=3, keep=0.8, seed=0)
    assert a.mask == b.mask


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
    for k in (1, 2, 3):
        assert perm[k].mask == mag[k].mask
        for n in perm[k].mask:
            kept = mag[k].mask[n]
            np.testing.assert_array_equal(np.sort(perm[k].init[n][kept]), np.sort(init[n][kept]))
        assert any(not np.array_equal(perm[k].init[n], init[n]) for n in perm[k].mask)


CNN_NET = CNN((2, 8, 8), channels=(3, 4), kernel=3)


@pytest.mark.parametrize("net", [NET, CNN_NET], ids=["mlp", "cnn"])
def test_permute_permute_moves_whole_slices_along_the_papers_axis_0(net):
    """final_permute-ticket_permute as published (get_permuted_permuted): the magnitude mask permuted along the
    kernel's axis 0 in flax's layout — dense (in, out): whole input rows, so each output unit keeps its fan-in;
    conv (K, K, C_in, C_out): the first spatial axis, esprune's axis 2 of (C_out, C_in, K, K) — and the magnitude
    survivors' init values dealt onto the new positions."""
    for seed in range(3):
        init, mag = chain("magnitude", K=2, seed=seed, net=net)
        _, both = chain("permute-permute", K=1, seed=seed, net=net)
        moved, kept = both[1].mask, mag[1].mask
        for n in net.spec.prunable_names:
            axis = 2 if kept[n].ndim == 4 else 0
            # the new mask holds the old one's axis-`axis` slices, reordered
            slices = lambda m: sorted(np.take(m, i, axis).tobytes() for i in range(m.shape[axis]))  # noqa: E731
            assert slices(moved[n]) == slices(kept[n])
            # so the counts along the other axes stay: fan-in per output unit (dense), per (out, in, column) (conv)
            np.testing.assert_array_equal(moved[n].sum(axis=axis), kept[n].sum(axis=axis))
            # the init values of the magnitude survivors, shuffled onto the new positions
            np.testing.assert_array_equal(np.sort(both[1].init[n][moved[n]]), np.sort(init[n][kept[n]]))
        assert moved != kept


def test_reinit_baselines_draw_a_fresh_init_and_random_masks_differ():
    init, rand = chain("random-reinit", K=2)
    _, mag = chain("magnitude", K=2)
    _, reinit = chain("mask-reinit", K=2)
    for t in (rand[1], reinit[1], rand[2]):
        assert not np.array_equal(t.init["dense_0/w"], init["dense_0/w"])
    assert not np.array_equal(rand[1].init["dense_0/w"], rand[2].init["dense_0/w"])  # fresh every iteration
    assert reinit[1].mask == mag[1].mask and not rand[1].mask == mag[1].mask
    _, again = chain("random-reinit", K=2)
    assert again[2].mask == rand[2].mask  # seeded: the same config gives the same ticket


def test_paper_names_and_unknown_method():
    assert prune.canonical("sig2noise") == "snr" and prune.canonical("final-ticket") == "magnitude"
    with pytest.raises(ConfigError, match="unknown pruning method"):
        prune.canonical("lamp")


def test_every_method_is_described_and_grasp_says_it_departs_from_the_published_code():
    import json

    from click.testing import CliRunner

    from cli import cli

    assert set(prune.METHODS) == set(prune.TICKETS)
    assert {paper for paper, _, _ in prune.METHODS.values()} >= set(prune.ALIASES)
    table = json.loads(CliRunner().invoke(cli, ["pruning", "--json"]).output)
    assert "wrong fraction" in table["grasp"]["published_code"] and "GraSP paper" in table["grasp"]["rule"]
    assert "rescore" in table["snip"]["published_code"] and "nested" in table["random-reinit"]["published_code"]
    help_text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "grasp is the GraSP paper's rule, not the published code's, which kept the wrong fraction" in help_text
