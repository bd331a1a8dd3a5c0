// Masked dense layers for a population: one thread per (batch element b, output j, member p).
// Feature-major activations: x[p][i][b] (member stride 0 when the input is shared), out[p][j][b].
// Consecutive threads take consecutive b, so x reads and out writes coalesce; the weight is a broadcast.
// Numba twins: esprune/ops/dense.py. Both sum over ascending input index i.
#include "activations.cuh"

extern "C" __global__ void dense_layer(const float* x, long long x_stride, int n_in,
                                       const float* w, long long w_off, long long w_stride,
                                       const float* theta, long long b_off, long long d,
                                       int B, int n_out, int act, float* out) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    const int j = blockIdx.y, p = blockIdx.z;
    if (b >= B) return;
    const float* xm = x + p * x_stride + b;
    const float* wm = w + p * w_stride + w_off + j;
    float acc = 0.0f;
    for (int i = 0; i < n_in; ++i) acc = fmaf(wm[(long long)i * n_out], xm[(long long)i * B], acc);
    out[((long long)p * n_out + j) * B + b] = activate(acc + theta[p * d + b_off + j], act);
}

extern "C" __global__ void sparse_layer(const float* x, long long x_stride, int n_in,
                                        const float* theta, long long d, long long w_off,
                                        const int* colptr, const int* rows, const int* src, long long b_off,
                                        int B, int n_out, int act, float* out) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    const int j = blockIdx.y, p = blockIdx.z;
    if (b >= B) return;
    const float* xm = x + p * x_stride + b;
    const float* wm = theta + p * d + w_off;
    float acc = 0.0f;
    for (int k = colptr[j]; k < colptr[j + 1]; ++k) acc = fmaf(wm[src[k]], xm[(long long)rows[k] * B], acc);
    out[((long long)p * n_out + j) * B + b] = activate(acc + theta[p * d + b_off + j], act);
}
