"""Effective sparsity (Vysogorets & Kempe 2023): the weights on some input→output path, against a brute-force
enumeration of every path, and against the networks themselves (with zero biases, the effective weights alone
compute exactly what the whole masked network computes; a disconnected network is constant in its input)."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esprune.effective import effective
from esprune.nets import CNN, MLP
from esprune.params import Layout, Mask


def random_mask(spec, rng, density):
    return Mask({n: rng.random(spec[n].shape) < density for n in spec.prunable_names}, spec)


# ---------------------------------------------------------------------------------------------- the reference
def path_weights(edges, sources, sinks):
    """Every weight on some source→sink path, by enumerating the paths one by one (depth first). ``edges``: a
    list of ``(from node, to node, weight id or None)``; a None edge is structure (a channel's flattened
    positions), not a weight."""
    out = {}
    for a, b, w in edges:
        out.setdefault(a, []).append((b, w))
    found = set()

    def walk(node, taken):
        if node in sinks:
            found.update(w for w in taken if w is not None)
        for nxt, w in out.get(node, ()):
            walk(nxt, taken + [w])
    for s in sources:
        walk(s, [])
    return found


def mlp_graph(net, mask):
    edges = [((k, i), (k + 1, j), (f"dense_{k}/w", (i, j)))
             for k in range(net.n_layers) for i, j in zip(*np.nonzero(mask[f"dense_{k}/w"]))]
    L = net.n_layers
    return edges, {(0, i) for i in range(net.sizes[0])}, {(L, j) for j in range(net.sizes[-1])}


def cnn_graph(net, mask):
    """The channel graph: a node per (block, channel), one edge per active tap; each channel of the last block
    fans out to its flattened positions (structure edges), then the dense layers by their active weights."""
    edges = []
    for k in range(len(net.channels)):
        m = mask[f"conv_{k}/w"]
        edges += [(("c", k, ci), ("c", k + 1, co), (f"conv_{k}/w", (co, ci, y, x)))
                  for co, ci, y, x in zip(*np.nonzero(m))]
    K, C = len(net.channels), net.channels[-1]
    per = net.flat_dim // C
    edges += [(("c", K, p // per), ("d", 0, p), None) for p in range(net.flat_dim)]
    for k in range(net.dense.n_layers):
        edges += [(("d", k, i), ("d", k + 1, j), (f"dense_{k}/w", (i, j)))
                  for i, j in zip(*np.nonzero(mask[f"dense_{k}/w"]))]
    sources = {("c", 0, c) for c in range(net.in_shape[0])}
    return edges, sources, {("d", net.dense.n_layers, j) for j in range(net.out_dim)}


def as_set(eff_mask):
    return {(n, tuple(int(i) for i in idx)) for n in eff_mask for idx in zip(*np.nonzero(eff_mask[n]))}


NETS = {"mlp": MLP(3, (4, 3), 2), "mlp1": MLP(2, (), 3), "cnn": CNN((2, 4, 4), (2, 3), 3, 2, (), 2),
        "cnn-hidden": CNN((1, 4, 4), (2,), 3, 2, (3,), 2)}


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), density=st.floats(0.0, 0.7), which=st.sampled_from(sorted(NETS)))
def test_effective_weights_are_those_on_some_input_output_path(seed, density, which):
    net = NETS[which]
    mask = random_mask(net.spec, np.random.default_rng(seed), density)
    graph = cnn_graph if isinstance(net, CNN) else mlp_graph
    expected = path_weights(*graph(net, mask))
    eff = effective(net.spec, mask)
    assert as_set(eff.mask) == expected
    assert eff.count == len(expected) and eff.disconnected == (not expected)
    assert eff.remaining == len(expected) / net.spec.prunable_size
    for name in net.spec.prunable_names:                                   # a subset of the mask, counted per layer
        assert not (eff.mask[name] & ~mask[name]).any()
        assert eff.layers[name] == (mask[name].size, int(mask[name].sum()), int(eff.mask[name].sum()))
    assert eff.empty == [n[:-2] for n in net.spec.prunable_names if not mask[n].any()]


@pytest.mark.parametrize("which", sorted(NETS))
@pytest.mark.parametrize("density", [0.15, 0.3, 0.6])
def test_with_zero_biases_the_effective_weights_alone_compute_the_same_outputs(which, density):
    """A unit no input reaches outputs act(0) = 0 when biases are 0 (tanh, relu, max-pool of 0), and a unit that
    reaches no output changes nothing: so zeroing every non-effective weight changes no output at any input."""
    net = NETS[which]
    rng = np.random.default_rng(7)
    for trial in range(5):
        mask = random_mask(net.spec, rng, density)
        eff = effective(net.spec, mask)
        params = {n: (rng.standard_normal(t.shape) if t.prunable else np.zeros(t.shape)) for n, t in
                  ((t.name, t) for t in net.spec)}
        dense = Layout(net.spec)
        shape = (5, *net.in_shape) if isinstance(net, CNN) else (5, net.sizes[0])
        x = rng.standard_normal(shape)
        outputs = []
        for m in (mask, eff.mask):
            theta = dense.flatten({n: (v * m[n] if n in m else v) for n, v in params.items()})
            outputs.append(net.forward_reference(dense, theta[None], x))
        np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


def test_an_empty_middle_layer_disconnects_the_ticket():
    """The demo's iteration 12 (CartPole 4→64→64→2): 62 weights left in the first layer, none after it."""
    net = MLP(4, (64, 64), 2)
    rng = np.random.default_rng(0)
    first = np.zeros((4, 64), bool)
    first.flat[rng.choice(256, 62, replace=False)] = True
    mask = Mask({"dense_0/w": first, "dense_1/w": np.zeros((64, 64), bool), "dense_2/w": np.zeros((64, 2), bool)},
                net.spec)
    eff = effective(net.spec, mask)
    assert eff.disconnected and eff.count == 0 and eff.remaining == 0.0 and eff.kept == 62
    assert eff.empty == ["dense_1", "dense_2"]
    assert eff.to_dict()["layers"]["dense_0"] == {"size": 256, "kept": 62, "effective": 0}
    params = net.init(0)                                                   # with its biases: constant in the input
    layout = Layout(net.spec, mask)
    out = net.forward_reference(layout, layout.flatten(params)[None], rng.standard_normal((16, 4)))
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))


