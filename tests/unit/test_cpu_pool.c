/* The spinning thread pool: every task runs exactly once per job, across many
 * back-to-back jobs (the decode pattern), after the workers have gone to sleep,
 * with more tasks than threads and fewer, and the pool frees cleanly. */
#include "test.h"
#include "pool.h"
#include <pthread.h>
#include <time.h>

typedef struct { int *hits; int n; } job;

static void count(void *ctx, int i) {
    job *j = ctx;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
}

static int run_and_check(gr_pool *p, int n) {
    int hits[512] = {0};
    job j = {hits, n};
    gr_pool_run(p, count, &j, n);
    for (int i = 0; i < n; i++)
        if (hits[i] != 1) return 0;
    return 1;
}

TEST(pool_every_task_once) {
    for (int w = 0; w <= 3; w++) {
        gr_pool *p = gr_pool_new(w);
        CHECK(gr_pool_workers(p) == w);
        for (int rep = 0; rep < 1000; rep++) CHECK(run_and_check(p, 1 + rep % 300));
        gr_pool_free(p);
    }
}

TEST(pool_wakes_sleeping_workers) {
    gr_pool *p = gr_pool_new(2);
    struct timespec nap = {0, 2000000}; /* longer than the spin window: workers sleep */
    for (int rep = 0; rep < 20; rep++) {
        nanosleep(&nap, NULL);
        CHECK(run_and_check(p, 64));
    }
    gr_pool_free(p);
}

TEST(pool_empty_and_free_idle) {
    gr_pool *p = gr_pool_new(1);
    gr_pool_run(p, count, NULL, 0); /* no tasks: fn never called */
    CHECK(run_and_check(p, 1));
    gr_pool_free(p);
    gr_pool_free(NULL);
}

/* Tasks that stall on the workers (as a worker descheduled mid-task would)
 * far longer than the caller's own: every task still runs once, and the pool
 * soon goes solo (the caller runs whole jobs: no task reaches a worker), then
 * tries the workers again. Tasks that are all equally long never trigger it. */
typedef struct { int *hits; pthread_t caller; int on_worker; } slow_job;

static void spin_us(int us) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void stall_on_worker(void *ctx, int i) {
    slow_job *j = ctx;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    if (pthread_equal(pthread_self(), j->caller)) {
        spin_us(20);
    } else {
        __atomic_fetch_add(&j->on_worker, 1, __ATOMIC_RELAXED);
        struct timespec nap = {0, 3000000};
        nanosleep(&nap, NULL);
    }
}

static void even_ms(void *ctx, int i) {
    slow_job *j = ctx;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
}

TEST(pool_late_worker_goes_solo) {
    gr_pool *p = gr_pool_new(1);
    gr_pool_set_adapt(p, 1);
    int rep = 0;
    for (; rep < 200 && gr_pool_solo_spells(p) == 0; rep++) {
        int hits[64] = {0};
        slow_job j = {hits, pthread_self(), 0};
        gr_pool_run(p, stall_on_worker, &j, 64);
        for (int i = 0; i < 64; i++) CHECK(hits[i] == 1);
    }
    CHECK(gr_pool_solo_spells(p) == 1);
    /* solo: the next jobs never reach the worker */
    for (int k = 0; k < 20; k++) {
        int hits[64] = {0};
        slow_job j = {hits, pthread_self(), 0};
        gr_pool_run(p, stall_on_worker, &j, 64);
        for (int i = 0; i < 64; i++) CHECK(hits[i] == 1);
        CHECK(j.on_worker == 0);
    }
    gr_pool_set_adapt(p, 0); /* off: the worker takes tasks again */
    int reached = 0;
    for (int k = 0; k < 50 && !reached; k++) {
        int hits[64] = {0};
        slow_job j = {hits, pthread_self(), 0};
        gr_pool_run(p, stall_on_worker, &j, 64);
        reached = j.on_worker > 0;
    }
    CHECK(reached);
    gr_pool_free(p);

    p = gr_pool_new(1);
    gr_pool_set_adapt(p, 1);
    for (int k = 0; k < 30; k++) {
        int hits[4] = {0};
        slow_job j = {hits, pthread_self(), 0};
        gr_pool_run(p, even_ms, &j, 4);
        for (int i = 0; i < 4; i++) CHECK(hits[i] == 1);
    }
    /* equal tasks: a wait of about one task is not lateness (a loaded test
     * machine may still deschedule the worker now and then, hence <= 1) */
    CHECK(gr_pool_solo_spells(p) <= 1);
    gr_pool_free(p);
}

int main(void) {
    RUN(pool_every_task_once);
    RUN(pool_wakes_sleeping_workers);
    RUN(pool_empty_and_free_idle);
    RUN(pool_late_worker_goes_solo);
    return TEST_EXIT();
}
