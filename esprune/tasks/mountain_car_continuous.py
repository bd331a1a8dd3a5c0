"""MountainCarContinuous-v0 as in Gymnasium 1.x: force clipped to [−1, 1], +100 at the goal, 999 steps.

Gymnasium stores this state as float32 after every step and NumPy (NEP 50) then computes most of the step in
float32, with Python-float constants rounded to float32; a force that hit its clip is a Python float and keeps
that term in float64. Both the twin and the reference follow those roundings, and resets are rounded to float32
(the state Gymnasium holds after its first step), so the dynamics match Gymnasium's to the last bit.
A NaN action stays NaN through the clip (np.clip, and Python's min/max in the twin, as in Gymnasium), so its
reward, state and return are NaN; ±inf is clipped like any action (``tasks/control.py``: the rule).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.rollout import env_function

OBS_DIM, STATE_DIM, N_ACTIONS, MAX_STEPS, CONTINUOUS = 2, 2, 1, 999, True
RESET_LOW, RESET_HIGH, RESET_FLOAT32 = np.array([-0.6, 0.0]), np.array([-0.4, 0.0]), True

# gymnasium/envs/classic_control/continuous_mountain_car.py
MIN_ACTION, MAX_ACTION, MIN_POSITION, MAX_POSITION, MAX_SPEED = -1.0, 1.0, -1.2, 0.6, 0.07
GOAL_POSITION, POWER = 0.45, 0.0015
f32 = np.float32


@env_function
def step(s, action):
    """One environment, in place on ``s`` (2,) float64 holding float32 values; returns (reward, terminated)."""
    position, velocity, a = f32(s[0]), f32(s[1]), f32(action)
    gravity = 0.0025 * math.cos(np.float64(f32(f32(3.0) * position)))  # float64 cos, as math.cos in Python
    if a < MIN_ACTION or a > MAX_ACTION:  # the clipped force is a Python float: this term stays float64
        accel = f32((MIN_ACTION if a < MIN_ACTION else MAX_ACTION) * POWER - gravity)
    else:
        accel = f32(a * f32(POWER)) - f32(gravity)
    velocity = min(max(velocity + accel, f32(-MAX_SPEED)), f32(MAX_SPEED))
    position = min(max(position + velocity, f32(MIN_POSITION)), f32(MAX_POSITION))
    if position == f32(MIN_POSITION) and velocity < 0:
        velocity = f32(0.0)
    s[0], s[1] = position, velocity
    terminated = position >= f32(GOAL_POSITION) and velocity >= 0
    reward = (100.0 if terminated else 0.0) - (np.float64(a) * np.float64(a)) * 0.1
    return reward, terminated


@env_function
def observe(s, out):
    out[0], out[1] = np.float32(s[0]), np.float32(s[1])


def step_reference(state: np.ndarray, action: np.ndarray):
    """``state`` (N, 2) float64 holding float32 values, ``action`` (N,) float32 → (next, reward, terminated)."""
    position, velocity = state.T.astype(np.float32)
    a = np.asarray(action, dtype=np.float32)
    gravity = 0.0025 * np.cos((3 * position).astype(np.float64))
    clipped = (a < MIN_ACTION) | (a > MAX_ACTION)
    accel = np.where(clipped, (np.clip(a, MIN_ACTION, MAX_ACTION).astype(np.float64) * POWER - gravity).astype(np.float32),
                     a * np.float32(POWER) - gravity.astype(np.float32))
    velocity = np.clip(velocity + accel, -MAX_SPEED, MAX_SPEED)
    position = np.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    velocity = np.where((position == np.float32(MIN_POSITION)) & (velocity < 0), np.float32(0.0), velocity)
    terminated = (position >= GOAL_POSITION) & (velocity >= 0)
    reward = np.where(terminated, 100.0, 0.0) - a.astype(np.float64) ** 2 * 0.1
    return np.stack([position, velocity], axis=1).astype(np.float64), reward, terminated


def observe_reference(state: np.ndarray) -> np.ndarray:
    return state.astype(np.float32)
