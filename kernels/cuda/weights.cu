/* Model weights on the GPU: every matrix as bf16 [rows][cols] whatever the file
 * holds (F32/F16/BF16 converted, Q8_0/Q4_0/Q4_1 dequantized, through
 * gr_tensor_row_f32 then round-to-nearest-even), norm vectors and RoPE
 * frequencies as f32. Keyed by the host address of the loaded model's data: the
 * model is read-only and outlives the backend's use of it, so one address is one
 * weight (an entry whose type or shape differs -- another model now mapped at a
 * freed one's address -- is converted again). prepare() converts all of a model's weights at load, so that no op
 * uploads in the middle of a forward pass and running out of memory is reported
 * up front rather than aborting an op. */
#include "cuda_impl.h"
#include <string.h>
#include <unordered_map>
#include <vector>

struct weight_entry {
    void *dev;
    size_t bytes;
    int type;              /* what was converted: a hit must match it */
    int64_t rows, cols;
};
struct gr_weight_map {
    std::unordered_map<const void *, weight_entry> map;
    size_t bytes = 0;
};

static gr_weight_map *wmap(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->weights) ci->weights = new gr_weight_map();
    return ci->weights;
}

/* Converts t to bf16 on the host, a slab of rows at a time, and uploads it.
 * NULL when the device has no room. */
static const void *upload_tensor(gr_backend *b, const gr_tensor *t) {
    gr_weight_map *w = wmap(b);
    auto it = w->map.find(t->data);
    if (it != w->map.end()) {
        if (it->second.type == t->type && it->second.rows == t->rows && it->second.cols == t->cols)
            return it->second.dev;
        GR_CU(cudaStreamSynchronize(gr_cuda_impl(b)->stream));
        cudaFree(it->second.dev);
        w->bytes -= it->second.bytes;
        w->map.erase(it);
    }
    cuda_impl *ci = gr_cuda_impl(b);
    size_t es = ci->f32 ? sizeof(float) : sizeof(__nv_bfloat16);
    size_t rows = (size_t)t->rows, cols = (size_t)t->cols, bytes = rows * cols * es;
    void *dev = NULL;
    if (cudaMalloc(&dev, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    size_t slab = (16u << 20) / (cols * es);
    if (slab < 1) slab = 1;
    if (slab > rows) slab = rows;
    __nv_bfloat16 *stage = NULL;
    GR_CU(cudaMallocHost((void **)&stage, slab * cols * es));
    float *stage32 = (float *)stage;
    std::vector<float> row(cols);
    for (size_t r0 = 0; r0 < rows; r0 += slab) {
        size_t nr = rows - r0 < slab ? rows - r0 : slab;
        GR_CU(cudaStreamSynchronize(ci->stream)); /* the previous slab has left the stage */
        if (ci->f32) {
            for (size_t r = 0; r < nr; r++) gr_tensor_row_f32(t, (int64_t)(r0 + r), stage32 + r * cols);
        } else if (t->type == GR_BF16 && t->row_bytes == cols * sizeof(__nv_bfloat16)) {
            /* already bf16: the file's bytes as they are */
            memcpy(stage, (const char *)t->data + r0 * t->row_bytes, nr * t->row_bytes);
        } else {
            for (size_t r = 0; r < nr; r++) {
                gr_tensor_row_f32(t, (int64_t)(r0 + r), row.data());
                for (size_t c = 0; c < cols; c++) stage[r * cols + c] = __float2bfloat16_rn(row[c]);
            }
        }
        GR_CU(cudaMemcpyAsync((char *)dev + r0 * cols * es, stage, nr * cols * es, cudaMemcpyHostToDevice,
                              ci->stream));
    }
    GR_CU(cudaStreamSynchronize(ci->stream));
    GR_CU(cudaFreeHost(stage));
    w->map[t->data] = weight_entry{dev, bytes, t->type, t->rows, t->cols};
    w->bytes += bytes;
    return dev;
}

static const float *upload_vector(gr_backend *b, const float *host, size_t n) {
    gr_weight_map *w = wmap(b);
    auto it = w->map.find(host);
    if (it != w->map.end()) {
        if (it->second.type == -1 && it->second.bytes == n * sizeof(float)) return (const float *)it->second.dev;
        GR_CU(cudaStreamSynchronize(gr_cuda_impl(b)->stream));
        cudaFree(it->second.dev);
        w->bytes -= it->second.bytes;
        w->map.erase(it);
    }
    void *dev = NULL;
    if (cudaMalloc(&dev, n * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    GR_CU(cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice));
    w->map[host] = weight_entry{dev, n * sizeof(float), -1, (int64_t)n, 1};
    w->bytes += n * sizeof(float);
    return (const float *)dev;
}

const void *gr_cuda_weight(gr_backend *b, const gr_tensor *t) {
    const void *d = upload_tensor(b, t);
    if (!d) {
        fprintf(stderr, "out of GPU memory (a %lld x %lld weight)\n", (long long)t->rows, (long long)t->cols);
        abort();
    }
    return d;
}

const float *gr_cuda_vector(gr_backend *b, const float *host, size_t n) {
    const float *d = upload_vector(b, host, n);
    if (!d) {
        fprintf(stderr, "out of GPU memory (a vector of %zu floats)\n", n);
        abort();
    }
    return d;
}

int gr_cuda_prepare(gr_backend *b, const gr_model *m, gr_err *err) {
    const gr_model_config *c = &m->cfg;
    cuda_impl *ci = gr_cuda_impl(b);
    /* the number formats are fixed here, before any weight or KV pool exists */
    if (ci->weights && ci->f32 != (b->exact != 0))
        return gr_errf(err, "cuda: one backend cannot hold weights in both bf16 and exact (f32) form");
    ci->f32 = b->exact != 0;
    b->kv_dtype = ci->f32 ? GR_F32 : GR_BF16;
    std::vector<const gr_tensor *> ts;
    ts.push_back(&m->tok_emb);
    for (int l = 0; l < c->n_layers; l++) {
        const gr_layer *L = &m->layers[l];
        const gr_tensor *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (const gr_tensor *t : mats) ts.push_back(t);
    }
    ts.push_back(&m->lm_head);
    for (const gr_tensor *t : ts)
        if (!upload_tensor(b, t))
            return gr_errf(err, "cuda: out of GPU memory loading the weights (%zu MiB so far, a %lld x %lld "
                           "matrix next)", gr_cuda_weight_bytes(b) >> 20, (long long)t->rows, (long long)t->cols);
    for (int l = 0; l < c->n_layers; l++)
        if (!upload_vector(b, m->layers[l].attn_norm, (size_t)c->dim) ||
            !upload_vector(b, m->layers[l].ffn_norm, (size_t)c->dim))
            return gr_errf(err, "cuda: out of GPU memory loading the norm weights");
    if (!upload_vector(b, m->final_norm, (size_t)c->dim) ||
        !upload_vector(b, m->rope_inv, (size_t)c->head_dim / 2))
        return gr_errf(err, "cuda: out of GPU memory loading the norm weights");
    return 0;
}

size_t gr_cuda_weight_bytes(gr_backend *b) { return gr_cuda_impl(b)->weights ? gr_cuda_impl(b)->weights->bytes : 0; }

void gr_cuda_weights_free(gr_backend *b) {
    cuda_impl *ci = gr_cuda_impl(b);
    if (!ci->weights) return;
    for (auto &e : ci->weights->map) cudaFree(e.second.dev);
    delete ci->weights;
    ci->weights = NULL;
}
