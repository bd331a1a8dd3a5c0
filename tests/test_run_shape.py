"""Issue 15's shape: params owns the full-vector mappings, store the run file, config the typed config, the CLI's
arithmetic sits in the library, test hooks in esprune.testing, one Adam, and gd/ without an import circle."""
import ast
from pathlib import Path

import numpy as np

from esprune import config, imp, optim
from esprune.params import Mask, ParamSpec

ROOT = Path(__file__).resolve().parents[1]


def test_full_vectors_and_masks_round_trip_through_params(rng):
    spec = ParamSpec([("dense_0/w", (3, 4), True), ("dense_0/b", (4,), False), ("dense_1/w", (4, 2), True)])
    tensors = {t.name: rng.standard_normal(t.shape) for t in spec}
    vector = spec.to_vector(tensors)
    assert vector.shape == (spec.size,) and vector[:12].tolist() == tensors["dense_0/w"].reshape(-1).tolist()
    assert all(np.array_equal(spec.from_vector(vector)[n], tensors[n]) for n in spec.names)
    mask = Mask({n: rng.random(spec[n].shape) > 0.5 for n in spec.prunable_names}, spec)
    flat = mask.to_vector()
    assert flat[12:16].all() and Mask.from_vector(spec, flat) == mask


def test_the_library_owns_the_cli_arithmetic():
    cfg = config.resolve({"task": "CartPole-v1", "seed": 4, "trainer": "gd", "prune": "magnitude"}, prepare=False)
    assert config.default_path(cfg) == "runs/CartPole-v1-magnitude-gd-s4.h5"
    assert config.default_path(cfg, "demo") == "runs/demo-magnitude-gd-s4.h5"
    assert hasattr(imp.Experiment, "progress_start")


def test_one_adam_and_no_test_hook_or_import_circle_in_the_library():
    from esprune.gd.optim import Adam

    rng = np.random.default_rng(0)
    theta, grads = rng.standard_normal(7), rng.standard_normal((3, 7))
    adam, m, v, want = Adam(7, lr=1e-2), np.zeros(7), np.zeros(7), theta.copy()
    for t, g in enumerate(grads, 1):
        theta = adam.step(theta, g)
        step, m, v = optim.adam_step(g, m, v, t, 1e-2, 0.9, 0.999, 1e-8)
        want = want + step
    np.testing.assert_array_equal(theta, want)
    imported = {node.module for node in ast.walk(ast.parse((ROOT / "esprune/gd/trainer.py").read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert not imported & {"ppo", "supervised", ".ppo", ".supervised"}  # trainers import trainer.py, not back
    assert "os.kill" not in (ROOT / "esprune/imp.py").read_text()     # the kill hook is esprune.testing's
