"""Acrobot-v1 with Gymnasium 1.x's "book" dynamics: RK4 over one 0.2 s step, angle wrapping, velocity bounds.

State (θ1, θ2, θ̇1, θ̇2) float64; the observation is (cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2) in float32.
Gymnasium draws the reset state uniformly on [−0.1, 0.1)⁴ and stores it as float32, so resets are rounded too.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.rollout import env_function

OBS_DIM, STATE_DIM, N_ACTIONS, MAX_STEPS, CONTINUOUS = 6, 4, 3, 500, False
RESET_LOW, RESET_HIGH, RESET_FLOAT32 = np.full(4, -0.1), np.full(4, 0.1), True

# gymnasium/envs/classic_control/acrobot.py
DT, M1, M2, L1, LC1, LC2, I1, I2, G = 0.2, 1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 9.8
MAX_VEL_1, MAX_VEL_2 = 4 * math.pi, 9 * math.pi
TORQUES = (-1.0, 0.0, 1.0)


@env_function
def _derivs(t1, t2, d1_, d2_, a):
    """Gymnasium's ``_dsdt`` (book variant), term for term so the rounding is the same."""
    d1 = M1 * LC1**2 + M2 * (L1**2 + LC2**2 + 2 * L1 * LC2 * math.cos(t2)) + I1 + I2
    d2 = M2 * (LC2**2 + L1 * LC2 * math.cos(t2)) + I2
    phi2 = M2 * LC2 * G * math.cos(t1 + t2 - math.pi / 2.0)
    phi1 = (-M2 * L1 * LC2 * (d2_ * d2_) * math.sin(t2) - 2 * M2 * L1 * LC2 * d2_ * d1_ * math.sin(t2)
            + (M1 * LC1 + M2 * L1) * G * math.cos(t1 - math.pi / 2) + phi2)
    dd2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * (d1_ * d1_) * math.sin(t2) - phi2) / (M2 * LC2**2 + I2 - d2**2 / d1)
    dd1 = -(d2 * dd2 + phi1) / d1
    return d1_, d2_, dd1, dd2


@env_function
def _wrap(x, m, M):
    diff = M - m
    while x > M:
        x = x - diff
    while x < m:
        x = x + diff
    return x


@env_function
def step(s, action):
    """One environment, in place on ``s`` (4,) float64; returns (reward, terminated)."""
    a = TORQUES[0] if action == 0 else (TORQUES[1] if action == 1 else TORQUES[2])
    y0, y1, y2, y3 = s[0], s[1], s[2], s[3]
    h2 = DT / 2.0
    k1 = _derivs(y0, y1, y2, y3, a)
    k2 = _derivs(y0 + h2 * k1[0], y1 + h2 * k1[1], y2 + h2 * k1[2], y3 + h2 * k1[3], a)
    k3 = _derivs(y0 + h2 * k2[0], y1 + h2 * k2[1], y2 + h2 * k2[2], y3 + h2 * k2[3], a)
    k4 = _derivs(y0 + DT * k3[0], y1 + DT * k3[1], y2 + DT * k3[2], y3 + DT * k3[3], a)
    c = DT / 6.0
    s[0] = _wrap(y0 + c * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]), -math.pi, math.pi)
    s[1] = _wrap(y1 + c * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]), -math.pi, math.pi)
    s[2] = min(max(y2 + c * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2]), -MAX_VEL_1), MAX_VEL_1)
    s[3] = min(max(y3 + c * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3]), -MAX_VEL_2), MAX_VEL_2)
    terminated = -math.cos(s[0]) - math.cos(s[1] + s[0]) > 1.0
    return (0.0 if terminated else -1.0), terminated


@env_function
def observe(s, out):
    out[0], out[1] = np.float32(math.cos(s[0])), np.float32(math.sin(s[0]))
    out[2], out[3] = np.float32(math.cos(s[1])), np.float32(math.sin(s[1]))
    out[4], out[5] = np.float32(s[2]), np.float32(s[3])


def _derivs_reference(y, a):
    t1, t2, d1_, d2_ = y.T
    d1 = M1 * LC1**2 + M2 * (L1**2 + LC2**2 + 2 * L1 * LC2 * np.cos(t2)) + I1 + I2
    d2 = M2 * (LC2**2 + L1 * LC2 * np.cos(t2)) + I2
    phi2 = M2 * LC2 * G * np.cos(t1 + t2 - np.pi / 2.0)
    phi1 = (-M2 * L1 * LC2 * d2_**2 * np.sin(t2) - 2 * M2 * L1 * LC2 * d2_ * d1_ * np.sin(t2)
            + (M1 * LC1 + M2 * L1) * G * np.cos(t1 - np.pi / 2) + phi2)
    dd2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * d1_**2 * np.sin(t2) - phi2) / (M2 * LC2**2 + I2 - d2**2 / d1)
    dd1 = -(d2 * dd2 + phi1) / d1
    return np.stack([d1_, d2_, dd1, dd2], axis=1)


def _wrap_reference(x, m, M):
    """Gymnasium's wrap by repeated subtraction, vectorized (a closed-form modulo would round differently)."""
    x = x.copy()
    while (x > M).any():
        x = np.where(x > M, x - (M - m), x)
    while (x < m).any():
        x = np.where(x < m, x + (M - m), x)
    return x


def step_reference(state: np.ndarray, action: np.ndarray):
    """``state`` (N, 4) float64, ``action`` (N,) in {0, 1, 2} → (next state, reward, terminated)."""
    a = np.asarray(TORQUES)[action]
    k1 = _derivs_reference(state, a)
    k2 = _derivs_reference(state + DT / 2.0 * k1, a)
    k3 = _derivs_reference(state + DT / 2.0 * k2, a)
    k4 = _derivs_reference(state + DT * k3, a)
    nxt = state + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    nxt[:, :2] = _wrap_reference(nxt[:, :2], -np.pi, np.pi)
    nxt[:, 2] = np.clip(nxt[:, 2], -MAX_VEL_1, MAX_VEL_1)
    nxt[:, 3] = np.clip(nxt[:, 3], -MAX_VEL_2, MAX_VEL_2)
    terminated = -np.cos(nxt[:, 0]) - np.cos(nxt[:, 1] + nxt[:, 0]) > 1.0
    return nxt, np.where(terminated, 0.0, -1.0), terminated


def observe_reference(state: np.ndarray) -> np.ndarray:
    t1, t2, d1, d2 = state.T
    return np.stack([np.cos(t1), np.sin(t1), np.cos(t2), np.sin(t2), d1, d2], axis=1).astype(np.float32)
