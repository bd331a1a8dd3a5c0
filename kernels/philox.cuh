// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and Box-Muller.
// The numba twin is esprune/ops/noise.py; the two must produce bit-identical uint32 streams.
#pragma once

struct uint4x32 { unsigned int v[4]; };

__device__ __forceinline__ uint4x32 philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                                  unsigned int c3, unsigned int k0, unsigned int k1) {
    const unsigned int M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const unsigned int W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        const unsigned int hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        const unsigned int hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        const unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += W0; k1 += W1;
    }
    uint4x32 out = {{c0, c1, c2, c3}};
    return out;
}

// Two normals from two uint32 words; u1 in (0, 1] so the log is finite, u2 in [0, 1).
// Float32 throughout, matching the numpy and numba paths to float32 rounding.
__device__ __forceinline__ void box_muller(unsigned int a, unsigned int b, float* z0, float* z1) {
    const float scale = 5.9604644775390625e-08f;  // 2**-24
    const float u1 = (float)((a >> 8) + 1u) * scale;
    const float u2 = (float)(b >> 8) * scale;
    const float r = sqrtf(-2.0f * logf(u1));
    const float theta = 6.2831853071795864769f * u2;
    *z0 = r * cosf(theta);
    *z1 = r * sinf(theta);
}
