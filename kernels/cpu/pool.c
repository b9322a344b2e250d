/* See pool.h. A job is published as a new generation in one 64-bit ticket,
 * (generation << 32) | next task index; a thread claims a task by a CAS that
 * keeps the generation, so a worker that wakes late (descheduled, its core
 * taken by another process) can claim only tasks of the job it saw, and only
 * while some are left: the caller never waits for a worker to show up, only
 * for tasks a worker has claimed and not finished (`done` counts finished
 * tasks; the caller waits for done == n). The job's fn/ctx/n are written
 * before the ticket (release) and not rewritten until done == n, so a claimed
 * task always reads its own job's fields.
 *
 * Idle workers poll the ticket for SPIN_NS, then sleep on a condition
 * variable and are counted in `sleepers`, so the caller takes the mutex only
 * when someone is asleep. The Dekker-style pair (caller: store ticket, load
 * sleepers; worker: sleepers++, load ticket, all sequentially consistent)
 * guarantees a sleeper never misses a job. The caller, done with its share,
 * polls for WAIT_SPIN_NS, then sleeps on `done_cv` (caller: waiting = 1,
 * load done; finishing worker: done++, load waiting).
 *
 * Fewer workers when they are late. A job's wait for a worker's claimed task
 * counts as lost when it is past LATE_NS and past four times the caller's own
 * mean task time (so not a long task but a worker descheduled mid-task: its
 * core is busy with another process). When the lost time passes a quarter of
 * the pool's recent wall time (decayed sums over about 64 jobs), the pool runs
 * the next SOLO_JOBS jobs on the caller alone, the workers asleep, and then
 * tries them again. On a machine of our own this never triggers (a task ends
 * within microseconds of the caller's); on a shared one it turns a time slice
 * per matmul into one thread's speed. GR_POOL_ADAPT=0 turns it off. */
#include "pool.h"
#include "gr_common.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
/* Lateness (see above): SOLO_JOBS is a few decode steps' matmuls. */
enum { LATE_NS = 200000, SOLO_JOBS = 2000 };

