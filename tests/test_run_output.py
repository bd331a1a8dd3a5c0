"""What `esprune run` says while it runs: in a terminal a progress bar; sent to a file or pipe, a line every
tenth of an iteration (generation, best test score so far, sparsity, elapsed) and each iteration's summary row as
soon as it is committed. Checked against the run file the same run wrote."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli as cli_module
from cli import cli
from esprune.store import RunFile

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--task", "CartPole-v1", "--iterations", "1", "--keep", "0.5", "--generations", "20", "--popsize", "4",
         "--seed", "2"]
GEN = re.compile(r"^iter (\d+) of 0\.\.1 · gen (\d+)/20 · best test ([-\d.]+) · sparsity ([\d.]+) · "
                 r"elapsed \d+:\d\d:\d\d(?: · ETA \d+:\d\d:\d\d)?$")
DONE = re.compile(r"^iter (\d+) of 0\.\.1 done · sparsity ([\d.]+) · weights (\d+) · effective ([\d.e+-]+)% · "
                  r"final ([-\d.]+) · best ([-\d.]+) · test ([-\d.]+) · threshold (\S+) · ([\d.]+) s$")


def run(tmp_path, *extra):
    toml = tmp_path / "c.toml"
    toml.write_text("eval_every = 3\n[task_options]\nepisodes = 1\n")
    path = tmp_path / "r.h5"
    result = CliRunner().invoke(cli, ["run", str(toml), *FLAGS, "--out", str(path), *extra])
    assert result.exit_code == 0, result.output
    return result, path


def test_a_run_sent_to_a_file_logs_generations_and_each_iterations_row(tmp_path):
    result, path = run(tmp_path)                                         # CliRunner's stderr is not a terminal
    lines = result.stderr.splitlines()
    lines = [x for x in lines if not x.startswith("compiling kernels")]  # said when this process compiles
    kinds = ["gen" if GEN.match(x) else "done" if DONE.match(x) else "other" for x in lines]
    assert kinds == ["other"] + (["gen"] * 10 + ["done"]) * 2 + ["other"]  # header, 2 iterations, "run file:"
    assert "iterations 0..1 (dense + 1 pruning: 2 trained tickets)" in lines[0]
    assert all(" · ETA " in x for x in lines if GEN.match(x))      # from the second generation on
    run_file = RunFile.open(path)
    for k, (_, _, evals) in enumerate(run_file.curves()):
        logged = [GEN.match(x).groups() for x in lines if GEN.match(x) and GEN.match(x)[1] == str(k)]
        assert [int(g) for _, g, _, _ in logged] == list(range(2, 21, 2))   # every tenth of the iteration
        for _, g, best, sparsity in logged:                              # best test so far: the running max
            so_far = [score for gen, score in evals if gen <= int(g)]
            assert float(best) == pytest.approx(max(so_far), abs=0.005)
            assert float(sparsity) == pytest.approx(0.5 * k, abs=1e-4)
    done = [DONE.match(x).groups() for x in lines if DONE.match(x)]
    for row, (k, sparsity, weights, effective, final, best, test, threshold, seconds) in zip(run_file.summary(),
                                                                                               done):
        assert (int(k), int(weights)) == (row["iteration"], row["weights"])
        assert float(effective) == pytest.approx(row["effective"], rel=5e-3)
        for shown, key in ((sparsity, "sparsity"), (final, "final"), (best, "best"), (test, "test")):
            assert float(shown) == pytest.approx(row[key], abs=0.005)
        assert threshold == "—" if row["iteration"] == 0 else float(threshold) == pytest.approx(row["threshold"],
                                                                                                  rel=1e-3)
    assert result.stdout.splitlines()[0].split()[:3] == ["iter", "sparsity", "weights"]  # the table, as before


def test_a_terminal_keeps_its_bar_and_quiet_stays_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "_interactive", lambda stream: True)
    result, _ = run(tmp_path)
    assert not any(GEN.match(x) or DONE.match(x) for x in result.stderr.splitlines())
    assert "IMP" in result.stderr                                        # the bar's label
    monkeypatch.undo()
    result, _ = run(tmp_path, "--overwrite", "--quiet")
    assert not any(GEN.match(x) or DONE.match(x) for x in result.stderr.splitlines())
    assert "IMP" not in result.stderr


@pytest.mark.slow  # a process of its own: compiles the kernels again
def test_each_row_reaches_the_log_when_its_iteration_ends_not_when_the_run_does(tmp_path):
    """A run killed (SIGKILL: no exit handlers, no buffers flushed) in iteration 1 has already logged iteration
    0's row and iteration 1's first lines."""
    toml = tmp_path / "c.toml"
    toml.write_text("eval_every = 3\n[task_options]\nepisodes = 1\n")
    log = tmp_path / "run.log"
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", "run", str(toml), *FLAGS,
                               "--out", str(tmp_path / "r.h5")], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                              env={**os.environ, "ESPRUNE_KILL_AT": "1:5"}, timeout=300)
    assert proc.returncode == -9
    lines = log.read_text().splitlines()
    assert [x.split(" · ")[0] for x in lines if DONE.match(x)] == ["iter 0 of 0..1 done"]
    assert [GEN.match(x).group(2) for x in lines if GEN.match(x) and x.startswith("iter 1 of")] == ["2", "4"]
    assert not any(x.split()[:2] == ["iter", "sparsity"] for x in lines)   # the final table never came
