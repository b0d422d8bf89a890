/* The sparse net's one hot loop, in C so that it can be compiled for more than one vector ISA,
 * the best the CPU has picked at run time (wheels are built for plain x86-64: SSE2 only):
 *
 *     out[j] = (...((out[j] + s[0] * base[rows[0], j]) + s[1] * base[rows[1], j]) + ...)   j < n
 *
 * the signed sum of `count` rows of the row-major (., n) matrix `base`, in the order given, added
 * to `out`, each s[k] -1 or +1. The forward's x @ w1 is this with out zeroed (base w1, rows a step's
 * pixels); the gradient's grad_w1 rows are this with out a row of grad_w1 (base grad_h, rows the
 * steps where the pixel changed).
 *
 * Rows and signs come in one of two forms: `_s16`, a short row number rows[k] and its sign
 * signs[k] (a step's pixels and their signs, as the episodes keep them); `_p32`, the gradient's,
 * each sign packed into its int row number, rows[k] = t for +1 and ~t (-t - 1) for -1 (signs
 * unused: NULL), so that the counting sort that makes these lists writes one array, not two.
 *
 * Every version below computes each out[j] by the same float operations in the same order,
 * whatever its vector width or blocking: a sign times a value is exact, and the adds into out[j]
 * come in k order (an FMA of s * x + acc rounds once, the same as the add). So results are bitwise
 * the same on every CPU and in every module that includes this header: pong_step's logits and
 * sparse_mlp_forward's agree bit for bit, as the trainer needs.
 *
 * What makes it fast, in ns a step of real Pong rows (56 indices of 12800 on average, w1 from
 * NumPy, medians on a Zen 3 core; the plain loop without prefetch is the Cython loop it replaced):
 *
 *                              n = 200    n = 64
 *     plain loop                  2500       800
 *     plain loop, prefetch        1650       560
 *     16-byte vectors, blocked    1650       450
 *     AVX2 + FMA, blocked         1100       280
 *
 * - AVX2 with FMA where the CPU has it: 32-byte vectors, one instruction a vector and row;
 * - a block of out kept in registers (up to 13 AVX2 vectors) while every row is added into it: one
 *   load a vector and row, where the plain loop loads and stores out for each row (a chain through
 *   memory, store to load, that the 64-unit value net spent most of its time in). A row of more
 *   vectors than that is split into as few passes as the registers allow, of near-equal sizes
 *   (200 floats: 13 + 12 vectors), each reading the indices and signs again;
 * - rows prefetched PGCORE_ROWS_AHEAD indices ahead, past this call's rows into the caller's next
 *   ones (`ahead`: how many indices from rows[0] on are readable): w1 (10 MB for 12800 x 200) is not
 *   in L2, and a row's address is known long before its turn. It pays most in the plain loop.
 *
 * Versions: level 2, AVX2 + FMA, on x86-64 CPUs that have both (__builtin_cpu_supports); level 1,
 * 16-byte vectors (SSE2 on x86-64, NEON on arm64), with any compiler that has GCC's vector
 * extensions; level 0, the plain loop, otherwise. pgcore_rows_level() says which one runs;
 * pgcore_rows_set_level() lowers it (tests compare the versions). Not target_clones (one body
 * compiled per ISA): the block that fits the registers differs by ISA, and 32-byte vectors compiled
 * for SSE2 ran 3x slower than 16-byte ones. No AVX-512 version: there was no CPU with it to test or
 * time one on; it would be four more lines like the AVX2 ones (blocks of up to 16 64-byte vectors)
 * and a case in the dispatch.
 */
#ifndef PGCORE_SPARSE_ROWS_H
#define PGCORE_SPARSE_ROWS_H

#include <stddef.h>
#include <string.h>

#ifndef PGCORE_ROWS_AHEAD
#define PGCORE_ROWS_AHEAD 4  /* rows prefetched ahead */
#endif
/* Vectors of out kept in registers, of the 16 there are: the rest hold a sign and a row's vector.
   AVX2 n = 200, ns a step with w1 in L1: 8 (8 + 8 + 8 + 1 vectors) 680, 13 600; 14 no better. */
