"""The command line: help, version, info, bench, and one-line errors with exit status 2."""
import json

import pytest
from click.testing import CliRunner

import esprune
from cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_commands():
    result = run("--help")
    assert result.exit_code == 0 and "info" in result.output and "bench" in result.output


def test_version():
    assert run("--version").output.strip() == f"esprune, version {esprune.__version__}"


def test_info_json_reports_backends():
    facts = json.loads(run("info", "--json").output)
    assert facts["backends"]["numpy"]["usable"] and facts["backends"]["numba"]["usable"]
    assert facts["auto"] in ("numba", "cupy")


def test_bench_forward_json(tmp_path):
    out = tmp_path / "bench.json"
    result = run("bench", "forward", "--backend", "numba", "--density", "0.05", "--repeats", "1",
                 "--workload", "mlp-control", "--workload", "mlp-wide", "--json", "--out", str(out))
    assert result.exit_code == 0
    data = json.loads(out.read_text())
    assert data["peak"]["numba"]["gflops"] > 0
    rows = data["rows"]
    assert {(r["workload"].split()[0], r["path"]) for r in rows} == {
        ("mlp-control", "dense"), ("mlp-control", "sparse"), ("mlp-wide", "dense"), ("mlp-wide", "sparse")}
    assert all(r["density"] == 0.05 and r["median_s"] > 0 and "speedup_vs_dense" in r
               for r in rows if r["path"] == "sparse")


def test_usage_error_is_one_line_exit_2():
    result = CliRunner().invoke(cli, ["bench", "forward", "--density", "2"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_missing_gpu_backend_is_exit_2():
    from esprune import backend

    if backend.probe()["cupy"][0]:
        return
    result = CliRunner().invoke(cli, ["bench", "forward", "--backend", "cupy"])
    assert result.exit_code == 2 and "not usable here" in result.output and "Traceback" not in result.output


def test_strategies_lists_all_five_with_defaults():
    table = json.loads(run("strategies", "--json").output)
    assert set(table) == {"open_es", "pgpe", "snes", "sep_cma_es", "des"}
    assert table["snes"]["hyperparameters"]["temperature"] == 12.0 and table["sep_cma_es"]["alias"] == "Sep_CMA_ES"
    assert "elite_ratio=0.5" in run("strategies").output


def test_tasks_and_bench_tasks(tmp_path):
    listed = json.loads(run("tasks", "--json").output)
    assert "CartPole-v1" in listed and all("test_episodes" in t for t in listed.values() if t["horizon"])
    table = run("tasks")
    lines = table.output.splitlines()                                      # per task a line and its options
    assert table.exit_code == 0 and len(lines) == 2 * len(listed)
    assert [x.startswith("    options: ") for x in lines] == [False, True] * len(listed)
    out = tmp_path / "t.json"
    assert run("bench", "tasks", "--repeats", "1", "--out", str(out)).exit_code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["path"] for r in rows] == ["reference", "fused"] and rows[0]["steps"] == rows[1]["steps"] > 0


def test_bench_generation_and_imp_json(tmp_path):
    out = tmp_path / "g.json"
    assert run("bench", "generation", "--workload", "W1", "--repeats", "1", "--threads", "1",
               "--out", str(out)).exit_code == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["density"] for r in rows] == [1.0, 0.8**10] and all(r["env_steps"] > 0 for r in rows)
    assert "speedup_vs_dense" in rows[1] and rows[0]["dim"] > rows[1]["dim"]
    assert result["machine"]["threads"] == 1 and all(r["steps_per_s"] > 0 and r["gflops"] > 0 for r in rows)
    out = tmp_path / "i.json"
    assert run("bench", "imp", "--out", str(out)).exit_code == 0
    row = json.loads(out.read_text())["rows"][0]
    assert len(row["iteration_seconds"]) == 3 and row["seconds_per_generation"] > 0


def test_bench_full_length_row_runs_every_episode_to_the_end(tmp_path):
    out = tmp_path / "f.json"
    assert run("bench", "generation", "--workload", "W1-full", "--density", "1.0", "--repeats", "1",
               "--out", str(out)).exit_code == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["env_steps_min"] == row["env_steps_max"] == 100 * 8 * 500


