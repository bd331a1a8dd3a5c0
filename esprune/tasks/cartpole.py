"""CartPole-v1 with Gymnasium 1.x's dynamics, reward, termination and 500-step truncation.

Two implementations of one step: ``step_reference`` (numpy, vectorized over environments: the oracle) and
``step`` (scalar, one environment: compiled into the fused rollout, ``ops/rollout.py``). State is float64 as in
Gymnasium; the observation handed to the policy is the state rounded to float32, as Gymnasium returns it.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.rollout import env_function

OBS_DIM, STATE_DIM, N_ACTIONS, MAX_STEPS, CONTINUOUS = 4, 4, 2, 500, False
RESET_LOW, RESET_HIGH, RESET_FLOAT32 = np.full(4, -0.05), np.full(4, 0.05), False

# gymnasium/envs/classic_control/cartpole.py
GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = MASSPOLE + MASSCART
POLEMASS_LENGTH = MASSPOLE * LENGTH
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


def step_reference(state: np.ndarray, action: np.ndarray):
    """``state`` (N, 4) float64, ``action`` (N,) in {0, 1} → (next state, reward 1.0, terminated)."""
    x, x_dot, theta, theta_dot = state.T
    force = np.where(action == 1, FORCE_MAG, -FORCE_MAG)
    costheta, sintheta = np.cos(theta), np.sin(theta)
    temp = (force + POLEMASS_LENGTH * np.square(theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * np.square(costheta) / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    nxt = np.stack([x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc], 1)
    terminated = ((nxt[:, 0] < -X_THRESHOLD) | (nxt[:, 0] > X_THRESHOLD)
                  | (nxt[:, 2] < -THETA_THRESHOLD) | (nxt[:, 2] > THETA_THRESHOLD))
    return nxt, np.ones(len(state)), terminated


@env_function
def step(s, action):
    """One environment, in place on ``s`` (4,) float64; returns (reward, terminated)."""
    x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
    force = FORCE_MAG if action == 1 else -FORCE_MAG
    costheta, sintheta = math.cos(theta), math.sin(theta)
    temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    s[0] = x + TAU * x_dot
    s[1] = x_dot + TAU * xacc
    s[2] = theta + TAU * theta_dot
    s[3] = theta_dot + TAU * thetaacc
    terminated = s[0] < -X_THRESHOLD or s[0] > X_THRESHOLD or s[2] < -THETA_THRESHOLD or s[2] > THETA_THRESHOLD
    return 1.0, terminated


@env_function
def observe(s, out):
    for i in range(4):
        out[i] = np.float32(s[i])


def observe_reference(state: np.ndarray) -> np.ndarray:
    return state.astype(np.float32)
