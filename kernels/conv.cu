// Fused masked convolution block for a population: SAME cross-correlation + bias + ReLU + max-pool.
// One thread per pooled output (member p, image b, channel co, oy, ox); it computes the pool×pool conv outputs
// under its window from the tap list of channel co and keeps their maximum. Only active taps are listed, so a
// pruned tap costs nothing (the dense path is the same kernel with every tap listed).
// A tap over the zero border adds w * 0 (not skipped: a NaN or infinite weight then poisons every output of its
// channel, as in the numpy reference), and the max-pool and ReLU propagate NaN (fmaxf would drop it).
// x[px][b][ci][y][x] (member stride 0 when shared), out[p][b][co][oy][ox], theta[p][d] holds each member's
// parameters: tap k of channel co reads theta[p][src[k]] at input offset (ci[k], dy[k] - pad, dx[k] - pad).
// Numba twin: esprune/ops/conv.py (same tap order: ascending ci, dy, dx within a channel; same zero border,
// same NaN-propagating max).

// a where a > b or a is NaN, else b: a NaN in either operand is the result, as numpy's maximum
__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }

extern "C" __global__ void conv_block(const float* x, long long x_stride, int C_in, int H, int W,
                                      const float* theta, long long d,
                                      const int* tap_ptr, const int* tap_ci, const int* tap_dy, const int* tap_dx,
                                      const int* tap_src, long long b_off, int pad, int pool,
                                      int P, int B, int C_out, int Ho, int Wo, float* out) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long total = (long long)P * B * C_out * Ho * Wo;
    if (t >= total) return;
    const int ox = t % Wo;
    const int oy = (t / Wo) % Ho;
    const int co = (t / ((long long)Wo * Ho)) % C_out;
    const int b = (t / ((long long)Wo * Ho * C_out)) % B;
    const int p = t / ((long long)Wo * Ho * C_out * B);
    const float* xi = x + p * x_stride + (long long)b * C_in * H * W;
    const float* wm = theta + p * d;
    float best = __int_as_float(0xff800000);  // -inf: NVRTC has no host headers, so no INFINITY macro
    for (int py = 0; py < pool; ++py) {
        for (int px = 0; px < pool; ++px) {
            const int y = oy * pool + py, xx = ox * pool + px;
            float acc = 0.0f;
            for (int k = tap_ptr[co]; k < tap_ptr[co + 1]; ++k) {
                const int iy = y + tap_dy[k] - pad, ix = xx + tap_dx[k] - pad;
                const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
                acc = fmaf(wm[tap_src[k]], inside ? xi[((long long)tap_ci[k] * H + iy) * W + ix] : 0.0f, acc);
            }
            best = max_nan(best, acc);
        }
    }
    out[t] = max_nan(best + wm[b_off + co], 0.0f);
}