def test_bench_compare_prints_ratios_and_both_machines(tmp_path):
    from esprune.bench import compare

    old = {"machine": {"threads": 2, "numba": "0.1"}, "peak": {}, "rows": [
        {"suite": "tasks", "workload": "w", "backend": "numba", "path": "fused", "median_s": 2.0},
        {"suite": "tasks", "workload": "gone", "backend": "numba", "path": "fused", "median_s": 1.0}]}
    new = {"machine": {"threads": 1, "numba": "0.2"}, "peak": {}, "rows": [
        {"suite": "tasks", "workload": "w", "backend": "numba", "path": "fused", "median_s": 0.5}]}
    result = compare.compare(new, old)
    assert [r["ratio"] for r in result["rows"]] == [4.0]
    assert result["machines"]["old"]["threads"] == 2 and result["machines"]["new"]["numba"] == "0.2"
    text = compare.render(result)
    assert "4.00" in text and "threads 1" in text and "threads 2" in text
    old_file = tmp_path / "old.json"
    old["rows"][0]["workload"] = "CartPole-v1 4-64-64-2 P=100 E=8"  # the tasks suite's fused row
    old_file.write_text(json.dumps({"tasks": old}))  # a bench all file
    result = run("bench", "tasks", "--repeats", "1", "--compare", str(old_file), "--json")
    rows = json.loads(result.stdout)["compare"]["rows"]
    assert result.exit_code == 0 and [(r["path"], r["old_s"]) for r in rows] == [("fused", 2.0)]


def test_bench_threads_and_compare_file_mistakes_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for args in (["--threads", "999"], ["--compare", str(bad)]):
        result = CliRunner().invoke(cli, ["bench", "tasks", "--repeats", "1", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output

    for args in (["bench", "generation", "--workload", "W1", "--density", "nan"],  # NaN passed FloatRange
                 ["bench", "forward", "--density", "nan"],
                 ["bench", "generation", "--workload", "W1", "--physics", "warp"]):  # W1 would ignore it
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output


def test_bench_compare_with_its_own_out_file_compares_with_what_it_held(tmp_path):
    """--compare F --out F used to write F first and then compare the run with itself (every ratio 1.00)."""
    same = tmp_path / "same.json"
    old = {"machine": {}, "peak": {}, "rows": [
        {"suite": "tasks", "workload": "CartPole-v1 4-64-64-2 P=100 E=8", "backend": "numba", "path": "fused",
         "median_s": 123.0}]}
    same.write_text(json.dumps(old))
    result = run("bench", "tasks", "--repeats", "1", "--compare", str(same), "--out", str(same), "--json")
    rows = json.loads(result.stdout)["compare"]["rows"]
    assert result.exit_code == 0 and [r["old_s"] for r in rows] == [123.0]
    assert json.loads(same.read_text())["rows"][0]["median_s"] != 123.0  # and --out holds the new run


def test_paper_size_estimate_is_the_sum_over_iterations():
    from esprune.bench.generation import _paper_estimate

    rows = [{"backend": "numba", "workload": "W2 cnn", "density": d, "median_s": 1.0 + 5.0 * d} for d in (1.0, 0.8**10)]
    expected = sum(4000 * (1.0 + 5.0 * 0.8**k) for k in range(21)) / 3600
    assert _paper_estimate(rows)["numba"]["hours"] == pytest.approx(expected)


def test_esprunes_own_warnings_print_as_one_line(capsys, monkeypatch):
    """A PhysicsNotice printed as Python's "file:line: PhysicsNotice: ..." plus the source line (two lines)."""
    import warnings

    import cli as cli_module
    from esprune.tasks import locomotion

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    cli_module._one_line_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit("Humanoid-v5: the cupy backend steps C MuJoCo", locomotion.PhysicsNotice,
                               locomotion.__file__, 176)
    assert capsys.readouterr().err == "warning: Humanoid-v5: the cupy backend steps C MuJoCo\n"
