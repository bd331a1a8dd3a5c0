"""Pendulum-v1 as in Gymnasium 1.x: torque clipped to [−2, 2], speed clipped to ±8, never terminates, 200 steps.

State (θ, θ̇) float64, observation (cos θ, sin θ, θ̇) float32. The action is the policy's float32 output and
Gymnasium keeps it float32 through the clip, so the torque terms of the cost and of the dynamics are rounded in
float32 exactly as NumPy rounds them there.
A NaN action stays NaN through the clip (np.clip, and Python's min/max in the twin, as in Gymnasium), so its
reward, state and return are NaN; ±inf is clipped like any action (``tasks/control.py``: the rule).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.rollout import env_function

OBS_DIM, STATE_DIM, N_ACTIONS, MAX_STEPS, CONTINUOUS = 3, 2, 1, 200, True
RESET_LOW, RESET_HIGH, RESET_FLOAT32 = np.array([-math.pi, -1.0]), np.array([math.pi, 1.0]), False

# gymnasium/envs/classic_control/pendulum.py
MAX_SPEED, MAX_TORQUE, DT, G, M, L = 8.0, 2.0, 0.05, 10.0, 1.0, 1.0


@env_function
def step(s, action):
    """One environment, in place on ``s`` (2,) float64, float32 ``action``; returns (reward, terminated)."""
    th, thdot = s[0], s[1]
    u = min(max(np.float32(action), np.float32(-MAX_TORQUE)), np.float32(MAX_TORQUE))
    norm = ((th + math.pi) % (2 * math.pi)) - math.pi
    costs = norm * norm + 0.1 * (thdot * thdot) + np.float64(np.float32(0.001) * (u * u))
    newthdot = thdot + (3 * G / (2 * L) * math.sin(th) + np.float64(np.float32(3.0 / (M * L**2)) * u)) * DT
    newthdot = min(max(newthdot, -MAX_SPEED), MAX_SPEED)
    s[0] = th + newthdot * DT
    s[1] = newthdot
    return -costs, False


@env_function
def observe(s, out):
    out[0], out[1], out[2] = np.float32(math.cos(s[0])), np.float32(math.sin(s[0])), np.float32(s[1])


def step_reference(state: np.ndarray, action: np.ndarray):
    """``state`` (N, 2) float64, ``action`` (N,) float32 → (next state, reward, terminated)."""
    th, thdot = state.T
    u = np.clip(np.asarray(action, dtype=np.float32), -MAX_TORQUE, MAX_TORQUE)
    costs = (((th + np.pi) % (2 * np.pi)) - np.pi) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
    newthdot = np.clip(thdot + (3 * G / (2 * L) * np.sin(th) + 3.0 / (M * L**2) * u) * DT, -MAX_SPEED, MAX_SPEED)
    return np.stack([th + newthdot * DT, newthdot], axis=1), -costs, np.zeros(len(state), dtype=bool)


def observe_reference(state: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(state[:, 0]), np.sin(state[:, 0]), state[:, 1]], axis=1).astype(np.float32)
