"""Philox4x32-10 noise: the numpy reference, the numba twin and the launcher of ``kernels/noise.cu``.

Key = (seed, generation), counter = (block, member, stream, 0): value ``j`` of a row is word ``j % 4`` of
block ``j // 4``. Normals come from Box-Muller on word pairs (0, 1) and (2, 3) of each block.
"""
from __future__ import annotations

import threading

import numba
import numpy as np

from . import cuda, jit

_M0, _M1 = 0xD2511F53, 0xCD9E8D57  # Philox multipliers (Salmon et al. 2011, Table 2)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85  # Weyl key increments: golden ratio and sqrt(3) - 1
_MASK32 = 0xFFFFFFFF
_INV_2_24 = np.float32(2.0**-24)
_TWO_PI = np.float32(2.0 * np.pi)


# ----------------------------------------------------------------------------------------------- numpy reference
def philox4x32_10(counter, key) -> np.ndarray:
    """The raw Philox4x32-10 block function, vectorized: counter ``(..., 4)``, key ``(..., 2)`` → ``(..., 4)``."""
    c = [np.asarray(counter, dtype=np.uint64)[..., i] for i in range(4)]
    k0, k1 = (np.asarray(key, dtype=np.uint64)[..., i] for i in range(2))
    for _ in range(10):
        p0, p1 = np.uint64(_M0) * c[0], np.uint64(_M1) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & np.uint64(_MASK32),
             (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & np.uint64(_MASK32)]
        k0, k1 = (k0 + np.uint64(_W0)) & np.uint64(_MASK32), (k1 + np.uint64(_W1)) & np.uint64(_MASK32)
    return np.stack(c, axis=-1).astype(np.uint32)


def philox_uint32_reference(members, dim, seed, generation, stream) -> np.ndarray:
    members = np.asarray(members, dtype=np.uint64)
    blocks = (dim + 3) // 4
    counter = np.zeros((len(members), blocks, 4), dtype=np.uint64)
    counter[..., 0] = np.arange(blocks, dtype=np.uint64)
    counter[..., 1] = members[:, None]
    counter[..., 2] = stream
    words = philox4x32_10(counter, np.array([seed, generation], dtype=np.uint64))
    return np.ascontiguousarray(words.reshape(len(members), 4 * blocks)[:, :dim])


