// Fused rollouts of the five classic-control environments: one thread per (member, episode) runs whole
// episodes (policy MLP forward + environment step + termination) with no host round trip.
// Numba twin: esprune/ops/rollout.py with the env modules' step/observe (esprune/tasks/<env>.py). The arithmetic
// is written operation for operation like the twin: float64 states, float32 policy (sums in ascending input
// order, bias after the sum, the same rational tanh), float32 where Gymnasium rounds (Pendulum's torque,
// MountainCarContinuous's state). esprune loads this file with --fmad=false so that no multiply-add is fused,
// as in the twin; the remaining difference is the double-precision libm (CUDA's sin/cos/fmod vs the host's).
#include "activations.cuh"

#define MAX_WIDTH 256  // widest policy layer a thread holds in registers/local memory (checked by the launcher)

// Python's float modulo: the result takes the sign of the divisor.
__device__ __forceinline__ double py_mod(double x, double m) {
    double r = fmod(x, m);
    if (r != 0.0) {
        if ((r < 0.0) != (m < 0.0)) r += m;
    } else {
        r = copysign(0.0, m);
    }
    return r;
}

// min(max(v, lo), hi) with Python's min/max, as the twins write it (and as np.clip does): a NaN stays NaN.
__device__ __forceinline__ double clampd(double v, double lo, double hi) {
    v = lo > v ? lo : v;
    return hi < v ? hi : v;
}
__device__ __forceinline__ float clampf(float v, float lo, float hi) { return py_minf(py_maxf(v, lo), hi); }

// ------------------------------------------------------------------------------------------------ CartPole-v1
struct CartPole {
    static const int STATE = 4, CONTINUOUS = 0;
    __device__ static void observe(const double* s, float* o) { for (int i = 0; i < 4; ++i) o[i] = (float)s[i]; }
    __device__ static double step(double* s, int action, float, bool* terminated) {
        const double GRAVITY = 9.8, MASSPOLE = 0.1, TOTAL_MASS = 0.1 + 1.0, LENGTH = 0.5;
        const double POLEMASS_LENGTH = 0.1 * 0.5, FORCE_MAG = 10.0, TAU = 0.02;
        const double THETA_THRESHOLD = 12 * 2 * 3.141592653589793 / 360, X_THRESHOLD = 2.4;
        const double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
        const double force = action == 1 ? FORCE_MAG : -FORCE_MAG;
        const double costheta = cos(theta), sintheta = sin(theta);
        const double temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
        const double thetaacc = (GRAVITY * sintheta - costheta * temp) /
                                (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
        const double xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
        s[0] = x + TAU * x_dot;
        s[1] = x_dot + TAU * xacc;
        s[2] = theta + TAU * theta_dot;
        s[3] = theta_dot + TAU * thetaacc;
        *terminated = s[0] < -X_THRESHOLD || s[0] > X_THRESHOLD || s[2] < -THETA_THRESHOLD || s[2] > THETA_THRESHOLD;
        return 1.0;
    }
};

// ------------------------------------------------------------------------------------------------ Acrobot-v1
struct Acrobot {
    static const int STATE = 4, CONTINUOUS = 0;
    __device__ static void observe(const double* s, float* o) {
        o[0] = (float)cos(s[0]); o[1] = (float)sin(s[0]);
        o[2] = (float)cos(s[1]); o[3] = (float)sin(s[1]);
        o[4] = (float)s[2]; o[5] = (float)s[3];
    }
    __device__ static void derivs(double t1, double t2, double d1_, double d2_, double a, double* k) {
        const double M1 = 1.0, M2 = 1.0, L1 = 1.0, LC1 = 0.5, LC2 = 0.5, I1 = 1.0, I2 = 1.0, G = 9.8;
        const double PI = 3.141592653589793;
        const double d1 = M1 * (LC1 * LC1) + M2 * ((L1 * L1) + (LC2 * LC2) + 2 * L1 * LC2 * cos(t2)) + I1 + I2;
        const double d2 = M2 * ((LC2 * LC2) + L1 * LC2 * cos(t2)) + I2;
        const double phi2 = M2 * LC2 * G * cos(t1 + t2 - PI / 2.0);
        const double phi1 = (-M2 * L1 * LC2 * (d2_ * d2_) * sin(t2) - 2 * M2 * L1 * LC2 * d2_ * d1_ * sin(t2)
                             + (M1 * LC1 + M2 * L1) * G * cos(t1 - PI / 2) + phi2);
        const double dd2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * (d1_ * d1_) * sin(t2) - phi2) /
                           (M2 * (LC2 * LC2) + I2 - (d2 * d2) / d1);
        const double dd1 = -(d2 * dd2 + phi1) / d1;
        k[0] = d1_; k[1] = d2_; k[2] = dd1; k[3] = dd2;
    }
    __device__ static double wrap(double x, double m, double M) {
        const double diff = M - m;
        while (x > M) x = x - diff;
        while (x < m) x = x + diff;
        return x;
    }
    __device__ static double step(double* s, int action, float, bool* terminated) {
        const double DT = 0.2, PI = 3.141592653589793, MAX_VEL_1 = 4 * PI, MAX_VEL_2 = 9 * PI;
        const double a = action == 0 ? -1.0 : (action == 1 ? 0.0 : 1.0);
        const double y0 = s[0], y1 = s[1], y2 = s[2], y3 = s[3], h2 = DT / 2.0;
        double k1[4], k2[4], k3[4], k4[4];
        derivs(y0, y1, y2, y3, a, k1);
        derivs(y0 + h2 * k1[0], y1 + h2 * k1[1], y2 + h2 * k1[2], y3 + h2 * k1[3], a, k2);
        derivs(y0 + h2 * k2[0], y1 + h2 * k2[1], y2 + h2 * k2[2], y3 + h2 * k2[3], a, k3);
        derivs(y0 + DT * k3[0], y1 + DT * k3[1], y2 + DT * k3[2], y3 + DT * k3[3], a, k4);
        const double c = DT / 6.0;
        s[0] = wrap(y0 + c * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]), -PI, PI);
        s[1] = wrap(y1 + c * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]), -PI, PI);
        s[2] = clampd(y2 + c * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2]), -MAX_VEL_1, MAX_VEL_1);
        s[3] = clampd(y3 + c * (k1[3] + 2 * k2[3] + 2 * k3[3] + k4[3]), -MAX_VEL_2, MAX_VEL_2);
        *terminated = -cos(s[0]) - cos(s[1] + s[0]) > 1.0;
        return *terminated ? 0.0 : -1.0;
    }
};