def test_a_dead_end_units_weights_are_not_effective():
    """2→2→1: hidden unit 1 gets input but feeds no output, so its incoming weights are not effective; unit 0
    carries the one path."""
    net = MLP(2, (2,), 1)
    mask = Mask({"dense_0/w": np.array([[1, 1], [0, 1]], bool), "dense_1/w": np.array([[1], [0]], bool)}, net.spec)
    eff = effective(net.spec, mask)
    assert eff.mask["dense_0/w"].tolist() == [[True, False], [False, False]]
    assert eff.mask["dense_1/w"].tolist() == [[True], [False]]
    assert not eff.disconnected and eff.count == 2 and eff.empty == []
    # and a unit that no input reaches: its outgoing weight is not effective either
    mask = Mask({"dense_0/w": np.array([[1, 0], [0, 0]], bool), "dense_1/w": np.array([[1], [1]], bool)}, net.spec)
    assert effective(net.spec, mask).mask["dense_1/w"].tolist() == [[True], [False]]


def test_cnn_channels_a_dead_channel_and_the_flatten():
    """mnist-sized CNN: conv_0 channel 3 receives no tap, so conv_1's taps reading it and nothing else of it
    count; a conv_1 channel with no dense weight out of its flattened block is a dead end."""
    net = CNN((1, 28, 28), (8, 16), 5, 2, (), 10, "relu", "log_softmax")
    mask = {n: m.copy() for n, m in Mask.dense(net.spec).items()}
    mask["conv_0/w"][3] = False                                            # channel 3 of conv_0: no input
    mask["dense_0/w"][5 * 49:6 * 49] = False                               # channel 5 of conv_1: feeds nothing
    eff = effective(net.spec, Mask(mask, net.spec))
    assert eff.mask["conv_0/w"].sum() == 7 * 25
    assert not eff.mask["conv_1/w"][:, 3].any() and not eff.mask["conv_1/w"][5].any()
    assert eff.mask["conv_1/w"].sum() == 15 * 7 * 25
    assert eff.mask["dense_0/w"].sum() == 15 * 49 * 10
    assert eff.layers["conv_1/w"] == (16 * 8 * 25, 16 * 8 * 25, 15 * 7 * 25)


def test_a_network_that_is_not_a_chain_of_layers_is_refused():
    from esprune.params import ParamSpec

    with pytest.raises(ValueError, match="does not follow"):
        effective(ParamSpec([("dense_0/w", (3, 4), True), ("dense_1/w", (5, 2), True)]),
                  {"dense_0/w": np.ones((3, 4), bool), "dense_1/w": np.ones((5, 2), bool)})


