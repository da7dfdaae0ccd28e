/* Fused CPU kernels of the two running maxima of drawing (npdraw/parts/canvas.py): the prefix canvases
 * every step of the prior reads, and the final canvas of relaxed latents.
 *
 * PyTorch computes both as chains of element-wise operations over (B, T, T_c, D) tensors (18 MB in fp32
 * at MNIST training settings), each one a pass through memory; here one pass over each image's steps
 * keeps an image's (T_c, D) running canvas in L1.  Every function splits its batch of B images over
 * `threads` OpenMP threads, statically (an image's values never depend on the split); compiled with
 * -fopenmp, the library shares the OpenMP runtime PyTorch has loaded (same soname), whose threads wait
 * spinning for work after each of PyTorch's parallel regions: a second thread pool would lose its core
 * to them.  All tensors are contiguous.  Values are those of the PyTorch formulation bit for bit: a
 * product w * p is rounded to the tensors' dtype before it is compared, as PyTorch's element-wise
 * product is, and max(a, NaN) is NaN.  Gradients are summed in fp32 (the
 * PyTorch formulation also sums in fp32, in another order: the two agree to rounding).
 *
 * Names end in the dtype of where and parts: f32 (float) or bf16 (uint16_t holding a bfloat16).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float f32_load(const float *p, int64_t i) { return p[i]; }
static inline float f32_round(float f) { return f; }
static inline float f32_exact(float f) { return f; }

static inline float bf16_load(const uint16_t *p, int64_t i) {
    uint32_t u = (uint32_t)p[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* fp32 -> bf16, round to nearest even (c10::BFloat16's rule); NaN stays NaN.  Branch-free, so that
 * the loops vectorise. */
static inline uint16_t bf16_store(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((f != f) ? 0x7FC0u : r);
}

/* fp32 -> bf16 for a value that is one already (the running maxima hold rounded products): its top
 * half, no rounding to do. */