#ifndef PGCORE_ROWS_BLOCK_V16
#define PGCORE_ROWS_BLOCK_V16 8
#endif
#ifndef PGCORE_ROWS_BLOCK_AVX2
#define PGCORE_ROWS_BLOCK_AVX2 13
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PGCORE_ROWS_VECTORS 1
#define PGCORE_ROWS_PREFETCH(p) __builtin_prefetch(p)
#define PGCORE_ROWS_INLINE static inline __attribute__((always_inline))
#define PGCORE_ROWS_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define PGCORE_ROWS_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#define PGCORE_ROWS_VECTORS 0
#define PGCORE_ROWS_PREFETCH(p) ((void)(p))
#define PGCORE_ROWS_INLINE static inline
#define PGCORE_ROWS_LOAD(x) (x)
#define PGCORE_ROWS_STORE(x, v) ((x) = (v))
#endif
#if PGCORE_ROWS_VECTORS && defined(__x86_64__)
#define PGCORE_ROWS_AVX2 1
#else
#define PGCORE_ROWS_AVX2 0
#endif

/* Row k's number and sign, in each form (ACCESS): SIGNED, rows[k] and signs[k]; PACKED, from the
 * sign bit of rows[k] (written with unsigned shifts: no implementation-defined right shift). */
#define PGCORE_ROWS_ROW_SIGNED(rows, k) ((ptrdiff_t)(rows)[k])
#define PGCORE_ROWS_SIGN_SIGNED(rows, signs, k) ((signs)[k])
#define PGCORE_ROWS_NEGATIVE(x) (-(int)((unsigned)(x) >> 31))  /* -1 where the int x < 0, else 0 */
#define PGCORE_ROWS_ROW_PACKED(rows, k) ((ptrdiff_t)((rows)[k] ^ PGCORE_ROWS_NEGATIVE((rows)[k])))
#define PGCORE_ROWS_SIGN_PACKED(rows, signs, k) (1 + 2 * PGCORE_ROWS_NEGATIVE((rows)[k]))

