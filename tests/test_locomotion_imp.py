"""The IMP loop with a task that has state of its own: the locomotion tasks' observation statistics are
checkpointed, resumed bit for bit and stored with each iteration's final and best solutions."""
import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the locomotion tests need the mujoco extra: pip install 'esprune[mujoco]'")
pytest.importorskip("gymnasium")

IMP_SMALL = {"task": "Hopper-v5", "task_options": {"episodes": 2, "test_episodes": 2, "max_steps": 15},
             "strategy": "sep_cma_es", "prune": "snr", "iterations": 1, "keep": 0.5, "generations": 6,
             "popsize": 8, "eval_every": 3, "checkpoint_every": 2, "seed": 2,
             "strategy_options": {"sigma_init": 0.1, "mean_decay": 1e-5}}


class Crash(Exception):
    pass


def test_imp_stores_and_resumes_the_observation_statistics(tmp_path):
    import h5py

    from esprune import config
    from esprune.imp import Experiment
    from esprune.store import RunFile

    cfg = config.resolve(IMP_SMALL)
    whole = tmp_path / "whole.h5"
    Experiment.start(cfg, whole).execute()

    def crash_at(k, generation, *_):
        if (k, generation) == (1, 5):  # after the checkpoint at generation 4 of iteration 1
            raise Crash

    path = tmp_path / "crashed.h5"
    exp = Experiment.start(cfg, path)
    with pytest.raises(Crash):
        exp.execute(progress=crash_at)
    exp.run.unlock()
    ck = RunFile.open(path).checkpoint()
    assert (ck["iteration"], ck["generation"]) == (1, 4) and ck["task_obs_steps"] > 0
    Experiment.resume(path).execute()
    for k in (0, 1):
        a, b = RunFile.open(path).iteration(k), RunFile.open(whole).iteration(k)
        for key in ("final_mean", "final_std", "best_mean", "train", "evals", "final_task_obs_mean",
                    "final_task_obs_var", "final_task_obs_steps", "best_task_obs_mean"):
            np.testing.assert_array_equal(a[key], b[key])
    with h5py.File(whole, "r") as f:
        g = f["iterations/000"]
        # 6 generations × 8 members × 2 episodes, each counting its length − 1 observations
        assert 0 < g["final_task_obs_steps"][()] <= 6 * 8 * 2 * 14
        assert g["final_task_obs_mean"].shape == (11,) and g["best_task_obs_var"].shape == (11,)


def test_analyses_evaluate_a_solution_with_its_stored_observation_statistics(tmp_path):
    from esprune import config
    from esprune.analysis import solutions
    from esprune.imp import Experiment
    from esprune.store import RunFile

    path = tmp_path / "run.h5"
    Experiment.start(config.resolve({**IMP_SMALL, "iterations": 0, "generations": 2}), path).execute()
    stored = RunFile.open(path).iteration(0)
    for which in ("final", "best"):
        state = solutions.load(path, 0, which).task.state_dict()
        assert state["obs_steps"] > 0  # not a fresh normaliser
        for key, value in state.items():
            np.testing.assert_array_equal(value, stored[f"{which}_task_{key}"])
