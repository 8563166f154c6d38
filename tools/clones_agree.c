/* Every vector-width build of the element-wise passes gives the same bits.
 *
 * Built by tools/clones_agree.sh once per instruction set (baseline x86-64,
 * AVX2, AVX-512, with GCC and with clang if present), each with the clones
 * off so the compiler's own target is the one that runs. It runs bias +
 * activation and the derivative with the fused bias-gradient sums over
 * shapes around every vector step (cols 1..37, and 100..5000 for both of
 * the sums' walks), padded row strides, 0..200 rows, every accumulate
 * mode, and inputs with zeros, -0.0, NaN and subnormals, and prints one
 * FNV-1a hash of every output bit. The script fails unless all builds
 * print the same hash. Agreement alone would pass a bug every width shares,
 * so the ReLU/identity derivative and its column sums are also compared bit
 * for bit with a plain scalar loop here (exit 1 on a difference). */
#include <string.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bp_elementwise.h"
#include "bp_enums.h"

static uint64_t hash = 1469598103934665603ULL;

static void mix(const void* p, size_t n) {
    const unsigned char* c = p;
    for (size_t i = 0; i < n; i++) {
        hash ^= c[i];
        hash *= 1099511628211ULL;
    }
}

static double uniform(void) { return rand() / (double)RAND_MAX; }

static long mismatches = 0;

#define RUN(T, SUF)                                                                    \
    do {                                                                               \
        T* z = malloc(sizeof(T) * (R * LD + 1));                                       \
        T* a = malloc(sizeof(T) * (R * LD + 1));                                       \
        T* d = malloc(sizeof(T) * (R * LD + 1));                                       \
        T* b = malloc(sizeof(T) * C);                                                  \
        T* cs = malloc(sizeof(T) * C);                                                 \
        for (int i = 0; i < R * LD; i++) {                                             \
            int k = rand() % 13;                                                       \
            z[i] = k == 0 ? (T)0 : k == 1 ? (T)-0.0 : k == 2 ? (T)1e-40                \
                                                    : (T)(uniform() * 6 - 3);          \
            a[i] = k == 3 ? (T)0 : k == 4 ? (T)NAN : (T)uniform();                     \
            d[i] = (T)(uniform() - 0.5);                                               \
        }                                                                              \
        for (int j = 0; j < C; j++) {                                                  \
            b[j] = (T)(uniform() - 0.5);                                               \
            cs[j] = (T)0.25;                                                           \
        }                                                                              \
        bp_bias_act_##SUF(code, z, LD, b, R, C, (T)0.01, (T)1, NULL);                  \
        mix(z, sizeof(T) * R * LD);                                                    \
        T* rd = malloc(sizeof(T) * (R * LD + 1));                                      \
        T* rcs = malloc(sizeof(T) * C);                                                \
        memcpy(rd, d, sizeof(T) * R * LD);                                             \
        memcpy(rcs, cs, sizeof(T) * C);                                                \
        if (code == BP_RELU || code == BP_IDENTITY) { /* the scalar reference */       \
            for (int i = 0; i < R; i++)                                                \
                for (int j = 0; j < C; j++) {                                          \
                    T v = rd[i * LD + j];                                              \
                    if (code == BP_RELU) v = a[i * LD + j] == 0 ? (T)0 : v;            \
                    rd[i * LD + j] = v;                                                \
                    if (acc >= 0)                                                      \
                        rcs[j] = (i == 0 && acc == 0) ? v : rcs[j] + v;                \
                }                                                                      \
            if (R == 0 && acc == 0)                                                    \
                for (int j = 0; j < C; j++) rcs[j] = 0;                                \
        }                                                                              \
        bp_act_back_##SUF(code, a, LD, NULL, d, LD, R, C, (T)0.01, (T)1,               \
                          acc >= 0 ? cs : NULL, acc > 0);                              \
        if ((code == BP_RELU || code == BP_IDENTITY)                                   \
            && (memcmp(rd, d, sizeof(T) * R * LD) != 0                                 \
                || memcmp(rcs, cs, sizeof(T) * C) != 0)) {                             \
            if (mismatches++ < 5)                                                      \
                fprintf(stderr, "differs from the scalar loop: %s code %d, %d x %d "   \
                        "(stride %d), accumulate %d\n", #T, code, R, C, LD, acc);      \
        }                                                                              \
        free(rd), free(rcs);                                                           \
        mix(d, sizeof(T) * R * LD);                                                    \
        mix(cs, sizeof(T) * C);                                                        \
        free(z), free(a), free(d), free(b), free(cs);                                  \
    } while (0)

int main(void) {
    const int codes[] = {BP_IDENTITY, BP_RELU, BP_SOFTMAX, BP_TANH};
    const int wide[] = {100, 513, 2049, 5000}, tall[] = {1, 7, 41, 200};
    srand(7);
    for (int ci = 0; ci < 4; ci++)
        for (int C = 1; C <= 37; C++)
            for (int R = 0; R <= 5; R++)
                for (int acc = -1; acc <= 1; acc++)
                    for (int pad = 0; pad <= 3; pad += 3) {
                        int code = codes[ci], LD = C + pad;
                        if (code == BP_SOFTMAX && R == 0) continue;
                        RUN(float, f);
                        RUN(double, d);
                    }
    for (int ci = 0; ci < 2; ci++)
        for (int w = 0; w < 4; w++)
            for (int t = 0; t < 4; t++)
                for (int acc = -1; acc <= 1; acc++) {
                    int code = ci ? BP_RELU : BP_IDENTITY, C = wide[w], R = tall[t], LD = C + 1;
                    RUN(float, f);
                    RUN(double, d);
                }
    printf("%016llx\n", (unsigned long long)hash);
    return mismatches != 0;
}