/* The plain loop: out in memory, one row at a time. */
#define PGCORE_ROWS_PLAIN(NAME, T, IDX, ACCESS, ATTR)                                                \
    static ATTR void NAME(const IDX* rows, const signed char* signs, ptrdiff_t count, ptrdiff_t ahead, \
                          const T* base, ptrdiff_t n, T* out) {                                      \
        ptrdiff_t k, j, b;                                                                           \
        for (k = 0; k < count; k++) {                                                                \
            if (k + PGCORE_ROWS_AHEAD < ahead) {                                                     \
                const char* next = (const char*)(base + PGCORE_ROWS_ROW_##ACCESS(rows, k + PGCORE_ROWS_AHEAD) * n); \
                for (b = 0; b < n * (ptrdiff_t)sizeof(T); b += 64) PGCORE_ROWS_PREFETCH(next + b);    \
            }                                                                                        \
            const T* w = base + PGCORE_ROWS_ROW_##ACCESS(rows, k) * n;                               \
            T s = (T)PGCORE_ROWS_SIGN_##ACCESS(rows, signs, k);                                      \
            for (j = 0; j < n; j++) out[j] += s * w[j];                                              \
        }                                                                                            \
    }

/* The blocked loop over vectors V of VW values of T, with at most MAXB of them in registers.
 * NAME##_pass adds the rows into out[j0, j0 + blocks VW) in `blocks` registers (a constant where
 * it is inlined, so the loop over b unrolls); the first pass (j0 == 0) prefetches whole rows, which
 * later passes find in L1 or L2. The n / VW vectors of a row are cut into as few passes as MAXB
 * allows, of near-equal sizes (200 floats in AVX2: 13 + 12 vectors, not 8 + 8 + 8 + 1): each pass
 * reads every index and sign again. */
#define PGCORE_ROWS_CASE(NAME, MAXB, B)                                                              \
    case B:                                                                                          \
        if (B <= MAXB) NAME##_pass(rows, signs, count, ahead, base, n, j0, B, out);                  \
        break;
#define PGCORE_ROWS_BLOCKED(NAME, T, IDX, ACCESS, V, VW, MAXB, ATTR)                                  \
    PGCORE_ROWS_INLINE ATTR void NAME##_pass(const IDX* rows, const signed char* signs, ptrdiff_t count, \
                                             ptrdiff_t ahead, const T* base, ptrdiff_t n, ptrdiff_t j0,  \
                                             int blocks, T* out) {                                   \
        V acc[MAXB], x;                                                                              \
        ptrdiff_t k, b;                                                                              \
        for (b = 0; b < blocks; b++) memcpy(&acc[b], out + j0 + b * VW, sizeof(V));                  \
        for (k = 0; k < count; k++) {                                                                \
            if (j0 == 0 && k + PGCORE_ROWS_AHEAD < ahead) {                                          \
                const char* next = (const char*)(base + PGCORE_ROWS_ROW_##ACCESS(rows, k + PGCORE_ROWS_AHEAD) * n); \
                for (b = 0; b < n * (ptrdiff_t)sizeof(T); b += 64) PGCORE_ROWS_PREFETCH(next + b);    \
            }                                                                                        \
            const T* w = base + PGCORE_ROWS_ROW_##ACCESS(rows, k) * n + j0;                          \
            /* a scalar operand, broadcast (filling the lanes in a loop: 1.5x slower) */             \
            T s = (T)PGCORE_ROWS_SIGN_##ACCESS(rows, signs, k);                                      \
            for (b = 0; b < blocks; b++) {                                                           \
                memcpy(&x, w + b * VW, sizeof(V));                                                   \
                acc[b] += s * x;                                                                     \
            }                                                                                        \
        }                                                                                            \
        for (b = 0; b < blocks; b++) memcpy(out + j0 + b * VW, &acc[b], sizeof(V));                  \
    }                                                                                                \
    static ATTR void NAME(const IDX* rows, const signed char* signs, ptrdiff_t count, ptrdiff_t ahead,  \
                          const T* base, ptrdiff_t n, T* out) {                                      \
        ptrdiff_t vectors = n / VW, passes = (vectors + MAXB - 1) / MAXB, pass, j0 = 0, k, j, left;  \
        for (pass = 0; pass < passes; pass++) {                                                      \
            int blocks = (int)(vectors / passes + (pass < vectors % passes));                       \
            switch (blocks) {                                                                        \
            PGCORE_ROWS_CASE(NAME, MAXB, 1) PGCORE_ROWS_CASE(NAME, MAXB, 2)                          \
            PGCORE_ROWS_CASE(NAME, MAXB, 3) PGCORE_ROWS_CASE(NAME, MAXB, 4)                          \
            PGCORE_ROWS_CASE(NAME, MAXB, 5) PGCORE_ROWS_CASE(NAME, MAXB, 6)                          \
            PGCORE_ROWS_CASE(NAME, MAXB, 7) PGCORE_ROWS_CASE(NAME, MAXB, 8)                          \
            PGCORE_ROWS_CASE(NAME, MAXB, 9) PGCORE_ROWS_CASE(NAME, MAXB, 10)                         \
            PGCORE_ROWS_CASE(NAME, MAXB, 11) PGCORE_ROWS_CASE(NAME, MAXB, 12)                        \
            PGCORE_ROWS_CASE(NAME, MAXB, 13) PGCORE_ROWS_CASE(NAME, MAXB, 14)                        \
            PGCORE_ROWS_CASE(NAME, MAXB, 15) PGCORE_ROWS_CASE(NAME, MAXB, 16)                        \
            default: break;                                                                          \
            }                                                                                        \
            j0 += blocks * VW;                                                                       \
        }                                                                                            \
        left = n - j0;                                                                               \
        if (left == 0) return;                                                                       \
        for (k = 0; k < count; k++) { /* the last values, fewer than a vector */                     \
            const T* w = base + PGCORE_ROWS_ROW_##ACCESS(rows, k) * n + j0;                          \
            T s = (T)PGCORE_ROWS_SIGN_##ACCESS(rows, signs, k);                                      \
            for (j = 0; j < left; j++) out[j0 + j] += s * w[j];                                      \
        }                                                                                            \
    }

PGCORE_ROWS_PLAIN(pgcore_rows_plain_f32_s16, float, short, SIGNED, )
PGCORE_ROWS_PLAIN(pgcore_rows_plain_f64_s16, double, short, SIGNED, )
PGCORE_ROWS_PLAIN(pgcore_rows_plain_f32_p32, float, int, PACKED, )
PGCORE_ROWS_PLAIN(pgcore_rows_plain_f64_p32, double, int, PACKED, )

#if PGCORE_ROWS_BLOCK_V16 > 16 || PGCORE_ROWS_BLOCK_AVX2 > 16
#error "PGCORE_ROWS_CASE goes up to 16 vectors a pass"
#endif

#if PGCORE_ROWS_VECTORS
typedef float pgcore_f32x4 __attribute__((vector_size(16)));
typedef double pgcore_f64x2 __attribute__((vector_size(16)));
#define PGCORE_ROWS_V16(NAME, T, IDX, ACCESS, V, VW) \
    PGCORE_ROWS_BLOCKED(NAME, T, IDX, ACCESS, V, VW, PGCORE_ROWS_BLOCK_V16, )
PGCORE_ROWS_V16(pgcore_rows_v16_f32_s16, float, short, SIGNED, pgcore_f32x4, 4)
PGCORE_ROWS_V16(pgcore_rows_v16_f64_s16, double, short, SIGNED, pgcore_f64x2, 2)
PGCORE_ROWS_V16(pgcore_rows_v16_f32_p32, float, int, PACKED, pgcore_f32x4, 4)
PGCORE_ROWS_V16(pgcore_rows_v16_f64_p32, double, int, PACKED, pgcore_f64x2, 2)
#endif

#if PGCORE_ROWS_AVX2
typedef float pgcore_f32x8 __attribute__((vector_size(32)));
typedef double pgcore_f64x4 __attribute__((vector_size(32)));
#define PGCORE_ROWS_AVX2_VERSION(NAME, T, IDX, ACCESS, V, VW) \
    PGCORE_ROWS_BLOCKED(NAME, T, IDX, ACCESS, V, VW, PGCORE_ROWS_BLOCK_AVX2, __attribute__((target("avx2,fma"))))
PGCORE_ROWS_AVX2_VERSION(pgcore_rows_avx2_f32_s16, float, short, SIGNED, pgcore_f32x8, 8)
PGCORE_ROWS_AVX2_VERSION(pgcore_rows_avx2_f64_s16, double, short, SIGNED, pgcore_f64x4, 4)
PGCORE_ROWS_AVX2_VERSION(pgcore_rows_avx2_f32_p32, float, int, PACKED, pgcore_f32x8, 8)
PGCORE_ROWS_AVX2_VERSION(pgcore_rows_avx2_f64_p32, double, int, PACKED, pgcore_f64x4, 4)
#endif

/* The version this module runs: -1 until first asked (each module that includes this header has
 * its own). Threads racing on the first call all write the same value. */
static int pgcore_rows_chosen = -1;

static int pgcore_rows_best(void) {
#if PGCORE_ROWS_AVX2
    __builtin_cpu_init();  /* (its AVX bits are set only where the OS saves the AVX registers) */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
#if PGCORE_ROWS_VECTORS
    return 1;
#else
    return 0;
#endif
}

static inline int pgcore_rows_level(void) {
    int level = PGCORE_ROWS_LOAD(pgcore_rows_chosen);
    if (level < 0) {
        level = pgcore_rows_best();
        PGCORE_ROWS_STORE(pgcore_rows_chosen, level);
    }
    return level;
}

/* Lowers the version to `level` (at most the best this CPU has); a negative level restores the
 * best. Returns the version now run. For tests: not while a kernel runs. */
static inline int pgcore_rows_set_level(int level) {
    int best = pgcore_rows_best();
    level = level < 0 || level > best ? best : level;
    PGCORE_ROWS_STORE(pgcore_rows_chosen, level);
    return level;
}

#define PGCORE_ROWS_DISPATCH(SUFFIX, T, IDX)                                                         \
    static inline void pgcore_add_rows_##SUFFIX(const IDX* rows, const signed char* signs, ptrdiff_t count, \
                                                ptrdiff_t ahead, const T* base, ptrdiff_t n, T* out) { \
        switch (pgcore_rows_level()) {                                                               \
        PGCORE_ROWS_CASE_AVX2(SUFFIX)                                                                \
        PGCORE_ROWS_CASE_V16(SUFFIX)                                                                 \
        default: pgcore_rows_plain_##SUFFIX(rows, signs, count, ahead, base, n, out); return;        \
        }                                                                                            \
    }
#if PGCORE_ROWS_AVX2
#define PGCORE_ROWS_CASE_AVX2(SUFFIX) \
    case 2: pgcore_rows_avx2_##SUFFIX(rows, signs, count, ahead, base, n, out); return;
#else
#define PGCORE_ROWS_CASE_AVX2(SUFFIX)
#endif
#if PGCORE_ROWS_VECTORS
#define PGCORE_ROWS_CASE_V16(SUFFIX) \
    case 1: pgcore_rows_v16_##SUFFIX(rows, signs, count, ahead, base, n, out); return;
#else
#define PGCORE_ROWS_CASE_V16(SUFFIX)
#endif

PGCORE_ROWS_DISPATCH(f32_s16, float, short)
PGCORE_ROWS_DISPATCH(f64_s16, double, short)
PGCORE_ROWS_DISPATCH(f32_p32, float, int)
PGCORE_ROWS_DISPATCH(f64_p32, double, int)

#endif
