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
