"""PPO (Schulman et al. 2017, clipped surrogate, GAE) with a masked MLP actor and a dense critic, in numpy.

The actor is the task's policy network under the ticket's mask, so a PPO solution is scored exactly like an ES
one (``task.score``: deterministic argmax / raw output on the test episodes). Option ``policy="paper"``: the
published PPO policy instead (es-lottery's brax networks, PAPER.md "Details"): swish hidden units, LeCun-uniform
kernels, zero biases (``network(task)`` builds it, so the ticket's init is drawn that way), and a stochastic test
score: actions sampled from the policy (categorical over the outputs; Gaussian with the learned log-std) on the
task's test episodes, as brax's and gymnax's evaluations of the paper's PPO do. The critic
(obs → critic_hidden tanh → 1) is dense and freshly initialized from the seed: only the policy is a ticket.
Continuous actions are Gaussian around the actor's output with one state-independent learned log-std.
Environments are esprune's vectorized numpy ones, reset from the task's seeded reset stream; an episode cut
at the task's horizon bootstraps from the value of its last state (truncation is not termination).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from .. import noise
from ..errors import ConfigError, bounded, written
from ..nets import MLP
from ..params import Layout
from . import backprop, optim
from .trainer import TrainResult

LOG_2PI = float(np.log(2 * np.pi))
POLICIES = ("esprune", "paper")
# Upper bounds of the options (errors.bounded), far above any real use (defaults: 2e5 timesteps, 8 × 256
# transitions per update): a typo is refused with the config instead of hanging or exhausting the memory
LIMITS = {"timesteps": 10**9, "n_envs": 100_000, "n_steps": 100_000, "epochs": 10_000, "minibatch": 10**7,
          "eval_episodes": 100_000}  # eval_episodes: the tasks' bound on test_episodes
MAX_BATCH = 10**7  # n_envs × n_steps: the update's buffers hold about 100 bytes per transition
MAX_WIDTH = 4096   # a critic layer's width (a square layer of it: 16.8 M weights)


class PPO:
    def __init__(self, timesteps: int = 200_000, n_envs: int = 8, n_steps: int = 256, epochs: int = 10,
                 minibatch: int = 256, lr: float = 3e-4, gamma: float = 0.99, gae_lambda: float = 0.95,
                 clip: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.0, max_grad_norm: float = 0.5,
                 critic_hidden=(64, 64), log_std_init: float = -0.5, eval_every: int = 10,
                 eval_episodes: int | None = None, target: float | None = None, policy: str = "esprune"):
        for name, value in (("timesteps", timesteps), ("n_envs", n_envs), ("n_steps", n_steps), ("epochs", epochs),
                            ("minibatch", minibatch), ("eval_every", eval_every), ("eval_episodes", eval_episodes)):
            if value is not None:
                bounded(f"PPO {name}", value, LIMITS.get(name))
        if int(n_envs) * int(n_steps) > MAX_BATCH:
            raise ConfigError(f"PPO collects n_envs × n_steps = {int(n_envs) * int(n_steps)} transitions per update, "
                              f"more than the {MAX_BATCH} allowed; use fewer n_envs or n_steps")
        for width in critic_hidden:
            bounded("PPO critic_hidden sizes", width, MAX_WIDTH)
        if not (0 < gamma <= 1 and 0 <= gae_lambda <= 1 and clip > 0 and lr > 0):
            raise ConfigError("PPO needs 0 < gamma <= 1, 0 <= gae_lambda <= 1, clip > 0 and lr > 0")
        self.timesteps, self.n_envs, self.n_steps = int(timesteps), int(n_envs), int(n_steps)
        self.epochs, self.minibatch, self.lr = int(epochs), int(minibatch), float(lr)
        self.gamma, self.gae_lambda, self.clip = float(gamma), float(gae_lambda), float(clip)
        self.vf_coef, self.ent_coef, self.max_grad_norm = float(vf_coef), float(ent_coef), float(max_grad_norm)
        self.critic_hidden, self.log_std_init = tuple(critic_hidden), float(log_std_init)
        # test episodes per evaluation; None: the task's test_episodes, as for an ES solution
        self.eval_every = int(eval_every)
        self.eval_episodes = None if eval_episodes is None else int(eval_episodes)
        self.target = target  # stop early once the test score reaches it (None: use the whole budget)
        if policy not in POLICIES:
            raise ConfigError(f"PPO policy must be one of {', '.join(POLICIES)}, got {written(policy)}")
        self.policy = policy

    def network(self, task):
        """The policy this trainer trains: the task's (tanh, the ES policy) or the paper's PPO policy (swish,
        LeCun-uniform kernels, zero biases) of the same sizes."""
        if self.policy == "esprune":
            return task.default_net()
        return MLP(task.obs_dim, task.hidden, task.act_dim, activation="swish", head="linear", out_bias="zeros",
                   kernel_init="lecun_uniform", bias="zeros")

    @property
    def updates(self) -> int:
        return max(1, self.timesteps // (self.n_envs * self.n_steps))

    def budget(self, task) -> int:
        return self.updates

    def train(self, task, net, layout, theta, seed: int, backend="numba", progress=None) -> TrainResult:
        if task.kind != "control":
            raise ConfigError(f"PPO trains control tasks, not {task.name}")
        agent = _Agent(task, net, layout, np.asarray(theta, dtype=np.float64), self, seed)
        opt = optim.Adam(agent.dim, lr=self.lr, eps=1e-5)
        envs = _Envs(task, self.n_envs, seed)
        rng = np.random.default_rng([seed, 0x990])
        result = TrainResult(agent.actor_theta(), agent.actor_theta(), -np.inf, -1)
        for update in range(1, self.updates + 1):
            batch, finished = self._collect(agent, envs, rng)
            for _ in range(self.epochs):
                order = rng.permutation(len(batch["obs"]))
                for start in range(0, len(order), self.minibatch):
                    mb = {k: v[order[start:start + self.minibatch]] for k, v in batch.items()}
                    grad = agent.loss_grad(mb)
                    norm = float(np.linalg.norm(grad))
                    if self.max_grad_norm > 0 and norm > self.max_grad_norm:
                        grad *= self.max_grad_norm / norm
                    agent.theta = opt.step(agent.theta, grad)
            returns = finished or [np.nan]
            result.train.append((float(np.mean(returns)), float(np.max(returns))))
            if update % self.eval_every == 0 or update == self.updates:
                actor = agent.actor_theta()
                if self.policy == "paper":
                    score = stochastic_score(task, agent, seed, self.eval_episodes,
                                             np.random.default_rng([seed, 0x7E57, update]))
                else:
                    score = float(task.score(net, layout, actor[None].astype(np.float32), seed=seed,
                                             episodes=self.eval_episodes, backend=backend)[0])
                result.evals.append((update, score))
                if score > result.best_score:
                    result.best, result.best_score, result.best_step = actor, score, update
                if self.target is not None and score >= self.target:
                    break
            if progress:
                progress(update, self.updates, result.best_score)
        result.final, result.steps = agent.actor_theta(), update
        return result

    def _collect(self, agent, envs, rng):
        """``n_steps`` transitions from every environment, with GAE(λ) advantages and returns."""
        T, N = self.n_steps, self.n_envs
        obs_buf = np.empty((T, N, envs.obs_dim))
        act_buf, logp_buf, val_buf, rew_buf, done_buf = (np.empty((T, N)) for _ in range(5))
        boot_buf = np.zeros((T, N))
        finished = []
        for t in range(T):
            obs = envs.observe()
            action, logp, value = agent.act(obs, rng)
            reward, terminated, truncated, last_obs, ep_returns = envs.step(action)
            obs_buf[t], act_buf[t], logp_buf[t], val_buf[t], rew_buf[t] = obs, action, logp, value, reward
            done_buf[t] = terminated | truncated
            if truncated.any():  # a cut episode is worth the value of where it was cut
                boot_buf[t, truncated] = agent.value(last_obs[truncated])
            finished.extend(ep_returns)
        next_value = agent.value(envs.observe())
        adv = np.zeros((T, N))
        gae = np.zeros(N)
        for t in reversed(range(T)):
            nv = next_value if t == T - 1 else val_buf[t + 1]
            nonterminal = 1.0 - done_buf[t]
            delta = rew_buf[t] + self.gamma * (nv * nonterminal + boot_buf[t]) - val_buf[t]
            gae = delta + self.gamma * self.gae_lambda * nonterminal * gae
            adv[t] = gae
        flat = lambda a: a.reshape(T * N, *a.shape[2:])  # noqa: E731
        return ({"obs": flat(obs_buf), "act": flat(act_buf), "logp": flat(logp_buf), "adv": flat(adv),
                 "ret": flat(adv + val_buf)}, finished)


def stochastic_score(task, agent, seed: int, episodes: int | None, rng) -> float:
    """Mean return of the policy *sampling* its actions on the task's test episodes (``episodes``, default
    ``task.test_episodes``; the same TEST_RESET starts as ``task.score``), stepped in numpy."""
    episodes = task.test_episodes if episodes is None else int(episodes)
    starts = task.resets(seed, 0, episodes, noise.TEST_RESET)
    returns, _ = task.step_episodes(starts, lambda obs: agent.sample(obs, rng))
    return float(returns.mean())


class _Agent:
    """Actor (the masked policy), critic and log-std in one flat vector for one optimizer."""

    def __init__(self, task, net, layout: Layout, actor_theta, cfg: PPO, seed: int):
        self.net, self.layout, self.cfg, self.continuous = net, layout, cfg, task.continuous
        self.critic = MLP(task.obs_dim, cfg.critic_hidden, 1, activation="tanh", head="linear", out_bias="zeros")
        self.critic_layout = Layout(self.critic.spec)
        critic_theta = self.critic_layout.flatten(self.critic.init(seed + 7919)).astype(np.float64)
        log_std = np.full(1 if self.continuous else 0, cfg.log_std_init)
        self.sizes = (layout.dim, self.critic_layout.dim, log_std.size)
        self.theta = np.concatenate([actor_theta, critic_theta, log_std])

    @property
    def dim(self) -> int:
        return self.theta.size

    def _split(self, theta):
        a, c, _ = self.sizes
        return theta[:a], theta[a:a + c], theta[a + c:]

    def actor_theta(self):
        return self._split(self.theta)[0].copy()

    def value(self, obs):
        params = self.critic_layout.unflatten(self._split(self.theta)[1])
        return backprop.forward(self.critic, params, obs)[0][:, 0]

    def sample(self, obs, rng):
        """Actions sampled from the policy (no critic)."""
        return self._sample(obs, rng)[0]

    def act(self, obs, rng):
        """Sampled actions, their log-probabilities, and the critic's values."""
        action, logp = self._sample(obs, rng)
        return action, logp, self.value(obs)

    def _sample(self, obs, rng):
        actor, _, log_std = self._split(self.theta)
        out, _ = _actor_forward(self.net, self.layout.unflatten(actor), obs)
        if self.continuous:
            action = out[:, 0] + np.exp(log_std[0]) * rng.standard_normal(len(obs))
            logp = _gauss_logp(action, out[:, 0], log_std[0])
        else:
            logp_all = out - _logsumexp(out)
            u = rng.random((len(obs), 1))
            action = (np.cumsum(np.exp(logp_all), axis=1) < u).sum(axis=1).clip(0, out.shape[1] - 1)
            logp = logp_all[np.arange(len(obs)), action]
        return action, logp

    def loss_grad(self, mb):
        """Gradient of clipped-surrogate + vf_coef·value MSE − ent_coef·entropy on a minibatch."""
        cfg = self.cfg
        actor, critic, log_std = self._split(self.theta)
        M = len(mb["obs"])
        adv = mb["adv"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        a_params = self.layout.unflatten(actor)
        out, tape = _actor_forward(self.net, a_params, mb["obs"])
        g_log_std = np.zeros_like(log_std)
        if self.continuous:
            mu, s = out[:, 0], log_std[0]
            logp = _gauss_logp(mb["act"], mu, s)
        else:
            logp_all = out - _logsumexp(out)
            act = mb["act"].astype(np.int64)
            logp = logp_all[np.arange(M), act]
        ratio = np.exp(logp - mb["logp"])
        clipped = np.clip(ratio, 1 - cfg.clip, 1 + cfg.clip)
        active = ratio * adv <= clipped * adv  # the min picks the unclipped term: its gradient flows
        d_logp = -np.where(active, adv * ratio, 0.0) / M
        if self.continuous:
            z = (mb["act"] - mu) / np.exp(s)
            dout = np.zeros_like(out)
            dout[:, 0] = d_logp * z / np.exp(s)
            g_log_std[0] = (d_logp * (z * z - 1)).sum() - cfg.ent_coef  # entropy = s + const
        else:
            p = np.exp(logp_all)
            dout = -p * d_logp[:, None]
            dout[np.arange(M), act] += d_logp
            if cfg.ent_coef:
                entropy = -(p * logp_all).sum(axis=1, keepdims=True)
                dout += cfg.ent_coef / M * p * (logp_all + entropy)
        g_actor = self.layout.flatten(_actor_backward(self.net, a_params, tape, dout))
        c_params = self.critic_layout.unflatten(critic)
        v, c_tape = backprop.forward(self.critic, c_params, mb["obs"])
        dv = 2 * cfg.vf_coef * (v - mb["ret"][:, None]) / M
        g_critic = self.critic_layout.flatten(backprop.backward(self.critic, c_params, c_tape, dv))
        return np.concatenate([g_actor, g_critic, g_log_std])


class _Envs:
    """``n`` copies of the task's environment stepped together, reset from the task's seeded RESET stream."""

    def __init__(self, task, n: int, seed: int):
        self.task, self.env, self.n, self.seed = task, task.env, n, seed
        self.obs_dim, self.continuous, self.horizon = task.obs_dim, task.continuous, task.max_steps
        self._pool, self._block = np.empty((0, self.env.STATE_DIM)), 0
        self.state = self._resets(n)
        self.t = np.zeros(n, dtype=np.int64)
        self.ret = np.zeros(n)

    def _resets(self, k):
        while len(self._pool) < k:  # blocks of seeded reset states, consumed in order
            block = self.task.resets(self.seed, 1_000_000 + self._block, 256)
            self._pool, self._block = np.concatenate([self._pool, block]), self._block + 1
        out, self._pool = self._pool[:k], self._pool[k:]
        return out

    def observe(self):
        return self.env.observe_reference(self.state)

    def step(self, action):
        nxt, reward, terminated = self.env.step_reference(self.state, action)
        self.t += 1
        self.ret += reward
        truncated = (self.t >= self.horizon) & ~terminated
        done = terminated | truncated
        last_obs = self.env.observe_reference(nxt)
        ep_returns = list(self.ret[done])
        if done.any():
            nxt = nxt.copy()
            nxt[done] = self._resets(int(done.sum()))
            self.t[done], self.ret[done] = 0, 0.0
        self.state = nxt
        return reward, terminated, truncated, last_obs, ep_returns


def _actor_forward(net, params, x):
    """``backprop.forward`` for tanh/relu policies; the paper's swish MLP here (output head linear)."""
    if net.activation != "swish":
        return backprop.forward(net, params, x)
    h, tape = np.asarray(x, dtype=np.float64), []
    for k in range(net.n_layers):
        z = h @ params[f"dense_{k}/w"] + params[f"dense_{k}/b"]
        tape.append((h, z))
        h = z if k == net.n_layers - 1 else z * special.expit(z)
    return h, ("swish", tape)


def _actor_backward(net, params, tape, dout):
    """Gradients of ``_actor_forward``; swish'(z) = s + z·s·(1 − s) with s = sigmoid(z)."""
    if net.activation != "swish":
        return backprop.backward(net, params, tape, dout)
    grads, g = {}, np.asarray(dout, dtype=np.float64)
    for k in reversed(range(net.n_layers)):
        h_in, z = tape[1][k]
        if k < net.n_layers - 1:
            sig = special.expit(z)
            g = g * (sig + z * sig * (1 - sig))
        grads[f"dense_{k}/w"] = h_in.T @ g
        grads[f"dense_{k}/b"] = g.sum(axis=0)
        g = g @ params[f"dense_{k}/w"].T
    return grads


def _logsumexp(z):
    m = z.max(axis=1, keepdims=True)
    return m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _gauss_logp(a, mu, log_std):
    z = (a - mu) / np.exp(log_std)
    return -0.5 * z * z - log_std - 0.5 * LOG_2PI