static inline uint16_t bf16_exact(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static inline float bf16_round(float f) {
    uint32_t u = (uint32_t)bf16_store(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

/* torch.maximum's rule: NaN wins. */
static inline float max_nan(float cur, float v) { return (v >= cur || v != v) ? v : cur; }

#define PREFIX_KERNELS(NAME, T)                                                                        \
/* One step s of the running maximum: cur (T_c, D), the canvas before step s, becomes the canvas after  \
 * it; took_s (T_c, D) or NULL records where step s set the maximum (its product >= the canvas before   \
 * it: of tied steps, the latest). */                                                                 \
static inline void draw_step_##NAME(float *cur, uint8_t *took_s, const T *w_s, const T *p_s,          \
                                    int64_t nc, int64_t nd) {                                         \
    for (int64_t c = 0; c < nc; c++) {                                                                \
        const float wc = NAME##_load(w_s, c);                                                         \
        float *cc = cur + c * nd;                                                                     \
        for (int64_t d = 0; d < nd; d++) {               /* -O3 unswitches the loop on took_s */      \
            const float v = NAME##_round(wc * NAME##_load(p_s, d));                                   \
            if (took_s) took_s[c * nd + d] = v >= cc[d];                                              \
            cc[d] = max_nan(cc[d], v);                                                                \
        }                                                                                             \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* The backward of draw_step (torch.cummax's rule: the gradient of each canvas element goes to the      \
 * step that set its maximum): carried (T_c, D) holds the gradient that waits for the step that set     \
 * each element; where step s did, it becomes step s's, written to g_where_s (T_c) and g_parts_s (D,    \
 * added to). */                                                                                      \
static inline void carry_step_##NAME(float *carried, const uint8_t *took_s, const T *w_s, const T *p_s, \
                                     float *gw_s, float *gp_s, int64_t nc, int64_t nd) {              \
    for (int64_t c = 0; c < nc; c++) {                                                                \
        const float wc = NAME##_load(w_s, c);                                                         \
        float acc = 0.0f;                                                                             \
        for (int64_t d = 0; d < nd; d++) {                                                            \
            const uint8_t set = took_s[c * nd + d];                                                   \
            const float mine = set ? carried[c * nd + d] : 0.0f;                                      \
            carried[c * nd + d] = set ? 0.0f : carried[c * nd + d];                                   \
            acc += mine * NAME##_load(p_s, d);                                                        \
            gp_s[d] += mine * wc;                                                                     \
        }                                                                                             \
        gw_s[c] = acc;                                                                                \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* before[b, t] = max over s < t of where[b, s, :, None] * parts[b, s, None, :], zero at t = 0.        \
 * where (B, T, T_c), parts (B, T, D), before (B, T, T_c, D); took (B, T - 1, T_c, D) or NULL. */      \
void prefix_forward_##NAME(const T *where, const T *parts, T *before, uint8_t *took,                  \
                           int64_t nb, int64_t nt, int64_t nc, int64_t nd, int threads) {             \
    const int64_t n = nc * nd;                                                                        \
    _Pragma("omp parallel num_threads(threads)")                                                      \
    {                                                                                                 \
    float *cur = calloc(n, sizeof(float));                                                            \
    _Pragma("omp for schedule(static)")                                                               \
    for (int64_t b = 0; b < nb; b++) {                                                                \
        memset(cur, 0, sizeof(float) * n);                                                            \
        for (int64_t s = 0; s < nt; s++) {                                                            \
            T *o = before + (b * nt + s) * n;                                                         \
            for (int64_t i = 0; i < n; i++) o[i] = NAME##_exact(cur[i]);                              \
            if (s + 1 < nt)                                                                           \
                draw_step_##NAME(cur, took ? took + (b * (nt - 1) + s) * n : NULL,                    \
                                 where + (b * nt + s) * nc, parts + (b * nt + s) * nd, nc, nd);       \
        }                                                                                             \
    }                                                                                                 \
    free(cur);                                                                                        \
    }                                                                                                 \
}                                                                                                     \
                                                                                                      \
/* Gradients of prefix_forward from grad (B, T, T_c, D) and took: g_where (B, T, T_c) and g_parts       \
 * (B, T, D), fp32, written whole. */                                                                 \
void prefix_backward_##NAME(const T *grad, const uint8_t *took, const T *where, const T *parts,        \
                            float *g_where, float *g_parts,                                           \
                            int64_t nb, int64_t nt, int64_t nc, int64_t nd, int threads) {            \
    const int64_t n = nc * nd;                                                                        \
    _Pragma("omp parallel num_threads(threads)")                                                      \
    {                                                                                                 \
    float *carried = calloc(n, sizeof(float));                                                        \
    _Pragma("omp for schedule(static)")                                                               \
    for (int64_t b = 0; b < nb; b++) {                                                                \
        memset(carried, 0, sizeof(float) * n);                                                        \
        memset(g_where + b * nt * nc, 0, sizeof(float) * nt * nc);                                    \
        memset(g_parts + b * nt * nd, 0, sizeof(float) * nt * nd);                                    \
        for (int64_t s = nt - 2; s >= 0; s--) {                                                       \
            const T *g = grad + (b * nt + s + 1) * n;                                                 \
            for (int64_t i = 0; i < n; i++) carried[i] += NAME##_load(g, i);                          \
            carry_step_##NAME(carried, took + (b * (nt - 1) + s) * n, where + (b * nt + s) * nc,      \
                              parts + (b * nt + s) * nd, g_where + (b * nt + s) * nc,                 \
                              g_parts + (b * nt + s) * nd, nc, nd);                                   \
        }                                                                                             \
    }                                                                                                 \
    free(carried);                                                                                    \
    }                                                                                                 \
}

PREFIX_KERNELS(f32, float)
PREFIX_KERNELS(bf16, uint16_t)

/* cells[b, c, d] = max over t of where[b, t, c] * parts[b, t, d], fp32: where (B, T, T_c), parts
 * (B, T, D), cells (B, T_c, D). */
void canvas_forward_f32(const float *where, const float *parts, float *cells,
                        int64_t nb, int64_t nt, int64_t nc, int64_t nd, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < nb; b++) {
        const float *w = where + b * nt * nc, *p = parts + b * nt * nd;
        float *o = cells + b * nc * nd;
        for (int64_t c = 0; c < nc; c++)
            for (int64_t d = 0; d < nd; d++) o[c * nd + d] = w[c] * p[d];
        for (int64_t s = 1; s < nt; s++)
            for (int64_t c = 0; c < nc; c++) {
                const float wc = w[s * nc + c];
                for (int64_t d = 0; d < nd; d++) o[c * nd + d] = max_nan(o[c * nd + d], wc * p[s * nd + d]);
            }
    }
}

/* Gradients of canvas_forward with torch.amax's rule: the gradient of a maximum is shared equally by
 * the steps whose product equals it (on a blank cell, every step).  grad and cells (B, T_c, D);
 * g_where (B, T, T_c) and g_parts (B, T, D), fp32, written whole. */
void canvas_backward_f32(const float *grad, const float *cells, const float *where, const float *parts,
                         float *g_where, float *g_parts,
                         int64_t nb, int64_t nt, int64_t nc, int64_t nd, int threads) {
    const int64_t n = nc * nd;
    #pragma omp parallel num_threads(threads)
    {
    float *share = malloc(sizeof(float) * n);
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; b++) {
        const float *w = where + b * nt * nc, *p = parts + b * nt * nd;
        const float *g = grad + b * n, *m = cells + b * n;
        float *gw = g_where + b * nt * nc, *gp = g_parts + b * nt * nd;
        for (int64_t i = 0; i < n; i++) share[i] = 0.0f;           /* first the number of tied steps */
        for (int64_t s = 0; s < nt; s++)
            for (int64_t c = 0; c < nc; c++) {
                const float wc = w[s * nc + c];
                for (int64_t d = 0; d < nd; d++)
                    share[c * nd + d] += (wc * p[s * nd + d] == m[c * nd + d]) ? 1.0f : 0.0f;
            }
        for (int64_t i = 0; i < n; i++) share[i] = g[i] / share[i];
        memset(gp, 0, sizeof(float) * nt * nd);
        for (int64_t s = 0; s < nt; s++)
            for (int64_t c = 0; c < nc; c++) {
                const float wc = w[s * nc + c];
                float acc = 0.0f;
                for (int64_t d = 0; d < nd; d++) {
                    const float mine = (wc * p[s * nd + d] == m[c * nd + d]) ? share[c * nd + d] : 0.0f;
                    acc += mine * p[s * nd + d];
                    gp[s * nd + d] += mine * wc;
                }
                gw[s * nc + c] = acc;
            }
    }
    free(share);
    }
}