// ------------------------------------------------------------------------------------------------ Pendulum-v1
struct Pendulum {
    static const int STATE = 2, CONTINUOUS = 1;
    __device__ static void observe(const double* s, float* o) {
        o[0] = (float)cos(s[0]); o[1] = (float)sin(s[0]); o[2] = (float)s[1];
    }
    __device__ static double step(double* s, int, float action, bool* terminated) {
        const double MAX_SPEED = 8.0, DT = 0.05, G = 10.0, M = 1.0, L = 1.0, PI = 3.141592653589793;
        const double th = s[0], thdot = s[1];
        const float u = clampf(action, -2.0f, 2.0f);
        const double norm = py_mod(th + PI, 2 * PI) - PI;
        const double costs = norm * norm + 0.1 * (thdot * thdot) + (double)(0.001f * (u * u));
        double newthdot = thdot + (3 * G / (2 * L) * sin(th) + (double)((float)(3.0 / (M * L * L)) * u)) * DT;
        newthdot = clampd(newthdot, -MAX_SPEED, MAX_SPEED);
        s[0] = th + newthdot * DT;
        s[1] = newthdot;
        *terminated = false;
        return -costs;
    }
};

// ------------------------------------------------------------------------------------------------ MountainCar-v0
struct MountainCar {
    static const int STATE = 2, CONTINUOUS = 0;
    __device__ static void observe(const double* s, float* o) { o[0] = (float)s[0]; o[1] = (float)s[1]; }
    __device__ static double step(double* s, int action, float, bool* terminated) {
        const double MIN_POSITION = -1.2, MAX_POSITION = 0.6, MAX_SPEED = 0.07, GOAL_POSITION = 0.5;
        const double FORCE = 0.001, GRAVITY = 0.0025;
        double position = s[0], velocity = s[1];
        velocity += (action - 1) * FORCE + cos(3 * position) * (-GRAVITY);
        velocity = clampd(velocity, -MAX_SPEED, MAX_SPEED);
        position = clampd(position + velocity, MIN_POSITION, MAX_POSITION);
        if (position == MIN_POSITION && velocity < 0) velocity = 0.0;
        s[0] = position; s[1] = velocity;
        *terminated = position >= GOAL_POSITION && velocity >= 0;
        return -1.0;
    }
};

