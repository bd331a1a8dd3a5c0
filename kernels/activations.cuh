// Activation codes shared by the layer kernels (esprune/ops/dense.py: ACTIVATIONS).
#pragma once

// Python's max(a, b) and min(a, b) (what the numba twins call): a unless b is strictly larger (smaller), so a NaN
// first argument stays NaN. fmaxf/fminf would drop it and turn a NaN activation into a finite one.
__device__ __forceinline__ float py_maxf(float a, float b) { return b > a ? b : a; }
__device__ __forceinline__ float py_minf(float a, float b) { return b < a ? b : a; }

// The same rational tanh as the numba twin (Eigen's float32 tanh, also XLA's): a few ulp from tanhf.
__device__ __forceinline__ float fast_tanh(float v) {
    v = py_minf(py_maxf(v, -7.90531110763549805f), 7.90531110763549805f);  // NaN stays NaN
    const float x2 = v * v;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return v * p / q;
}

__device__ __forceinline__ float activate(float v, int act) {
    if (act == 1) return fast_tanh(v);
    if (act == 2) return py_maxf(v, 0.0f);
    return v;
}
