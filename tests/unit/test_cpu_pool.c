/* The spinning thread pool: every task runs exactly once per job, across many
 * back-to-back jobs (the decode pattern), after the workers have gone to sleep,
 * with more tasks than threads and fewer, and the pool frees cleanly. */
#include "test.h"
#include "pool.h"
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

/* A task that stalls (as a worker descheduled mid-task would) far longer than
 * the caller's own tasks: every task still runs once, and after a few such
 * jobs the pool goes solo (the caller runs whole jobs), then tries the
 * workers again. Tasks that are all equally long never trigger it. */
typedef struct { int *hits; int n; } slow_job;

static void slow_one(void *ctx, int i) {
    slow_job *j = ctx;
    __atomic_fetch_add(&j->hits[i], 1, __ATOMIC_RELAXED);
    if (i == 0) {
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
    /* Task 0 is claimed first; with 1 worker it is the worker's about half
     * the time, so loop until the caller has waited on it often enough. */
    for (int rep = 0; rep < 400 && gr_pool_solo_spells(p) == 0; rep++) {
        int hits[64] = {0};
        slow_job j = {hits, 64};
        gr_pool_run(p, slow_one, &j, 64);
        for (int i = 0; i < 64; i++) CHECK(hits[i] == 1);
    }
    CHECK(gr_pool_solo_spells(p) >= 1);
    gr_pool_free(p);

    p = gr_pool_new(1);
    gr_pool_set_adapt(p, 1);
    for (int rep = 0; rep < 30; rep++) {
        int hits[4] = {0};
        slow_job j = {hits, 4};
        gr_pool_run(p, even_ms, &j, 4);
        for (int i = 0; i < 4; i++) CHECK(hits[i] == 1);
    }
    /* On a loaded machine the worker may really be late; only check when
     * the pool did not judge it so for a reason other than task length. */
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
