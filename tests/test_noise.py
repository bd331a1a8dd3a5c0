"""Counter-based noise: Philox known answers, cross-backend identity, regeneration, distribution sanity."""
import numpy as np
import pytest
from scipy import stats

from esprune import noise
from esprune.errors import UserError

# Random123's published known-answer vectors for philox4x32_10 (kat_vectors): counter, key -> output.
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert noise.philox4x32_10(counter, key).tolist() == expected


def test_stream_layout_is_philox_of_block_member_stream():
    words = noise.philox_uint32(seed=11, generation=3, members=[5], dim=8, stream=2)
    for blk in range(2):
        block = noise.philox4x32_10([blk, 5, 2, 0], [11, 3])
        assert words[0, 4 * blk:4 * blk + 4].tolist() == block.tolist()


@pytest.mark.parametrize("dim", [1, 3, 4, 13, 1000])
def test_uint32_bit_identical_numpy_numba(dim):
    members = [0, 1, 2, 99, 2**32 - 1]
    a = noise.philox_uint32(7, 123, members, dim, backend="numpy")
    b = noise.philox_uint32(7, 123, members, dim, backend="numba")
    assert a.dtype == b.dtype == np.uint32 and a.shape == (5, dim)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dim", [1, 2, 5, 4096 + 3])
def test_gaussian_numpy_numba_agree_to_float32_rounding(dim):
    a = noise.gaussian(3, 9, 64, dim, backend="numpy")
    b = noise.gaussian(3, 9, 64, dim, backend="numba")
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_gaussian_is_box_muller_of_the_words():
    words = noise.philox_uint32(1, 2, [4], 4).astype(np.float64)[0]
    u1, u2 = (np.floor(words[0::2] / 256) + 1) / 2**24, np.floor(words[1::2] / 256) / 2**24
    r = np.sqrt(-2 * np.log(u1))
    expected = np.stack([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1).reshape(-1)
    np.testing.assert_allclose(noise.gaussian(1, 2, [4], 4)[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_any_subset_of_members_regenerates_its_rows(backend):
    full = noise.gaussian(5, 6, 50, 37, backend=backend)
    subset = [49, 3, 3, 17]
    np.testing.assert_array_equal(noise.gaussian(5, 6, subset, 37, backend=backend), full[subset])
    np.testing.assert_array_equal(noise.philox_uint32(5, 6, subset, 37, backend=backend),
                                  noise.philox_uint32(5, 6, 50, 37, backend=backend)[subset])


def test_keys_and_streams_give_different_numbers():
    base = noise.philox_uint32(1, 1, 4, 64)
    for other in (noise.philox_uint32(2, 1, 4, 64), noise.philox_uint32(1, 2, 4, 64),
                  noise.philox_uint32(1, 1, 4, 64, stream=noise.RESET)):
        assert (base != other).mean() > 0.99


def test_gaussian_moments_and_independence():
    z = noise.gaussian(2024, 0, 256, 4096, backend="numba").astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(z.ravel())) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z.ravel())) < 5 * np.sqrt(24 / n)
    # Neighbours inside a Box-Muller pair, across blocks and across members are uncorrelated.
    for a, b in ((z[:, 0::2], z[:, 1::2]), (z[:, :-4], z[:, 4:]), (z[:-1], z[1:])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)
    assert stats.kstest(z[:8].ravel(), "norm").pvalue > 1e-4


