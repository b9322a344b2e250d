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

int main(void) {
    RUN(pool_every_task_once);
    RUN(pool_wakes_sleeping_workers);
    RUN(pool_empty_and_free_idle);
    return TEST_EXIT();
}
