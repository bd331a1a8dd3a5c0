// Counter-based population noise. Key = (seed, generation); counter = (block, member, stream, 0).
// One thread per (row, block of 4 values); the numba twin is esprune/ops/noise.py (same mapping).
#include "philox.cuh"

extern "C" __global__ void philox_uint32(const unsigned int* members, int n_rows, int dim,
                                         unsigned int seed, unsigned int generation, unsigned int stream,
                                         unsigned int* out) {
    const int blocks = (dim + 3) / 4;
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n_rows * blocks) return;
    const int row = (int)(t / blocks), blk = (int)(t % blocks);
    const uint4x32 r = philox4x32_10((unsigned int)blk, members[row], stream, 0u, seed, generation);
    unsigned int* dst = out + (long long)row * dim + 4LL * blk;
    for (int w = 0; w < 4 && 4 * blk + w < dim; ++w) dst[w] = r.v[w];
}

extern "C" __global__ void gaussian(const unsigned int* members, int n_rows, int dim,
                                    unsigned int seed, unsigned int generation, unsigned int stream,
                                    float* out) {
    const int blocks = (dim + 3) / 4;
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n_rows * blocks) return;
    const int row = (int)(t / blocks), blk = (int)(t % blocks);
    const uint4x32 r = philox4x32_10((unsigned int)blk, members[row], stream, 0u, seed, generation);
    float z[4];
    box_muller(r.v[0], r.v[1], &z[0], &z[1]);
    box_muller(r.v[2], r.v[3], &z[2], &z[3]);
    float* dst = out + (long long)row * dim + 4LL * blk;
    for (int w = 0; w < 4 && 4 * blk + w < dim; ++w) dst[w] = z[w];
}

// Weighted moments of regenerated noise rows, for the ES updates: s1[j] = sum_r w1[r] z[r][j] and
// s2[j] = sum_r w2[r] z[r][j]^2 (double sums, rows in ascending order). One thread per block of 4 columns
// loops over the rows, so the (rows, dim) noise matrix never exists. Numba twin: _moments_numba.
extern "C" __global__ void noise_moments(const unsigned int* members, int n_rows, int dim,
                                         unsigned int seed, unsigned int generation, unsigned int stream,
                                         const double* w1, const double* w2, double* s1, double* s2) {
    const int blocks = (dim + 3) / 4;
    const int blk = blockIdx.x * blockDim.x + threadIdx.x;
    if (blk >= blocks) return;
    double a[4] = {0.0, 0.0, 0.0, 0.0}, b[4] = {0.0, 0.0, 0.0, 0.0};
    for (int row = 0; row < n_rows; ++row) {
        const uint4x32 r = philox4x32_10((unsigned int)blk, members[row], stream, 0u, seed, generation);
        float z[4];
        box_muller(r.v[0], r.v[1], &z[0], &z[1]);
        box_muller(r.v[2], r.v[3], &z[2], &z[3]);
        const double u = w1[row], v = w2[row];
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const double x = (double)z[w];
            a[w] += u * x;
            b[w] += v * x * x;
        }
    }
    for (int w = 0; w < 4 && 4 * blk + w < dim; ++w) {
        s1[4 * blk + w] = a[w];
        s2[4 * blk + w] = b[w];
    }
}

// A population from regenerated noise in one pass: out[i][j] = (float)(mean[j] + scale[j] * (signs[i] * z[rows[i]][j]))
// in double, so antithetic members (sign -1) and any std vector need no (P, d) temporaries. One thread per
// (member, block of 4 values). Numba twin: _sample_numba.
extern "C" __global__ void sample_members(const unsigned int* rows, const double* signs, int n, int dim,
                                          unsigned int seed, unsigned int generation, unsigned int stream,
                                          const double* mean, const double* scale, float* out) {
    const int blocks = (dim + 3) / 4;
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n * blocks) return;
    const int i = (int)(t / blocks), blk = (int)(t % blocks);
    const uint4x32 r = philox4x32_10((unsigned int)blk, rows[i], stream, 0u, seed, generation);
    float z[4];
    box_muller(r.v[0], r.v[1], &z[0], &z[1]);
    box_muller(r.v[2], r.v[3], &z[2], &z[3]);
    for (int w = 0; w < 4 && 4 * blk + w < dim; ++w) {
        const int j = 4 * blk + w;
        out[(long long)i * dim + j] = (float)(mean[j] + scale[j] * (signs[i] * (double)z[w]));
    }
}
