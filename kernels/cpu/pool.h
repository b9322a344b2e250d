/* A persistent thread pool for the CPU backend: fork-join over n tasks, the
 * calling thread working too. Workers spin for a short while (100 us) after
 * each job before they sleep, so the hand-offs of a decode step (a few hundred
 * small matmuls per token) cost well under a microsecond instead of a futex
 * wake; the caller, waiting for the workers' last tasks, polls for 30 us and
 * then sleeps too. No thread spins longer on a core another process holds, and
 * the caller never waits for a worker that has not claimed a task; when
 * workers are persistently late (descheduled mid-task), jobs run on the caller
 * alone for a while (pool.c). */
#ifndef GR_CPU_POOL_H
#define GR_CPU_POOL_H

typedef struct gr_pool gr_pool;

/* n_workers threads besides the caller (0: everything runs on the caller). */
gr_pool *gr_pool_new(int n_workers);
void gr_pool_free(gr_pool *p);
int gr_pool_workers(const gr_pool *p);

/* Runs fn(ctx, i) for i in [0, n), each exactly once, on the caller and the
 * workers; returns when all are done. Tasks are claimed with an atomic counter,
 * so which thread runs which task varies: fn must not depend on it. */
void gr_pool_run(gr_pool *p, void (*fn)(void *ctx, int i), void *ctx, int n);

/* The late-worker fallback (default on; GR_POOL_ADAPT=0 turns it off), and how
 * many times it has sent the pool solo (for tests and benchmarks). */
void gr_pool_set_adapt(gr_pool *p, int on);
long gr_pool_solo_spells(const gr_pool *p);

#endif
