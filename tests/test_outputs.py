"""The files the analyses and the report write: an output that cannot be written is refused in one line before
the work starts (and a write that fails anyway ends in one line too), connect's flags and log lines, its colour
bar, and the name columns of the preset lists. Found by trying esprune as a new user would; every run is tiny."""
import errno
import os
import sys

import numpy as np
import pytest

from esprune import config, grids, presets, report_grid
from esprune.analysis import connectivity, flatness, output, snr
from esprune.imp import Experiment
from esprune.outputs import OutputError, check_writable

from test_run_safety import TINY, invoke, one_line_error


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs, seeds 0 and 1, iterations 0 and 1 each."""
    d = tmp_path_factory.mktemp("runs")
    paths = [d / "a.h5", d / "b.h5"]
    for seed, path in enumerate(paths):
        Experiment.start(config.resolve({**TINY, "seed": seed}), path).execute()
    return paths


def _never(*args, **kwargs):
    raise AssertionError("the work ran although its output cannot be written")


def _unwritable(tmp_path):
    """Output places that cannot be written: under a file, and (Linux) in /proc, where even root, whom every
    permission test lets through, cannot create a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    places = [blocker / "x"]
    if sys.platform.startswith("linux") and os.path.isdir("/proc"):
        places.append("/proc/esprune-x")
    return places


@pytest.mark.parametrize("command", ["connect", "consecutive", "snr", "flatness", "report"])
def test_an_unwritable_output_is_refused_in_one_line_before_the_work(runs, tmp_path, monkeypatch, command):
    a, b = runs
    monkeypatch.setattr(connectivity, "connect", _never)
    monkeypatch.setattr(snr, "iteration", _never)
    monkeypatch.setattr(flatness, "analyze", _never)
    monkeypatch.setattr(report_grid, "curves", _never)
    for place in _unwritable(tmp_path):
        args = {"connect": ("connect", a, b, "--iteration", 1, "--out", place),
                "consecutive": ("connect", a, "--consecutive", "--out", place),
                "snr": ("snr", a, "--out", place),
                "flatness": ("flatness", a, "--out", place),
                "report": ("report", a, "-o", f"{place}.png")}[command]
        one_line_error(invoke(*args), str(place))


def test_a_write_that_fails_at_the_end_is_one_line(runs, tmp_path, monkeypatch):
    a, b = runs

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "full"))
    monkeypatch.setattr(output, "write_json", disk_full)
    one_line_error(invoke("connect", a, b, "--iteration", 0, "--points", 3, "--out", tmp_path / "c"),
                   "No space left on device")
    monkeypatch.setattr(report_grid, "write_tables", disk_full)
    one_line_error(invoke("report", a, b, "-o", tmp_path / "r.png"), "No space left on device")


def test_the_check_tries_the_file_and_leaves_what_is_there(tmp_path):
    old = tmp_path / "old.json"
    old.write_text("kept")
    assert check_writable(old) == old and old.read_text() == "kept"
    new = tmp_path / "new.json"
    assert check_writable(new) == new and not new.exists()  # created to try it, removed again
    made = tmp_path / "made" / "deeper" / "x.json"
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(made)
    assert check_writable(made, make_dirs=True) == made and made.parent.is_dir() and not made.exists()
    with pytest.raises(OutputError, match="not a directory"):
        check_writable(old / "x.json", make_dirs=True)


def test_connect_refuses_iteration_with_consecutive(runs):
    one_line_error(invoke("connect", runs[0], "--consecutive", "--iteration", 1), "--consecutive")