def test_uint32_words_are_uniform():
    w = noise.philox_uint32(9, 9, 64, 4096, backend="numba").ravel()
    counts = np.bincount((w >> 28).astype(np.int64), minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-4


@pytest.mark.parametrize("kwargs", [dict(seed=-1), dict(seed=2**32), dict(generation=-5), dict(dim=-1),
                                    dict(members=[[1, 2]]), dict(members=[-1])])
def test_bad_arguments_are_user_errors(kwargs):
    args = dict(seed=0, generation=0, members=3, dim=4) | kwargs
    with pytest.raises(UserError):
        noise.gaussian(**args)


@pytest.mark.parametrize("dim", [1, 7, 4099])
def test_cupy_equals_numba(cupy_backend, dim):
    members = [0, 5, 77, 2**31]
    a = noise.philox_uint32(8, 4, members, dim, backend="numba")
    b = noise.philox_uint32(8, 4, members, dim, backend=cupy_backend)
    np.testing.assert_array_equal(a, cupy_backend.to_numpy(b))
    g = noise.gaussian(8, 4, members, dim, backend="numba")
    h = noise.gaussian(8, 4, members, dim, backend=cupy_backend)
    np.testing.assert_allclose(g, cupy_backend.to_numpy(h), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("dim", [1, 6, 1000 + 3])
def test_moments_numba_equal_the_matrix_reference(dim, rng):
    members = np.array([0, 4, 9, 2**20], dtype=np.uint32)
    w1, w2 = rng.standard_normal(4), rng.standard_normal(4)
    ref1, ref2 = noise.moments(7, 3, members, w1, w2, dim, backend="numpy")
    z = noise.gaussian(7, 3, members, dim).astype(np.float64)  # the obvious way: the whole matrix
    np.testing.assert_allclose(ref1, w1 @ z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref2, w2 @ (z * z), rtol=1e-12, atol=1e-12)
    s1, s2 = noise.moments(7, 3, members, w1, w2, dim, backend="numba")
    np.testing.assert_allclose(s1, ref1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s2, ref2, rtol=1e-5, atol=1e-5)


def test_moments_numba_skip_zero_weight_rows_without_changing_a_bit(rng):
    """Rows weighted 0 in both sums (the non-elite half of a Sep-CMA-ES update) are skipped; the sums still
    equal, bit for bit, the row-by-row float64 sums over every row in ascending order, zeros (±0) included."""
    members = np.arange(12, dtype=np.uint32)
    w1, w2 = rng.standard_normal(12), rng.standard_normal(12)
    w1[[1, 4, 5, 11]], w2[[1, 4, 5, 11]] = 0.0, -0.0
    w1[7] = 0.0  # w2 still counts: the row is kept
    z = noise.gaussian(7, 3, members, 203, backend="numba").astype(np.float64)
    ref1, ref2 = np.zeros(203), np.zeros(203)
    for r in range(12):
        ref1, ref2 = ref1 + w1[r] * z[r], ref2 + w2[r] * z[r] * z[r]
    s1, s2 = noise.moments(7, 3, members, w1, w2, 203, backend="numba")
    np.testing.assert_array_equal(s1, ref1)
    np.testing.assert_array_equal(s2, ref2)


def test_moments_read_the_normals_kept_by_sample_bit_for_bit(rng):
    """After a numba sample, the moments of its rows come from the kept normals (ops/noise.py: _Kept): they
    equal the regenerated ones bit for bit, for rows in any order, an antithetic layout (rows twice), and
    members the sample did not draw, or another generation (regenerated)."""
    from esprune.ops import noise as ops_noise

    dim, rows = 301, np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], dtype=np.uint32)
    signs = np.repeat([1.0, -1.0], 5)
    noise.sample(9, 4, rows, signs, np.zeros(dim), np.ones(dim), backend="numba")
    w1, w2 = rng.standard_normal(5), rng.standard_normal(5)
    for members, generation in (([3, 0, 4, 1, 2], 4), ([4, 2, 7], 4), ([0, 1, 2], 5)):
        members = np.array(members, dtype=np.uint32)
        n = len(members)
        kept = ops_noise._KEPT.find(members, dim, 9, generation, 0)
        assert (kept is not None) == (generation == 4 and members.max() < 5)
        got = noise.moments(9, generation, members, w1[:n], w2[:n], dim, backend="numba")
        key, ops_noise._KEPT.key = ops_noise._KEPT.key, None  # regenerate
        fresh = noise.moments(9, generation, members, w1[:n], w2[:n], dim, backend="numba")
        ops_noise._KEPT.key = key
        np.testing.assert_array_equal(got[0], fresh[0])
        np.testing.assert_array_equal(got[1], fresh[1])
    np.testing.assert_allclose(got[0], noise.moments(9, 5, members, w1[:3], w2[:3], dim)[0], rtol=1e-5, atol=1e-5)


def test_moments_kernel_equals_numba_twin(cupy_backend, rng):
    w1, w2 = rng.standard_normal(64), rng.standard_normal(64)
    s1, s2 = noise.moments(5, 11, 64, w1, w2, 4099, backend="numba")
    g1, g2 = noise.moments(5, 11, 64, cupy_backend.asarray(w1), cupy_backend.asarray(w2), 4099, backend=cupy_backend)
    np.testing.assert_allclose(cupy_backend.to_numpy(g1), s1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cupy_backend.to_numpy(g2), s2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sample_is_mean_plus_scale_times_signed_noise_rows(backend, rng):
    dim = 37
    rows, signs = np.array([0, 1, 0, 1, 2], dtype=np.uint32), np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    mean, scale = rng.standard_normal(dim), rng.uniform(0.1, 2.0, dim)
    pop = noise.sample(4, 7, rows, signs, mean, scale, backend=backend)
    z = noise.gaussian(4, 7, 3, dim).astype(np.float64)  # the obvious way: whole rows, then the formula
    expected = (mean + scale * (signs[:, None] * z[rows])).astype(np.float32)
    assert pop.dtype == np.float32 and pop.shape == (5, dim)
    np.testing.assert_allclose(pop, expected, rtol=1e-5, atol=1e-5)


def test_sample_kernel_equals_numba_twin(cupy_backend, rng):
    rows, signs = np.arange(64, dtype=np.uint32) % 32, np.where(np.arange(64) < 32, 1.0, -1.0)
    mean, scale = rng.standard_normal(4099), rng.uniform(0.1, 2.0, 4099)
    cpu = noise.sample(5, 11, rows, signs, mean, scale, backend="numba")
    gpu = noise.sample(5, 11, cupy_backend.asarray(rows), cupy_backend.asarray(signs), cupy_backend.asarray(mean),
                       cupy_backend.asarray(scale), backend=cupy_backend)
    np.testing.assert_allclose(cupy_backend.to_numpy(gpu), cpu, rtol=1e-5, atol=1e-6)
