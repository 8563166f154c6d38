/* Platform pieces of bpcore's kernels: the floating-point mode (flush to
   zero), OpenMP (or one thread without it), the per-batch barrier, prefetch
   and the vector-width clone attribute. Header only: everything is static
   inline. */
#ifndef BP_PLATFORM_H
#define BP_PLATFORM_H
#include <stddef.h>

/* Flush-to-zero and denormals-are-zero for the duration of a kernel call. */
#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
typedef unsigned int bp_fpstate;
static inline bp_fpstate bp_fp_enter(void) {
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);   /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}
static inline void bp_fp_exit(bp_fpstate s) { _mm_setcsr(s); }
#elif defined(__aarch64__)
typedef unsigned long long bp_fpstate;
static inline bp_fpstate bp_fp_enter(void) {
    unsigned long long old, fz;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
    fz = old | (1ULL << 24);     /* FZ */
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fz));
    return old;
}
static inline void bp_fp_exit(bp_fpstate s) { __asm__ __volatile__("msr fpcr, %0" : : "r"(s)); }
#else
typedef int bp_fpstate;
static inline bp_fpstate bp_fp_enter(void) { return 0; }
static inline void bp_fp_exit(bp_fpstate s) { (void)s; }
#endif

/* OpenMP, or a single thread when the build has none. */
#ifdef _OPENMP
#include <omp.h>
static inline int bp_max_threads(void) { return omp_get_max_threads(); }
static inline int bp_team_size(void) { return omp_get_num_threads(); }
static inline int bp_thread_id(void) { return omp_get_thread_num(); }
#define BP_OPENMP 1

/* The per-batch barrier. libgomp's barrier spins without yielding, so on
   a shared machine (another runtime's idle workers still spinning, e.g.
   OpenBLAS or torch after their calls) a thread waiting for a
   descheduled partner burns the very core that partner needs: measured
   5-10x slowdowns. This sense-reversing barrier waits in three stages,
   as OpenMP runtimes do (GOMP_SPINCOUNT, KMP_BLOCKTIME: spin, then
   sleep):
   1. spin BP_BARRIER_SPINS pauses (a few microseconds): the normal case,
      the partner is a few microseconds behind and a sleep's wake-up (an
      IPI to a halted vCPU: tens of microseconds on a VM) would cost more
      than the whole wait;
   2. sched_yield() for up to BP_BARRIER_YIELD_NS (200 ms, the default
      KMP_BLOCKTIME of LLVM's OpenMP): the partner was descheduled by
      another process. The waiter stays runnable and gets the CPU back as
      soon as the scheduler lets it. Sleeping sooner was measured worse
      under load: with the other users' builds and tests on the 2 vCPUs
      (load average 14), W1 on 2 threads ran at 0.17-0.20x of one thread
      when waiters slept after 100 yields or after 2 ms of yielding,
      against 0.28-0.79x with yields only (four alternating pairs of 20 s
      runs; noisy, but every pair pointed the same way): a sleeper's
      wake-up queues behind every other runnable task;
   3. sleep on the sense word (Linux futex) until the last thread arrives:
      the partner is not coming soon (a stopped or swapped-out process, a
      debugger); the CPU is left to whoever needs it instead of being
      burnt by a yield-looping waiter.
   The last thread to arrive wakes the sleepers (a syscall only when there
   are some). The acq_rel increment and release/acquire on `sense` make
   every write before the barrier visible to every thread after it; the
   seq_cst store of `sense` and load of `sleepers` against the sleeper's
   seq_cst increment and re-check (Dekker) leave no lost wake-up: either
   the sleeper sees the new sense, or the last thread sees the sleeper,
   and FUTEX_WAIT itself returns at once if `sense` already moved. */