def test_connect_off_a_terminal_logs_each_pair_and_no_bare_label(runs, tmp_path, monkeypatch):
    a, b = runs
    result = invoke("connect", a, b, "--points", 3, "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "connect" not in lines
    assert [line for line in lines if line.startswith("connect ")] == [
        f"connect 1/2: {a}@0 ↔ {b}@0 done", f"connect 2/2: {a}@1 ↔ {b}@1 done"]

    def fails(*args, **kwargs):
        raise connectivity.UserError("the networks differ")
    monkeypatch.setattr(connectivity, "connect", fails)
    result = invoke("connect", a, b, "--points", 3, "--out", tmp_path / "d")
    one_line_error(result, "the networks differ")
    assert len(result.stderr.strip().splitlines()) == 1  # the error alone, no "connect" line before it


@pytest.mark.parametrize("n", [7, 8, 9, 15, 21, 40])
def test_each_colour_bar_tick_names_the_pair_whose_colour_it_sits_on(n):
    plt = output.pyplot()
    if plt is None:
        pytest.skip("needs the plot extra")
    cmap = plt.get_cmap("viridis")
    colours, bar_cmap, norm, ticks = connectivity.colour_key(n, cmap)
    for i in range(n):  # the lines' colours: pair i at i / (n − 1) along the map
        np.testing.assert_array_equal(colours[i], cmap(i / (n - 1)))
    assert ticks[0] == 0 and ticks[-1] == n - 1 and len(ticks) <= 8 and np.all(np.diff(ticks) > 0)
    assert np.ptp(np.diff(ticks)) <= 1  # evenly spread
    for k in range(n):  # band k is [k − ½, k + ½) in pair k's colour, so a tick at k sits in its middle
        for at in (k - 0.49, k, k + 0.49):
            np.testing.assert_array_equal(bar_cmap(norm(at)), colours[k])


def test_the_figure_labels_its_colour_bar_with_the_pairs_at_its_ticks(tmp_path):
    plt = output.pyplot()
    if plt is None:
        pytest.skip("needs the plot extra")
    from matplotlib.collections import QuadMesh

    n = 8
    results = [{"a": "a.h5@k", "b": "a.h5@k+1", "trainer_a": "snes", "trainer_b": "snes", "iteration_a": k,
                "iteration_b": k + 1, "sparsity_a": 1 - 0.8 ** k, "sparsity_b": 1 - 0.8 ** (k + 1),
                "alpha": np.linspace(0, 1, 3), "score": np.full(3, float(k)), "loss": np.full(3, -float(k))}
               for k in range(n)]
    kept = []

    class Kept:  # pyplot, but the figure stays open to be read
        def __getattr__(self, name):
            return getattr(plt, name)

        def close(self, fig):
            kept.append(fig)
    connectivity.figure(results, tmp_path / "c.png", Kept())
    fig = kept[0]
    ax_s, bar = fig.axes[0], fig.axes[-1]
    line_colour = {f"{r['iteration_a']}↔{r['iteration_b']}": line.get_color() for r, line in zip(results, ax_s.lines)}
    (solids,) = [c for c in bar.collections if isinstance(c, QuadMesh)]  # the bands, drawn with the bar's map
    ticks, labels = bar.get_yticks(), [t.get_text() for t in bar.get_yticklabels()]
    assert len(ticks) == len(labels) == n
    for position, label in zip(ticks, labels):
        pair = label.split(":")[0]
        np.testing.assert_array_equal(solids.cmap(solids.norm(position)), line_colour[pair])
    plt.close(fig)


@pytest.mark.parametrize("command, names", [(("presets",), presets.PRESETS), (("sweep", "presets"), grids.GRIDS)])
def test_preset_lists_fit_their_longest_name_in_the_name_column(command, names):
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    width = max(map(len, names))
    listed = 0
    for line in result.stdout.splitlines():
        name = line.split(" ", 1)[0]
        if name in names:  # the name padded to the longest one's width, a space, then the text
            assert line[len(name):width + 1].strip() == "" and line[width + 1] != " ", line
            listed += 1
    assert listed == len(names)

def test_resuming_a_transfer_run_says_whose_tickets_it_trains(runs, tmp_path):
    source, moved = runs[0], tmp_path / "t.h5"
    assert invoke("transfer", source, "--iterations", 0, "--out", moved, "--quiet").exit_code == 0
    result = invoke("resume", moved, "--iterations", 1, "--quiet")
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first == f"esprune resume: {moved} · tickets 0..1 of {source} (2 trained tickets, no pruning)", first


def test_an_analysis_out_named_like_its_json_is_taken_as_the_prefix(runs, tmp_path):
    """`--out res.json` writes res.json (and res.png), not res.json.json."""
    result = invoke("snr", runs[0], "--out", tmp_path / "res.json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "res.json").is_file() and not (tmp_path / "res.json.json").exists()
