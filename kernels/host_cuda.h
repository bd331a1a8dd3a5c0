// Host emulation of the CUDA subset esprune's kernels use, so that the very .cu sources run on a CPU with no GPU
// (esprune/ops/host_cuda.py compiles them with g++ against this header and launches them through ctypes).
// The tests compare the emulated kernels with their numba twins on every run; on a device the same sources go
// through NVRTC instead and this file is not used.
//
// Threads run one after another, block by block: that is a faithful CUDA schedule only for kernels whose threads
// never cooperate, which is true of every kernel here. Shared memory, barriers, warp intrinsics and atomics are
// therefore not emulated, and a kernel that uses them fails to compile on the host rather than run wrongly.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// NVRTC (what CuPy compiles with) sees no host headers: the C library's macros do not exist there, so they
// must not exist here either, or a kernel that uses them would pass on the host and fail on the device.
#undef INFINITY
#undef NAN
#undef HUGE_VAL
#undef HUGE_VALF

#ifdef ESPRUNE_HOST_SCAN
#define __global__ __esprune_kernel__  // a marker the launcher generator finds in the preprocessed source
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static_assert(false, "host emulation runs threads one by one: no shared memory");
#define __syncthreads() static_assert(false, "host emulation runs threads one by one: no barriers")

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

// The built-in indices of the thread being run (CUDA's are unsigned int, and so are these).
static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

__device__ __forceinline__ unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}

__device__ __forceinline__ float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

namespace esprune_host {

// Every thread of every block, in CUDA's linear order (x fastest); returns the number of threads run.
template <class Kernel>
unsigned long long launch(const unsigned int* grid, const unsigned int* block, Kernel kernel) {
    gridDim.x = grid[0]; gridDim.y = grid[1]; gridDim.z = grid[2];
    blockDim.x = block[0]; blockDim.y = block[1]; blockDim.z = block[2];
    unsigned long long threads = 0;
    for (blockIdx.z = 0; blockIdx.z < grid[2]; ++blockIdx.z)
        for (blockIdx.y = 0; blockIdx.y < grid[1]; ++blockIdx.y)
            for (blockIdx.x = 0; blockIdx.x < grid[0]; ++blockIdx.x)
                for (threadIdx.z = 0; threadIdx.z < block[2]; ++threadIdx.z)
                    for (threadIdx.y = 0; threadIdx.y < block[1]; ++threadIdx.y)
                        for (threadIdx.x = 0; threadIdx.x < block[0]; ++threadIdx.x, ++threads) kernel();
    return threads;
}

}  // namespace esprune_host
