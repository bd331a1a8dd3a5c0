"""MountainCar-v0 as in Gymnasium 1.x: float64 state, velocity clipped to ±0.07, inelastic left wall, 200 steps."""
from __future__ import annotations

import math

import numpy as np

from ..ops.rollout import env_function

OBS_DIM, STATE_DIM, N_ACTIONS, MAX_STEPS, CONTINUOUS = 2, 2, 3, 200, False
RESET_LOW, RESET_HIGH, RESET_FLOAT32 = np.array([-0.6, 0.0]), np.array([-0.4, 0.0]), False

# gymnasium/envs/classic_control/mountain_car.py
MIN_POSITION, MAX_POSITION, MAX_SPEED, GOAL_POSITION, FORCE, GRAVITY = -1.2, 0.6, 0.07, 0.5, 0.001, 0.0025


@env_function
def step(s, action):
    """One environment, in place on ``s`` (2,) float64; returns (reward, terminated)."""
    position, velocity = s[0], s[1]
    velocity += (action - 1) * FORCE + math.cos(3 * position) * (-GRAVITY)
    velocity = min(max(velocity, -MAX_SPEED), MAX_SPEED)
    position = min(max(position + velocity, MIN_POSITION), MAX_POSITION)
    if position == MIN_POSITION and velocity < 0:
        velocity = 0.0
    s[0], s[1] = position, velocity
    return -1.0, position >= GOAL_POSITION and velocity >= 0


@env_function
def observe(s, out):
    out[0], out[1] = np.float32(s[0]), np.float32(s[1])


def step_reference(state: np.ndarray, action: np.ndarray):
    """``state`` (N, 2) float64, ``action`` (N,) in {0, 1, 2} → (next state, reward, terminated)."""
    position, velocity = state.T
    velocity = np.clip(velocity + ((action - 1) * FORCE + np.cos(3 * position) * (-GRAVITY)), -MAX_SPEED, MAX_SPEED)
    position = np.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    velocity = np.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
    terminated = (position >= GOAL_POSITION) & (velocity >= 0)
    return np.stack([position, velocity], axis=1), np.full(len(state), -1.0), terminated


def observe_reference(state: np.ndarray) -> np.ndarray:
    return state.astype(np.float32)
