"""`make demo`: the demo grid sets snr, magnitude and random-reinit side by side on the demo preset, its 5-seed check
holds the same runs, and the Makefile target runs that grid afresh, draws one figure and says where it is."""
from pathlib import Path

from esprune import grids, sweep

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_grid_sets_the_three_ticket_makers_side_by_side(tmp_path):
    points = sweep.expand(grids.get("demo"), tmp_path, prepare=False)
    assert {p.config["prune"] for p in points} == {"snr", "magnitude", "random-reinit"}
    seeds = {p.config["seed"] for p in points}
    assert len(seeds) >= 2 and len(points) == 3 * len(seeds)  # a band over seeds for every ticket maker
    assert {p.config["task"] for p in points} == {"CartPole-v1"}
    # the README's robustness figures (5 seeds) hold the demo's own runs: same file names, same configs
    five = {p.name: p.config.to_dict() for p in sweep.expand(grids.get("demo-5seeds"), tmp_path, prepare=False)}
    assert len(five) == 15 and all(five[p.name] == p.config.to_dict() for p in points)


def _recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_demo_runs_the_demo_grid_afresh_and_says_where_the_figure_is():
    recipe = _recipe("demo")
    sweep_at = next(i for i, line in enumerate(recipe) if "sweep start --preset demo --dir runs/demo" in line)
    assert "rm -rf runs/demo" in recipe[:sweep_at]  # old run files of a changed grid would stop the sweep
    assert any("report runs/demo -o runs/demo.png" in line for line in recipe[sweep_at:])
    assert recipe[-1].startswith("@echo") and "runs/demo.png" in recipe[-1]
