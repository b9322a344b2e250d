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
    const char *store = getenv("GR_CUDA_TRAIN_STORE");
    s->store16 = !(f32 && *f32 == '1') && !(store && strcmp(store, "f32") == 0);
    return s;
}

void *gr_ctrain_scratch(gr_backend *b, int slot, size_t bytes) {
    train_state *s = gr_ctrain_state(b);
    if (bytes > s->cap[slot]) {
        GR_CU(cudaStreamSynchronize(gr_ctrain_stream(b)));
        if (s->scratch[slot]) GR_CU(cudaFree(s->scratch[slot]));
        s->scratch_bytes -= s->cap[slot];
        s->scratch[slot] = NULL;
        GR_CU(cudaMalloc(&s->scratch[slot], bytes));
        s->cap[slot] = bytes;
        s->scratch_bytes += bytes;
        if (s->live_bytes + s->scratch_bytes > s->peak_bytes) s->peak_bytes = s->live_bytes + s->scratch_bytes;
    }
    return s->scratch[slot];
}

static const gr_train_ops cuda_train_ops = {
    .name = "cuda",
    .matmul_fwd = gr_ctrain_matmul_fwd,
    .matmul_bwd = gr_ctrain_matmul_bwd,
    .rmsnorm_fwd = gr_ctrain_rmsnorm_fwd,
    .rmsnorm_bwd = gr_ctrain_rmsnorm_bwd,
    .rope = gr_ctrain_rope,
    .attention_fwd = gr_ctrain_attention_fwd,
    .attention_bwd = gr_ctrain_attention_bwd,
    .swiglu_fwd = gr_ctrain_swiglu_fwd,
    .swiglu_bwd = gr_ctrain_swiglu_bwd,
    .embedding_fwd = gr_ctrain_embedding_fwd,
    .embedding_bwd = gr_ctrain_embedding_bwd,
    .xent = gr_ctrain_xent,
    .sumsq = gr_ctrain_sumsq,
    .scale = gr_ctrain_scale,
    .adamw = gr_ctrain_adamw,
    .alloc = gr_ctrain_alloc,
    .release = gr_ctrain_release,
    .sync = gr_ctrain_sync,
    .zero = gr_ctrain_zero,
    .add = gr_ctrain_add,
    .rows = gr_ctrain_rows,
    .upload = gr_ctrain_upload,
    .download = gr_ctrain_download,
    .storage16 = gr_ctrain_storage16,
    .alloc16 = gr_ctrain_alloc16,
    .weights16 = gr_ctrain_weights16,
    .adamw_clip = gr_ctrain_adamw_clip,
    .mem_stats = gr_ctrain_mem_stats,
};

extern "C" const gr_train_ops *gr_train_ops_cuda(void) { return &cuda_train_ops; }
