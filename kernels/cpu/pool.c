/* See pool.h. The generation counter publishes a job; a worker that has
 * been idle for longer than SPIN_NS sleeps on a condition variable and is
 * counted in `sleepers`, so the caller takes the mutex only when someone is
 * asleep. The Dekker-style pair (caller: store gen, load sleepers; worker:
 * sleepers++, load gen, all sequentially consistent) guarantees a sleeper
 * never misses a job. The caller, done with its share, waits for the workers'
 * last tasks the same way: it polls for WAIT_SPIN_NS, then sleeps on `done`
 * (caller: waiting = 1, load pending; last worker: pending-- , load waiting),
 * so no thread spins for long on a core that another process holds: a worker
 * descheduled mid-task costs the caller a sleep, not a spinning time slice.
 *
 * Falling back to fewer workers on a shared machine: when the caller, done
 * with its own share, waited for the workers longer than SLOW_NS and twice its
 * own working time (a worker held a task while descheduled: another process
 * has its core), the next `solo` jobs run on the caller alone, and the workers
 * go to sleep after their spin window. The span starts at SOLO_MIN jobs (about
 * one SmolLM2 decode token) and doubles while the probing parallel job after
 * it is slow again, up to SOLO_MAX; a fast parallel job ends the back-off.
 * Which thread runs a task never changes a result (pool.h), so neither does
 * this. */
#include "pool.h"
#include "gr_common.h"
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker polls for the next job before it sleeps: longer than
 * the serial stretches between the matmuls of a decode step, short enough that
 * an idle pool gives its core back at once for practical purposes. */
enum { SPIN_NS = 100000, WAIT_SPIN_NS = 30000 };
enum { SLOW_NS = 50000, SOLO_MIN = 256, SOLO_MAX = 16384 };

struct gr_pool {
    pthread_mutex_t mu;
    pthread_cond_t go;
    pthread_cond_t done;   /* the caller waits here for the last worker */
    int waiting;       /* atomic: the caller sleeps on `done` */
    pthread_t *th;
    int n_th;
    unsigned gen;      /* atomic: bumped once per job */
    int sleepers;      /* atomic: workers blocked on `go` */
    int quit;
    void (*fn)(void *, int);
    void *ctx;
    int n;
    int next;          /* atomic: next task to claim */
    int pending;       /* atomic: workers not finished with the current job */
    int solo;          /* the next `solo` jobs run on the caller alone (caller only) */
    int backoff;       /* the last solo span; 0: not backing off (caller only) */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void work(gr_pool *p) {
    for (;;) {
        int i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n) break;
        p->fn(p->ctx, i);
    }
}

static void *worker_main(void *arg) {
    gr_pool *p = arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
        if (g == seen) {
            int64_t t0 = now_ns();
            for (int k = 1;; k++) {
                cpu_relax();
                g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
                if (g != seen) break;
                if ((k & 63) == 0 && now_ns() - t0 > SPIN_NS) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            __atomic_fetch_add(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while ((g = __atomic_load_n(&p->gen, __ATOMIC_SEQ_CST)) == seen)
                pthread_cond_wait(&p->go, &p->mu);
            __atomic_fetch_sub(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) break;
        work(p);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_SEQ_CST) == 0 &&
            __atomic_load_n(&p->waiting, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publishes the current fn/ctx/n (or quit) as a new generation. */
static void publish(gr_pool *p) {
    __atomic_fetch_add(&p->gen, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
}

gr_pool *gr_pool_new(int n_workers) {
    gr_pool *p = gr_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = gr_xcalloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *p->th);
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&p->th[i], NULL, worker_main, p) != 0) break;
        p->n_th++;
    }
    return p;
}

void gr_pool_free(gr_pool *p) {
    if (!p) return;
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    publish(p);
    for (int i = 0; i < p->n_th; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int gr_pool_workers(const gr_pool *p) { return p->n_th; }

void gr_pool_run(gr_pool *p, void (*fn)(void *, int), void *ctx, int n) {
    if (n <= 0) return;
    if (p->n_th == 0 || n == 1 || p->solo > 0) {
        if (n > 1 && p->solo > 0) p->solo--;
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    __atomic_store_n(&p->next, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->pending, p->n_th, __ATOMIC_RELAXED);
    int64_t t_start = now_ns();
    publish(p);
    work(p);
    int64_t t_mine = now_ns();
    /* The workers' last tasks: poll briefly (they usually end within
     * microseconds), then sleep until the last one signals. */
    int64_t t0 = 0;
    for (int k = 1; __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; k++) {
        cpu_relax();
        if ((k & 63) == 0) {
            int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > WAIT_SPIN_NS) break;
        }
    }
    if (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->waiting, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->pending, __ATOMIC_SEQ_CST) > 0) pthread_cond_wait(&p->done, &p->mu);
        __atomic_store_n(&p->waiting, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&p->mu);
    }
    int64_t t_wait = now_ns() - t_mine;
    t_mine -= t_start;
    if (t_wait > SLOW_NS && t_wait > 2 * t_mine) {
        p->backoff = p->backoff ? (p->backoff < SOLO_MAX ? 2 * p->backoff : SOLO_MAX) : SOLO_MIN;
        p->solo = p->backoff;
    } else {
        p->backoff = 0;
    }
}