// ------------------------------------------------------------------------------------------------ MountainCarContinuous-v0
struct MountainCarContinuous {
    static const int STATE = 2, CONTINUOUS = 1;
    __device__ static void observe(const double* s, float* o) { o[0] = (float)s[0]; o[1] = (float)s[1]; }
    __device__ static double step(double* s, int, float a, bool* terminated) {
        const double MIN_ACTION = -1.0, MAX_ACTION = 1.0, POWER = 0.0015;
        float position = (float)s[0], velocity = (float)s[1];
        const double gravity = 0.0025 * cos((double)(3.0f * position));
        float accel;
        if (a < MIN_ACTION || a > MAX_ACTION)  // the clipped force is a Python float: this term stays float64
            accel = (float)((a < MIN_ACTION ? MIN_ACTION : MAX_ACTION) * POWER - gravity);
        else
            accel = a * (float)POWER - (float)gravity;
        velocity = clampf(velocity + accel, (float)-0.07, (float)0.07);
        position = clampf(position + velocity, (float)-1.2, (float)0.6);
        if (position == (float)-1.2 && velocity < 0) velocity = 0.0f;
        s[0] = position; s[1] = velocity;
        *terminated = position >= (float)0.45 && velocity >= 0;
        return (*terminated ? 100.0 : 0.0) - ((double)a * (double)a) * 0.1;
    }
};

// ------------------------------------------------------------------------------------------------ the rollout
// theta[p]: member p's parameter row (active weights of each layer in C order, then its bias). The policy walks
// each layer's active entries in row-major order (esprune/ops/index.py: rows): entry q adds input rows[e0 + q]
// times theta[p][w_off + q] to output cols[e0 + q]. table (6 × n_layers, row-major) holds per layer w_off,
// b_off, e0, nnz (and two rows only the numba twin reads). Only active weights are visited, and each output
// sums its inputs in ascending order, as in the twin.
template <class Env>
__device__ void rollout(const float* theta, long long d, const int* sizes, const int* table, const int* rows,
                        const int* cols, int n_layers, int tanh_hidden, const double* resets, int E,
                        int max_steps, int P, double* returns, double* steps) {
    const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)P * E) return;
    const int p = (int)(t / E), e = (int)(t % E);
    const float* w = theta + (long long)p * d;
    double s[Env::STATE];
    for (int i = 0; i < Env::STATE; ++i) s[i] = resets[(long long)e * Env::STATE + i];
    float h[MAX_WIDTH], acc[MAX_WIDTH];
    double total = 0.0;
    int step = 0;
    while (step < max_steps) {
        Env::observe(s, h);
        for (int k = 0; k < n_layers; ++k) {
            const int n_out = sizes[k + 1];
            const int w_off = table[k], b_off = table[n_layers + k];
            const int e0 = table[2 * n_layers + k], nnz = table[3 * n_layers + k];
            for (int j = 0; j < n_out; ++j) acc[j] = 0.0f;
            for (int q = 0; q < nnz; ++q) acc[cols[e0 + q]] += w[w_off + q] * h[rows[e0 + q]];
            for (int j = 0; j < n_out; ++j) {
                float v = acc[j] + w[b_off + j];
                if (k < n_layers - 1) v = tanh_hidden ? fast_tanh(v) : py_maxf(v, 0.0f);
                h[j] = v;
            }
        }
        int best = 0;  // numpy's argmax: the first largest output, or the first NaN
        if (!Env::CONTINUOUS)
            for (int j = 1; j < sizes[n_layers] && h[best] == h[best]; ++j) if (h[j] > h[best] || h[j] != h[j]) best = j;
        bool terminated = false;
        total += Env::step(s, best, h[0], &terminated);
        ++step;
        if (terminated) break;
    }
    returns[(long long)p * E + e] = total;
    steps[(long long)p * E + e] = step;
}

#define ROLLOUT_KERNEL(name, Env)                                                                              \
    extern "C" __global__ void name(const float* theta, long long d, const int* sizes, const int* table,      \
                                    const int* rows, const int* cols, int n_layers, int tanh_hidden,          \
                                    const double* resets, int E, int max_steps, int P, double* returns,       \
                                    double* steps) {                                                          \
        rollout<Env>(theta, d, sizes, table, rows, cols, n_layers, tanh_hidden, resets, E, max_steps, P,     \
                     returns, steps);                                                                          \
    }

ROLLOUT_KERNEL(rollout_cartpole, CartPole)
ROLLOUT_KERNEL(rollout_acrobot, Acrobot)
ROLLOUT_KERNEL(rollout_pendulum, Pendulum)
ROLLOUT_KERNEL(rollout_mountain_car, MountainCar)
ROLLOUT_KERNEL(rollout_mountain_car_continuous, MountainCarContinuous)