struct gr_pool {
    pthread_mutex_t mu;
    pthread_cond_t go;
    pthread_cond_t done_cv; /* the caller waits here for the last task */
    int waiting;       /* atomic: the caller sleeps on `done_cv` */
    pthread_t *th;
    int n_th;
    uint64_t ticket;   /* atomic: generation << 32 | next task to claim */
    int sleepers;      /* atomic: workers blocked on `go` */
    int quit;          /* atomic */
    void (*fn)(void *, int); /* atomic (relaxed): the current job */
    void *ctx;         /* atomic (relaxed) */
    int n;             /* atomic (relaxed) */
    int done;          /* atomic: tasks of the current job finished */
    int adapt;         /* fall back to the caller alone when workers are late */
    double wall_ns, lost_ns; /* decayed sums of job time and time lost (caller only) */
    int solo_left;     /* jobs still to run solo (caller only) */
    long solo_spells;  /* times the pool went solo (caller only; for tests) */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs tasks of generation gen until none are left; returns how
 * many this thread ran. */
static int work(gr_pool *p, uint32_t gen) {
    int ran = 0;
    uint64_t t = __atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((uint32_t)(t >> 32) != gen) return ran;
        /* acquire: a new job's n is seen only after its close of the old
         * generation (gr_pool_run), so a claim with a stale ticket fails */
        int n = __atomic_load_n(&p->n, __ATOMIC_ACQUIRE);
        uint32_t i = (uint32_t)t;
        if ((int64_t)i >= n) return ran;
        if (!__atomic_compare_exchange_n(&p->ticket, &t, t + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        void (*fn)(void *, int) = __atomic_load_n(&p->fn, __ATOMIC_RELAXED);
        void *ctx = __atomic_load_n(&p->ctx, __ATOMIC_RELAXED);
        fn(ctx, (int)i);
        ran++;
        if (__atomic_add_fetch(&p->done, 1, __ATOMIC_SEQ_CST) == n &&
            __atomic_load_n(&p->waiting, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        t = __atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE);
    }
}

static void *worker_main(void *arg) {
    gr_pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = (uint32_t)(__atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE) >> 32);
        if (g == seen) {
            int64_t t0 = now_ns();
            for (int k = 1;; k++) {
                cpu_relax();
                g = (uint32_t)(__atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE) >> 32);
                if (g != seen) break;
                if ((k & 63) == 0 && now_ns() - t0 > SPIN_NS) break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            __atomic_fetch_add(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            while ((g = (uint32_t)(__atomic_load_n(&p->ticket, __ATOMIC_SEQ_CST) >> 32)) == seen)
                pthread_cond_wait(&p->go, &p->mu);
            __atomic_fetch_sub(&p->sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE)) break;
        (void)work(p, g);
    }
    return NULL;
}

/* Publishes a new generation (the job fields, or quit, already written). */
static uint32_t publish(gr_pool *p) {
    uint64_t t = __atomic_load_n(&p->ticket, __ATOMIC_RELAXED);
    uint32_t gen = (uint32_t)(t >> 32) + 1;
    __atomic_store_n(&p->ticket, (uint64_t)gen << 32, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    return gen;
}

gr_pool *gr_pool_new(int n_workers) {
    gr_pool *p = gr_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    const char *e = getenv("GR_POOL_ADAPT");
    p->adapt = !(e && !strcmp(e, "0"));
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
    pthread_cond_destroy(&p->done_cv);
    free(p->th);
    free(p);
}

int gr_pool_workers(const gr_pool *p) { return p->n_th; }

void gr_pool_set_adapt(gr_pool *p, int on) {
    p->adapt = on;
    p->wall_ns = p->lost_ns = 0;
    p->solo_left = 0;
}

long gr_pool_solo_spells(const gr_pool *p) { return p->solo_spells; }

void gr_pool_run(gr_pool *p, void (*fn)(void *, int), void *ctx, int n) {
    if (n <= 0) return;
    if (p->n_th == 0 || n == 1 || p->solo_left > 0) {
        if (p->solo_left > 0) p->solo_left--;
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    /* Close the finished generation first: a worker that loaded its ticket
     * before the last job ended and reads this job's (larger) n must not claim
     * index old-n of the old generation, run it with this job's fn and count it
     * in this job's done (a task twice, and the caller gone before the last
     * one ended: seen as pool_every_task_once failing under load). With the
     * index at its maximum its CAS fails, and n's release store below orders
     * the close before any read of the new n. */
    uint64_t old_t = __atomic_load_n(&p->ticket, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ticket, old_t | 0xffffffffu, __ATOMIC_RELAXED);
    __atomic_store_n(&p->fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&p->ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->n, n, __ATOMIC_RELEASE);
    int64_t start = now_ns();
    uint32_t gen = publish(p);
    int mine = work(p, gen);
    int64_t mine_ns = now_ns() - start;
    /* Tasks the workers claimed and have not finished: poll briefly (they
     * usually end within microseconds), then sleep until the last one signals. */
    int64_t t0 = 0, late = 0;
    for (int k = 1; __atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n; k++) {
        cpu_relax();
        if ((k & 63) == 0) {
            int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > WAIT_SPIN_NS) break;
        }
    }
    if (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n) {
        pthread_mutex_lock(&p->mu);
        __atomic_store_n(&p->waiting, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&p->done, __ATOMIC_SEQ_CST) < n) pthread_cond_wait(&p->done_cv, &p->mu);
        __atomic_store_n(&p->waiting, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&p->mu);
        late = now_ns() - t0;
    }
    /* Late: the wait is far longer than one of the caller's own tasks took
     * (a worker's last task started before the caller's ended), so its thread
     * lost its core; with no task of its own the caller cannot tell. */
    if (!p->adapt || mine == 0) return;
    int64_t lost = late > LATE_NS && late > 4 * (mine_ns / mine) ? late : 0;
    p->wall_ns = p->wall_ns * (63.0 / 64) + (double)(now_ns() - start);
    p->lost_ns = p->lost_ns * (63.0 / 64) + (double)lost;
    if (p->lost_ns > 0.25 * p->wall_ns) {
        p->wall_ns = p->lost_ns = 0;
        p->solo_left = SOLO_JOBS;
        p->solo_spells++;
    }
}