# ---------------------------------------------------------------------------------------------- runs, show, report
TINY = {"task": "CartPole-v1", "task_options": {"episodes": 1}, "strategy": "snes", "prune": "magnitude",
        "strategy_options": {"sigma_init": 0.07}, "iterations": 3, "keep": 0.05, "generations": 3, "popsize": 4,
        "eval_every": 3, "seed": 3}  # keep 0.05: iteration 2 keeps 11 weights, all in the first layer (largest init)


def invoke(*args):
    from click.testing import CliRunner

    from cli import cli
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def disconnected_run(tmp_path_factory):
    """A tiny CartPole run through `esprune run`, whose tickets 2 and 3 are disconnected."""
    from esprune.report import config_toml

    folder = tmp_path_factory.mktemp("effective")
    (folder / "tiny.toml").write_text(config_toml(TINY))
    result = invoke("run", folder / "tiny.toml", "--out", folder / "run.h5", "--quiet")
    assert result.exit_code == 0, result.output
    return folder / "run.h5", result


def reference_rows(path):
    """What each finished iteration's ticket should report, from its stored mask (the function is tested above)."""
    from esprune.store import RunFile

    run = RunFile.open(path)
    return [effective(run.spec, run.ticket(row["iteration"]).mask) for row in run.summary()]


def test_a_run_warns_once_on_stderr_when_its_ticket_becomes_disconnected(disconnected_run):
    path, result = disconnected_run
    refs = reference_rows(path)
    assert [r.disconnected for r in refs] == [False, False, True, True]      # the setting does what it says
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: iteration 2: the ticket is disconnected (dense_1, dense_2 empty): no input "
                        "reaches an output, so the network computes a constant whatever its weights (its score "
                        "is that of a constant policy or prediction)"]
    assert "warning" not in result.stdout


def test_the_run_file_carries_effective_sparsity_per_iteration(disconnected_run):
    import h5py

    from esprune.store import RunFile

    path, _ = disconnected_run
    rows, refs = RunFile.open(path).summary(), reference_rows(path)
    with h5py.File(path, "r") as f:                                         # stored with each ticket
        assert all("effective" in g.attrs for g in f["iterations"].values())
    for row, ref in zip(rows, refs):
        assert row["effective"] == 100 * ref.remaining and row["effective_weights"] == ref.count
        assert row["disconnected"] == ref.disconnected and row["empty_layers"] == ref.empty
        assert row["layers"] == ref.to_dict()["layers"]
    assert rows[2]["empty_layers"] == ["dense_1", "dense_2"] and rows[2]["effective"] == 0.0


def test_a_file_written_before_effective_sparsity_existed_shows_it_from_its_masks(disconnected_run, tmp_path):
    import shutil

    import h5py

    from esprune.store import RunFile

    path, _ = disconnected_run
    old = tmp_path / "old.h5"
    shutil.copy(path, old)
    with h5py.File(old, "r+") as f:                                         # what earlier esprune versions wrote
        for g in f["iterations"].values():
            del g.attrs["effective"]
    assert json.dumps(RunFile.open(old).summary()) == json.dumps(RunFile.open(path).summary())  # NaN threshold
    shown = invoke("show", old)
    assert shown.exit_code == 0 and shown.stdout.replace(str(old), "") == invoke("show", path).stdout.replace(
        str(path), "")
    assert json.loads(invoke("show", old, "--json").stdout)[3]["disconnected"] is True


def test_show_has_an_effective_column_and_names_the_disconnected_iterations(disconnected_run):
    path, _ = disconnected_run
    refs = reference_rows(path)
    lines = invoke("show", path).stdout.splitlines()
    header = lines[1].split()
    assert header[:4] == ["iter", "sparsity", "weights", "effective"]
    cells = [line.split()[header.index("effective")] for line in lines[2:6]]
    assert cells == [f"{100 * r.remaining:.3g}%" for r in refs] and cells[2:] == ["0%", "0%"]
    assert lines[6] == ("iterations 2–3: disconnected (dense_1, dense_2 empty): no input reaches an output, the "
                        "network computes a constant")
    rows = json.loads(invoke("show", path, "--json").stdout)
    assert [r["effective_weights"] for r in rows] == [r.count for r in refs]
    assert [r["empty_layers"] for r in rows] == [r.empty for r in refs]


