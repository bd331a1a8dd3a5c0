"""PPO's policy option: the paper's PPO policy (swish, LeCun-uniform kernels, zero biases, sampled actions at
test time) beside esprune's default (the ES policy, scored deterministically)."""
import numpy as np
import pytest
from scipy import stats

from esprune import config, tasks
from esprune.errors import ConfigError
from esprune.gd import network
from esprune.gd.ppo import PPO, _actor_backward, _actor_forward, _Agent, stochastic_score
from esprune.imp import Experiment
from esprune.params import Layout, Mask
from esprune.store import RunFile, from_vector


def test_the_papers_policy_is_swish_with_lecun_uniform_kernels_and_zero_biases():
    task = tasks.make("CartPole-v1")
    assert repr(PPO().network(task)) == repr(task.default_net())
    net = PPO(policy="paper").network(task)
    assert net.activation == "swish" and net.sizes == task.default_net().sizes
    params = net.init(3)
    for k, (n_in, n_out) in enumerate(zip(net.sizes, net.sizes[1:])):
        assert not params[f"dense_{k}/b"].any()
        w = params[f"dense_{k}/w"].reshape(-1).astype(np.float64)
        limit = np.sqrt(3 / n_in)  # jax.nn.initializers.lecun_uniform: variance 1/fan_in
        assert np.abs(w).max() <= limit
        if w.size >= 256:
            assert stats.kstest(w, stats.uniform(-limit, 2 * limit).cdf).pvalue > 1e-3
    with pytest.raises(ConfigError, match="policy"):
        PPO(policy="brax")


def test_swish_actor_pass_matches_the_reference_forward_and_finite_differences():
    task = tasks.make("Acrobot-v1")
    net = PPO(policy="paper").network(task)
    rng = np.random.default_rng(0)
    mask = Mask({n: rng.random(net.spec[n].shape) < 0.6 for n in net.spec.prunable_names}, net.spec)
    layout = Layout(net.spec, mask)
    theta = layout.flatten({n: v.astype(np.float64) for n, v in net.init(1).items()})
    theta += 0.1 * rng.standard_normal(theta.size)  # nonzero biases too
    x = rng.standard_normal((5, task.obs_dim))
    out, tape = _actor_forward(net, layout.unflatten(theta), x)
    ref = net.forward(layout, theta[None].astype(np.float32), x.astype(np.float32), backend="numpy")[0]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    z = x @ layout.unflatten(theta)["dense_0/w"] + layout.unflatten(theta)["dense_0/b"]
    np.testing.assert_allclose(tape[1][1][0], z * (1 / (1 + np.exp(-z))))  # swish = x·sigmoid(x)
    dout = rng.standard_normal(out.shape)
    grad = layout.flatten(_actor_backward(net, layout.unflatten(theta), tape, dout))
    loss = lambda t: float((_actor_forward(net, layout.unflatten(t), x)[0] * dout).sum())  # noqa: E731
    h, fd = 1e-6, np.zeros(theta.size)
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = h
        fd[i] = (loss(theta + e) - loss(theta - e)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1"])
def test_stochastic_evaluation_samples_actions_and_is_the_deterministic_score_without_noise(name):
    task = tasks.make(name, test_episodes=4)
    net = task.default_net()
    layout = Layout(net.spec)
    theta = layout.flatten({n: v.astype(np.float64) for n, v in net.init(0).items()})
    agent = _Agent(task, net, layout, theta, PPO(), seed=0)
    deterministic = float(task.score(net, layout, theta[None].astype(np.float32), seed=2, backend="numpy")[0])
    noisy = [stochastic_score(task, agent, 2, None, np.random.default_rng(i)) for i in range(2)]
    assert noisy[0] != noisy[1] and deterministic not in noisy  # sampled actions
    if task.continuous:  # a vanishing action std leaves the mean action
        agent.theta[-1] = -40.0
    else:  # logits scaled up: the softmax sample is the argmax
        w = layout.segment("dense_2/w")
        agent.theta[w] *= 1e6
        b = layout.segment("dense_2/b")
        agent.theta[b] *= 1e6
        theta = agent.actor_theta()
        deterministic = float(task.score(net, layout, theta[None].astype(np.float32), seed=2, backend="numpy")[0])
    assert stochastic_score(task, agent, 2, None, np.random.default_rng(0)) == pytest.approx(deterministic, rel=1e-4)


def test_a_gd_run_with_the_papers_ppo_policy_stores_its_init_and_stochastic_test_scores(tmp_path):
    cfg = config.resolve({"task": "CartPole-v1", "task_options": {"test_episodes": 3}, "trainer": "gd",
                          "prune": "magnitude", "iterations": 1, "keep": 0.5,
                          "gd_options": {"policy": "paper", "timesteps": 256, "n_envs": 2, "n_steps": 64,
                                         "epochs": 1, "minibatch": 64, "eval_every": 1}})
    Experiment.start(cfg, tmp_path / "ppo.h5").execute()
    run = RunFile.open(tmp_path / "ppo.h5")
    net = network(tasks.make("CartPole-v1"), run.config)
    assert net.activation == "swish"
    init = from_vector(run.spec, run.iteration(0)["init"])
    np.testing.assert_array_equal(init["dense_0/w"], net.init(0)["dense_0/w"])
    assert all(not init[f"dense_{k}/b"].any() for k in range(3))
    assert len(run.iteration(1)["evals"]) == 2