#if defined(__GNUC__) || defined(__clang__)
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define bp_cpu_relax() _mm_pause()
#else
#define bp_cpu_relax() ((void)0)
#endif
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <limits.h>
static inline void bp_futex_wait(int* addr, int expected) {
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
static inline void bp_futex_wake_all(int* addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#include <time.h>
static inline long long bp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
#define BP_BARRIER_CAN_SLEEP 1
#else
static inline long long bp_now_ns(void) { return 0; }   /* (never sleeps) */
#define BP_BARRIER_CAN_SLEEP 0
#endif
#define BP_BARRIER_SPINS 2000u
#define BP_BARRIER_YIELD_NS 200000000LL
typedef struct { int count; int sense; int sleepers; } bp_barrier_t;
static inline void bp_barrier_init(bp_barrier_t* b) {
    b->count = 0; b->sense = 0; b->sleepers = 0;
}
static inline void bp_barrier_wait(bp_barrier_t* b, int* local_sense, int team) {
    int s;
    unsigned spins = 0;
    long long yield_until = 0;
    if (team <= 1) return;
    s = !*local_sense;
    *local_sense = s;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == team) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, s, __ATOMIC_SEQ_CST);
#if BP_BARRIER_CAN_SLEEP
        if (__atomic_load_n(&b->sleepers, __ATOMIC_SEQ_CST) > 0)
            bp_futex_wake_all(&b->sense);
#endif
        return;
    }
    while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != s) {
        if (spins < BP_BARRIER_SPINS) {
            bp_cpu_relax();
            spins++;
        } else if (!BP_BARRIER_CAN_SLEEP || yield_until == 0 || bp_now_ns() < yield_until) {
            if (yield_until == 0) yield_until = bp_now_ns() + BP_BARRIER_YIELD_NS;
            sched_yield();
        } else {
#if BP_BARRIER_CAN_SLEEP
            __atomic_add_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&b->sense, __ATOMIC_SEQ_CST) != s)
                bp_futex_wait(&b->sense, !s);
            __atomic_sub_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
#endif
        }
    }
}
#else
typedef struct { int unused; } bp_barrier_t;
static inline void bp_barrier_init(bp_barrier_t* b) { (void)b; }
static inline void bp_barrier_wait(bp_barrier_t* b, int* local_sense, int team) {
    (void)b; (void)local_sense; (void)team;
    #pragma omp barrier
}
#endif
#else
static inline int bp_max_threads(void) { return 1; }
static inline int bp_team_size(void) { return 1; }
static inline int bp_thread_id(void) { return 0; }
typedef struct { int unused; } bp_barrier_t;
static inline void bp_barrier_init(bp_barrier_t* b) { (void)b; }
static inline void bp_barrier_wait(bp_barrier_t* b, int* local_sense, int team) {
    (void)b; (void)local_sense; (void)team;
}
#define BP_OPENMP 0
#endif

/* The next unclaimed chunk of a shared loop (then one more): threads that
   claim chunks as they finish share the work by what each gets done, so a
   descheduled thread on a loaded machine delays the call by at most its
   one chunk instead of its whole static share (inference). */
#if defined(__GNUC__) || defined(__clang__)
static inline long long bp_claim(long long* next) {
    return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
}
#else
static inline long long bp_claim(long long* next) {
    long long c;
#ifdef _OPENMP
    #pragma omp critical(bp_claim)
#endif
    { c = (*next)++; }
    return c;
}
#endif

#if defined(__GNUC__) || defined(__clang__)
#define bp_prefetch(p) __builtin_prefetch((const void*)(p), 0, 3)
#else
#define bp_prefetch(p) ((void)0)
#endif

/* Vector-width clones: GCC's target_clones builds a function for AVX-512,
   AVX2 and baseline x86-64 and picks one at load time (ifunc, Linux).
   setup.py passes -ffp-contract=off, so no clone fuses a*b + c into an FMA:
   every clone rounds exactly like the baseline (and NumPy). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BP_CLONES
#endif

/* Clones for loops of 64-bit integer multiplies (the dropout hash): the
   AVX-512 clone alone has no vpmullq (AVX512DQ) and emulates each one with
   three 32-bit multiplies; an x86-64-v4 clone (F, BW, CD, DQ, VL: Skylake-X,
   Zen 4 and later) ran the dropout loop 2.5x faster here. Integer hashing
   and one multiply per kept value: every clone gives the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && __GNUC__ >= 12
#define BP_CLONES_INT64 \
    __attribute__((target_clones("arch=x86-64-v4", "avx512f", "avx2", "default")))
#else
#define BP_CLONES_INT64 BP_CLONES
#endif

#endif /* BP_PLATFORM_H */