def test_notes_group_consecutive_iterations_alike():
    from esprune.report import notes

    rows = [{"iteration": k, "disconnected": d, "empty_layers": e} for k, d, e in
            [(0, False, []), (1, True, []), (2, True, ["dense_2"]), (3, True, ["dense_2"]), (4, True, ["dense_1"])]]
    assert [line.split(":")[0] for line in notes(rows)] == ["iteration 1", "iterations 2–3", "iteration 4"]
    assert "no layer empty" in notes(rows)[0] and "(dense_2 empty)" in notes(rows)[1]


def ticket_run(path, seed, masks):
    """A run file whose iteration k has ticket mask ``masks[k]`` and test score 100 − k (no training)."""
    from esprune import config, tasks
    from esprune.prune import Ticket
    from esprune.store import RunFile

    cfg = config.resolve({"task": "CartPole-v1", "prune": "snr", "seed": seed, "iterations": len(masks) - 1},
                         prepare=False)
    net = tasks.make("CartPole-v1").default_net()
    init = net.init(seed)
    run = RunFile.create(path, cfg.to_dict(), net.spec, Ticket(init, masks[0]))
    for k, mask in enumerate(masks):
        row = {"iteration": k, "sparsity": mask.sparsity(), "weights": 0, "final": 100.0 - k, "best": 100.0 - k,
               "test": 100.0 - k, "threshold": np.nan, "seconds": 1.0}
        nxt = Ticket(init, masks[k + 1]) if k + 1 < len(masks) else None
        run.finish_iteration(k, {}, {}, row, next_ticket=nxt)
    run.unlock()
    return path


def test_report_carries_effective_remaining_and_disconnected_seeds(tmp_path):
    import csv

    from esprune import report_grid, tasks

    spec = tasks.make("CartPole-v1").default_net().spec
    rng = np.random.default_rng(1)
    half = random_mask(spec, rng, 0.5)
    cut = Mask({n: (m if n == "dense_0/w" else np.zeros_like(m)) for n, m in half.items()}, spec)
    masks = {0: [Mask.dense(spec), half, cut], 1: [Mask.dense(spec), half, half]}
    paths = [ticket_run(tmp_path / f"s{s}.h5", s, m) for s, m in masks.items()]
    result = report_grid.report(paths, tmp_path / "fig.png")
    (curve,) = result["curves"]
    remaining = [[100 * effective(spec, m).remaining for m in masks[s]] for s in masks]
    np.testing.assert_allclose(curve["effective_remaining"], np.mean(remaining, axis=0))
    assert curve["disconnected_seeds"] == [0, 0, 1]
    stored = json.loads((tmp_path / "fig.json").read_text())["curves"][0]
    assert stored["disconnected_seeds"] == [0, 0, 1]
    with open(tmp_path / "fig.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [float(r["effective_remaining"]) for r in table] == curve["effective_remaining"]
    assert [int(r["disconnected_seeds"]) for r in table] == [0, 0, 1]


def test_the_figure_marks_effective_remaining_and_disconnected_tickets():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from esprune.report_grid import _effective_marks

    fig, ax = plt.subplots()
    x, mean = np.array([100.0, 50.0, 25.0]), np.array([500.0, 400.0, 9.0])
    drawn = _effective_marks(ax, {"effective_remaining": [100.0, 20.0, 0.0], "disconnected_seeds": [0, 0, 2]},
                             x, mean, "C0")
    assert drawn == ["effective", "disconnected"]
    dotted, crosses = ax.lines
    assert dotted.get_linestyle() == ":" and dotted.get_xdata().tolist() == [100.0, 20.0]   # 0 is not on a log axis
    assert crosses.get_marker() == "x" and crosses.get_xdata().tolist() == [25.0]
    ax.clear()
    assert _effective_marks(ax, {"effective_remaining": [100.0, 50.0], "disconnected_seeds": [0, 0]},
                            x[:2], mean[:2], "C0") == [] and not ax.lines       # nothing to mark: nothing drawn
    plt.close(fig)


def test_a_sweep_point_warns_on_stderr_too(tmp_path, capsys):
    from esprune import sweep

    grid = {"base": {k: v for k, v in TINY.items() if k != "seed"}, "axes": {"seed": [3]}}
    points = sweep.expand(grid, tmp_path, prepare=False)
    assert sweep.run(points) == {"seed=3": "finished"}
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == ["seed=3: warning: iteration 2: the ticket is disconnected (dense_1, dense_2 empty): no input "
                     "reaches an output, so the network computes a constant whatever its weights (its score is "
                     "that of a constant policy or prediction)"]
