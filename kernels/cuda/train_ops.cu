/* The CUDA training-op table (lib/backend_train.h) and the per-backend state
 * of train_impl.h. COMPILED, NEVER RUN here (no GPU): tests/gpu/test_train_ops
 * checks every op against the CPU table. */
#include "train_impl.h"
#include <string.h>

/* One state per CUDA backend (a process holds one or two): a small table. */
enum { MAX_STATES = 16 };
static train_state states[MAX_STATES];

train_state *gr_ctrain_state(gr_backend *b) {
    int free_slot = -1;
    for (int i = 0; i < MAX_STATES; i++) {
        if (states[i].b == b) return &states[i];
        if (!states[i].b && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) {
        fprintf(stderr, "cuda train: more than %d CUDA backends\n", MAX_STATES);
        abort();
    }
    train_state *s = &states[free_slot];
    memset(s, 0, sizeof *s);
    s->b = b;
    GR_CUBLAS(cublasCreate(&s->cublas));
    GR_CUBLAS(cublasSetStream(s->cublas, gr_ctrain_stream(b)));
    const char *f32 = getenv("GR_CUDA_TRAIN_F32");
    s->compute = f32 && *f32 == '1' ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F_FAST_16BF;
    return s;
}

void *gr_ctrain_scratch(gr_backend *b, int slot, size_t bytes) {
    train_state *s = gr_ctrain_state(b);
    if (bytes > s->cap[slot]) {
        GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b)));
        if (s->scratch[slot]) GR_CU(cudaFree(s->scratch[slot]));
        s->scratch[slot] = NULL;
        GR_CU(cudaMalloc(&s->scratch[slot], bytes));
        s->cap[slot] = bytes;
    }
    return s->scratch[slot];
}

static const gr_train_ops cuda_train_ops = {
    /* .name */ "cuda",
    gr_ctrain_matmul_fwd,
    gr_ctrain_matmul_bwd,
    gr_ctrain_rmsnorm_fwd,
    gr_ctrain_rmsnorm_bwd,
    gr_ctrain_rope,
    gr_ctrain_attention_fwd,
    gr_ctrain_attention_bwd,
    gr_ctrain_swiglu_fwd,
    gr_ctrain_swiglu_bwd,
    gr_ctrain_embedding_fwd,
    gr_ctrain_embedding_bwd,
    gr_ctrain_xent,
    gr_ctrain_sumsq,
    gr_ctrain_scale,
    gr_ctrain_adamw,
    gr_ctrain_alloc,
    gr_ctrain_release,
    gr_ctrain_sync,
    gr_ctrain_zero,
    gr_ctrain_add,
    gr_ctrain_rows,
};

extern "C" const gr_train_ops *gr_train_ops_cuda(void) { return &cuda_train_ops; }
