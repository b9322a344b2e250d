/* CUDA graphs of the decode step (backend.h: graph_begin / graph_end).
 *
 * A decode step of a 1B model is ~200 small launches; replaying them as one
 * graph saves the CPU's launch overhead (several µs each), which at batch 1
 * is a large part of a step. forward.c names each step's shape with a key
 * (batch size, block-table width, model, every buffer's address); the inputs
 * live in device buffers uploaded before the step, so one graph per key
 * serves every step of that shape.
 *
 * The first time a key is seen the step runs plainly, so that every lazily
 * sized buffer (the bf16 copy of a matmul's input, cuBLASLt's plan for the
 * shape) exists before a capture, when allocating would break it; the second
 * time it is captured (thread-local mode: a call that may not be captured
 * fails the capture instead of running), instantiated and launched; later
 * times the graph is replayed. A key whose capture or launch failed is run
 * plainly from then on (counted in graph_failures). At most GR_GRAPHS graphs
 * are kept; the oldest entry makes room for a new key.
 *
 * STATUS: compiled, never run (no GPU while it was written). */
#include "cuda_impl.h"
#include <string.h>

#define GR_GRAPHS 64

enum { G_SEEN = 1, G_READY = 2, G_FAILED = 3 };

typedef struct graph_entry {
    uint64_t key;
    int state;             /* 0: empty, G_* */
    cudaGraphExec_t exec;
} graph_entry;

struct gr_graph_cache {
    graph_entry e[GR_GRAPHS];
    int next;              /* the entry a new key replaces */
    int capturing;         /* index of the entry being captured, -1 when none */
};

static gr_graph_cache *cache_of(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->graphs) {
        ci->graphs = (gr_graph_cache *)calloc(1, sizeof *ci->graphs);
        if (!ci->graphs) abort();
        ci->graphs->capturing = -1;
    }
    return ci->graphs;
}

static void entry_clear(graph_entry *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    memset(g, 0, sizeof *g);
}

static int failed(gr_backend *b, graph_entry *g) {
    (void)cudaGetLastError(); /* clear the error: the caller runs the ops plainly */
    if (g->exec) cudaGraphExecDestroy(g->exec);
    g->exec = NULL;
    g->state = G_FAILED;
    b->graph_failures++;
    return -1;
}

extern "C" int gr_cuda_graph_begin(gr_backend *b, uint64_t key) {
    if (!b->use_graphs) return -1;
    gr_graph_cache *gc = cache_of(b);
    cuda_impl *ci = gr_cuda_impl(b);
    graph_entry *g = NULL;
    for (int i = 0; i < GR_GRAPHS && !g; i++)
        if (gc->e[i].state && gc->e[i].key == key) g = &gc->e[i];
    if (!g) { /* first sight: run plainly, capture next time */
        g = &gc->e[gc->next];
        gc->next = (gc->next + 1) % GR_GRAPHS;
        entry_clear(g);
        g->key = key;
        g->state = G_SEEN;
        return -1;
    }
    if (g->state == G_FAILED) return -1;
    if (g->state == G_READY) {
        if (cudaGraphLaunch(g->exec, ci->stream) != cudaSuccess) return failed(b, g);
        b->graph_replays++;
        return 1;
    }
    if (cudaStreamBeginCapture(ci->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return failed(b, g);
    gc->capturing = (int)(g - gc->e);
    return 0;
}

extern "C" int gr_cuda_graph_end(gr_backend *b, uint64_t key) {
    gr_graph_cache *gc = cache_of(b);
    cuda_impl *ci = gr_cuda_impl(b);
    if (gc->capturing < 0) return -1;
    graph_entry *g = &gc->e[gc->capturing];
    gc->capturing = -1;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(ci->stream, &graph);
    if (e != cudaSuccess || !graph || g->key != key) {
        if (graph) cudaGraphDestroy(graph);
        return failed(b, g);
    }
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        g->exec = NULL;
        return failed(b, g);
    }
    if (cudaGraphLaunch(g->exec, ci->stream) != cudaSuccess) return failed(b, g);
    g->state = G_READY;
    b->graph_captures++;
    return 0;
}

void gr_cuda_graphs_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->graphs) return;
    for (int i = 0; i < GR_GRAPHS; i++) entry_clear(&ci->graphs->e[i]);
    free(ci->graphs);
    ci->graphs = NULL;
}