def box_muller_reference(words: np.ndarray) -> np.ndarray:
    """Normals from a ``(..., 4k)`` uint32 array: pairs of adjacent words give (r cos θ, r sin θ)."""
    a, b = words[..., 0::2], words[..., 1::2]
    u1 = ((a >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * _INV_2_24
    u2 = (b >> np.uint32(8)).astype(np.float32) * _INV_2_24
    r = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = _TWO_PI * u2
    z = np.empty(words.shape, dtype=np.float32)
    z[..., 0::2], z[..., 1::2] = r * np.cos(theta), r * np.sin(theta)
    return z


def gaussian_reference(members, dim, seed, generation, stream) -> np.ndarray:
    padded = 4 * ((dim + 3) // 4)
    words = philox_uint32_reference(members, padded, seed, generation, stream)
    return np.ascontiguousarray(box_muller_reference(words)[:, :dim])


# ------------------------------------------------------------------------------------------------- numba twin
_U_M0, _U_M1, _U_W0, _U_W1 = np.uint64(_M0), np.uint64(_M1), np.uint64(_W0), np.uint64(_W1)
_U_MASK, _U_32, _U_8, _U_1 = np.uint64(_MASK32), np.uint64(32), np.uint64(8), np.uint64(1)


@numba.njit(inline="always")
def _philox_block(c0, c1, c2, c3, k0, k1):
    # All values are uint64 holding 32-bit words, so the 32x32 products are exact.
    for _ in range(10):
        p0 = _U_M0 * c0
        p1 = _U_M1 * c2
        c0, c1, c2, c3 = (p1 >> _U_32) ^ c1 ^ k0, p1 & _U_MASK, (p0 >> _U_32) ^ c3 ^ k1, p0 & _U_MASK
        k0 = (k0 + _U_W0) & _U_MASK
        k1 = (k1 + _U_W1) & _U_MASK
    return c0, c1, c2, c3


@numba.njit(inline="always")
def _box_muller(a, b):
    u1 = np.float32((a >> _U_8) + _U_1) * _INV_2_24
    u2 = np.float32(b >> _U_8) * _INV_2_24
    r = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = _TWO_PI * u2
    return r * np.cos(theta), r * np.sin(theta)


@numba.njit(inline="always")
def _block_normals(blk, member, s, k0, k1):
    """The four float32 normals of block ``blk`` of row ``member``."""
    w0, w1, w2, w3 = _philox_block(np.uint64(blk), np.uint64(member), s, np.uint64(0), k0, k1)
    z0, z1 = _box_muller(w0, w1)
    z2, z3 = _box_muller(w2, w3)
    return z0, z1, z2, z3


_CHUNK = 128  # blocks per task of the sample and moments twins


@numba.njit(inline="always")
def _philox_chunk(b0, nb, member, s, k0, k1, w):
    """Words of blocks ``b0 .. b0 + nb - 1`` of row ``member`` into ``w[0:4, :nb]``: a loop with no call in it,
    which LLVM vectorizes (about ten times the speed of one block at a time between Box-Muller's libm calls)."""
    m = np.uint64(member)
    for q in range(nb):
        c0, c1, c2, c3 = _philox_block(np.uint64(b0 + q), m, s, np.uint64(0), k0, k1)
        w[0, q], w[1, q], w[2, q], w[3, q] = c0, c1, c2, c3


@jit.njit(parallel=True)
def _philox_uint32_numba(members, seed, generation, stream, out):
    rows, dim = out.shape
    blocks = (dim + 3) // 4
    k0, k1, s = np.uint64(seed), np.uint64(generation), np.uint64(stream)
    for t in numba.prange(rows * blocks):
        row, blk = t // blocks, t % blocks
        w = _philox_block(np.uint64(blk), np.uint64(members[row]), s, np.uint64(0), k0, k1)
        for i in range(min(4, dim - 4 * blk)):
            out[row, 4 * blk + i] = np.uint32(w[i])


@jit.njit(parallel=True)
def _gaussian_numba(members, seed, generation, stream, out):
    rows, dim = out.shape
    blocks = (dim + 3) // 4
    k0, k1, s = np.uint64(seed), np.uint64(generation), np.uint64(stream)
    for t in numba.prange(rows * blocks):
        row, blk = t // blocks, t % blocks
        z = _block_normals(blk, members[row], s, k0, k1)
        for i in range(min(4, dim - 4 * blk)):
            out[row, 4 * blk + i] = z[i]


def sample_reference(rows, signs, mean, scale, seed, generation, stream):
    """Members ``mean + scale ⊙ (sign_i · ε_{rows_i})`` as float32 ``(len(rows), dim)`` (float64 arithmetic)."""
    z = gaussian_reference(rows, len(mean), seed, generation, stream).astype(np.float64)
    return (mean + scale * (np.asarray(signs, np.float64)[:, None] * z)).astype(np.float32)


@jit.njit(parallel=True)
def _sample_numba(rows, signs, mean, scale, seed, generation, stream, out, z_out):
    # One task per row and chunk of _CHUNK blocks: the chunk's words first, then Box-Muller on them. The
    # normals also go to z_out when it has rows (the kept noise, see _Kept).
    n, dim = out.shape
    keep = z_out.shape[0] > 0
    blocks = (dim + 3) // 4
    chunks = (blocks + _CHUNK - 1) // _CHUNK
    k0, k1, s = np.uint64(seed), np.uint64(generation), np.uint64(stream)
    for t in numba.prange(n * chunks):
        i, c = t // chunks, t % chunks
        b0 = c * _CHUNK
        nb = min(_CHUNK, blocks - b0)
        w = np.empty((4, _CHUNK), dtype=np.uint64)
        _philox_chunk(b0, nb, rows[i], s, k0, k1, w)
        for q in range(nb):
            z01 = _box_muller(w[0, q], w[1, q])
            z23 = _box_muller(w[2, q], w[3, q])
            z = (z01[0], z01[1], z23[0], z23[1])
            blk = b0 + q
            for r in range(min(4, dim - 4 * blk)):
                j = 4 * blk + r
                out[i, j] = np.float32(mean[j] + scale[j] * (signs[i] * np.float64(z[r])))
                if keep:
                    z_out[i, j] = z[r]


def sample(rows, signs, mean, scale, seed, generation, stream, backend):
    """A population drawn from regenerated noise in one pass: member i is ``mean + scale ⊙ (signs_i ·
    ε_{rows_i})``, float32 ``(len(rows), dim)``; no float64 ``(P, d)`` temporaries."""
    if backend.name == "numpy":
        return sample_reference(rows, signs, mean, scale, seed, generation, stream)
    xp = backend.xp
    out = xp.empty((len(rows), mean.shape[0]), dtype=np.float32)
    mean, scale = xp.ascontiguousarray(mean, dtype=np.float64), xp.ascontiguousarray(scale, dtype=np.float64)
    signs = xp.ascontiguousarray(signs, dtype=np.float64)
    if backend.name == "numba":
        z = _KEPT.start(rows, out.shape[1], seed, generation, stream)
        _sample_numba(rows, signs, mean, scale, seed, generation, stream, out, z)
    elif out.size:
        for name, a in (("signs", signs), ("mean", mean), ("scale", scale)):
            cuda.check_device_array(name, a, np.float64)
        cuda.check_device_array("rows", rows, np.uint32)
        cuda.load("noise.cu").get_function("sample_members")(
            cuda.grid(out.shape[0] * ((out.shape[1] + 3) // 4)), (cuda.BLOCK,),
            (rows, signs, np.int32(out.shape[0]), np.int32(out.shape[1]), np.uint32(seed), np.uint32(generation),
             np.uint32(stream), mean, scale, out))
    return out


class _Kept(threading.local):
    """The normals of the last population this thread sampled on the numba backend (when they fit in
    ``MAX_FLOATS``), so that the update's moments read them instead of regenerating them: a normal is a pure
    function of (seed, generation, stream, row, column), so a kept value is the regenerated one, bit for bit.
    A Sep-CMA-ES update regenerated half the population's noise (its elite), ~5% of a W1 generation."""

    MAX_FLOATS = 2**23  # 32 MB of float32

    def __init__(self):
        self.key, self.rows, self.z = None, None, np.zeros((0, 0), dtype=np.float32)

    def start(self, rows, dim, seed, generation, stream):
        """The array a sample of ``rows`` × ``dim`` writes its normals to (no rows when too large)."""
        rows = np.asarray(rows)
        if rows.size * dim > self.MAX_FLOATS:
            self.key = None
            return np.zeros((0, 0), dtype=np.float32)
        if self.z.shape != (rows.size, dim):
            self.z = np.empty((rows.size, dim), dtype=np.float32)
        self.key, self.rows = (int(seed), int(generation), int(stream), int(dim)), rows.astype(np.int64)
        return self.z

    def find(self, members, dim, seed, generation, stream):
        """Positions in the kept normals of the noise rows ``members``, or None when any is not kept."""
        if self.key != (int(seed), int(generation), int(stream), int(dim)):
            return None
        members = np.asarray(members, dtype=np.int64)
        if members.size and (members.min() < 0 or members.max() > self.rows.max()):
            return None
        where = np.full(int(self.rows.max()) + 1 if self.rows.size else 0, -1, dtype=np.int64)
        where[self.rows[::-1]] = np.arange(self.rows.size)[::-1]  # a row's first position
        at = where[members]
        return None if (at < 0).any() else at


_KEPT = _Kept()
_COLS = 512  # columns per task of _moments_kept


@jit.njit(parallel=True)
def _moments_kept(z, at, w1, w2, s1, s2):
    # Rows at[r] of the kept normals in the order given, float64 sums per column: the sums of _moments_numba.
    dim = s1.shape[0]
    for c in numba.prange((dim + _COLS - 1) // _COLS):
        j0 = c * _COLS
        m = min(_COLS, dim - j0)
        a = np.zeros(m)
        b = np.zeros(m)
        for r in range(at.shape[0]):
            zr = z[at[r], j0:j0 + m]
            u, v = w1[r], w2[r]
            for j in range(m):
                x = np.float64(zr[j])
                a[j] += u * x
                b[j] += v * x * x
        s1[j0:j0 + m] = a
        s2[j0:j0 + m] = b


def moments_reference(members, w1, w2, dim, seed, generation, stream):
    """``(Σ_r w1_r ε_r, Σ_r w2_r ε_r²)`` over the rows ``members`` of the noise, in float64."""
    z = gaussian_reference(members, dim, seed, generation, stream).astype(np.float64)
    return np.asarray(w1, np.float64) @ z, np.asarray(w2, np.float64) @ (z * z)


@jit.njit(parallel=True)
def _moments_numba(members, w1, w2, seed, generation, stream, s1, s2):
    # One task per chunk of _CHUNK blocks (4 columns each); rows in ascending order, float64 sums (as the CUDA
    # kernel, which sums each column over the rows in the same order).
    dim = s1.shape[0]
    blocks = (dim + 3) // 4
    chunks = (blocks + _CHUNK - 1) // _CHUNK
    k0, k1, s = np.uint64(seed), np.uint64(generation), np.uint64(stream)
    for c in numba.prange(chunks):
        b0 = c * _CHUNK
        nb = min(_CHUNK, blocks - b0)
        w = np.empty((4, _CHUNK), dtype=np.uint64)
        a = np.zeros(4 * _CHUNK)
        b = np.zeros(4 * _CHUNK)
        for row in range(members.shape[0]):
            _philox_chunk(b0, nb, members[row], s, k0, k1, w)
            u, v = w1[row], w2[row]
            for q in range(nb):
                z0, z1 = _box_muller(w[0, q], w[1, q])
                z2, z3 = _box_muller(w[2, q], w[3, q])
                x0, x1, x2, x3 = np.float64(z0), np.float64(z1), np.float64(z2), np.float64(z3)
                a[4 * q] += u * x0
                a[4 * q + 1] += u * x1
                a[4 * q + 2] += u * x2
                a[4 * q + 3] += u * x3
                b[4 * q] += v * x0 * x0
                b[4 * q + 1] += v * x1 * x1
                b[4 * q + 2] += v * x2 * x2
                b[4 * q + 3] += v * x3 * x3
        for j in range(min(4 * nb, dim - 4 * b0)):
            s1[4 * b0 + j] = a[j]
            s2[4 * b0 + j] = b[j]


def moments(members, w1, w2, dim, seed, generation, stream, backend):
    """Weighted first and second moments of noise rows, regenerated by counter (no ``(rows, dim)`` matrix):
    ``s1 = Σ_r w1_r ε_r`` and ``s2 = Σ_r w2_r ε_r²``, float64 ``(dim,)`` on ``backend``."""
    if backend.name == "numpy":
        return moments_reference(members, w1, w2, dim, seed, generation, stream)
    xp = backend.xp
    w1, w2 = xp.ascontiguousarray(w1, dtype=np.float64), xp.ascontiguousarray(w2, dtype=np.float64)
    s1, s2 = xp.zeros(dim), xp.zeros(dim)
    if backend.name == "numba":
        # A row weighted 0 in both sums adds ±0 to sums that start at +0 (z is always finite), which changes
        # no bit of them: skip it (half the rows of a Sep-CMA-ES or SNES update).
        used = np.flatnonzero((w1 != 0) | (w2 != 0))
        if len(used) < len(w1):
            members, w1, w2 = members[used], w1[used], w2[used]
        at = _KEPT.find(members, dim, seed, generation, stream)
        if at is not None:
            _moments_kept(_KEPT.z, at, w1, w2, s1, s2)
        else:
            _moments_numba(members, w1, w2, seed, generation, stream, s1, s2)
    elif dim and len(members):
        for name, a in (("w1", w1), ("w2", w2), ("s1", s1), ("s2", s2)):
            cuda.check_device_array(name, a, np.float64)
        cuda.check_device_array("members", members, np.uint32)
        cuda.load("noise.cu").get_function("noise_moments")(
            cuda.grid((dim + 3) // 4), (cuda.BLOCK,),
            (members, np.int32(len(members)), np.int32(dim), np.uint32(seed), np.uint32(generation),
             np.uint32(stream), w1, w2, s1, s2))
    return s1, s2


# ------------------------------------------------------------------------------------------------------ dispatch
def philox_uint32(members, dim, seed, generation, stream, backend):
    """uint32 words ``(len(members), dim)`` on ``backend`` (members: uint32 array of that backend)."""
    return _generate("philox_uint32", members, dim, seed, generation, stream, backend)


def gaussian(members, dim, seed, generation, stream, backend):
    """float32 standard normals ``(len(members), dim)`` on ``backend``."""
    return _generate("gaussian", members, dim, seed, generation, stream, backend)


def _generate(kind, members, dim, seed, generation, stream, backend):
    dtype, reference, twin = _KINDS[kind]
    if backend.name == "numpy":
        return reference(members, dim, seed, generation, stream)
    out = backend.xp.empty((len(members), dim), dtype=dtype)
    if backend.name == "numba":
        twin(members, seed, generation, stream, out)
    else:
        _launch(kind, members, seed, generation, stream, out)
    return out


_KINDS = {"philox_uint32": (np.uint32, philox_uint32_reference, _philox_uint32_numba),
          "gaussian": (np.float32, gaussian_reference, _gaussian_numba)}


def _launch(kernel, members, seed, generation, stream, out):
    cuda.check_device_array("members", members, np.uint32)
    rows, dim = out.shape
    if rows == 0 or dim == 0:
        return
    threads = rows * ((dim + 3) // 4)
    cuda.load("noise.cu").get_function(kernel)(
        cuda.grid(threads), (cuda.BLOCK,),
        (members, np.int32(rows), np.int32(dim), np.uint32(seed), np.uint32(generation), np.uint32(stream), out))
