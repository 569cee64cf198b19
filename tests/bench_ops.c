/* bench-ops: times the LLM ops at JanusFlow-1.3B shapes on the chosen device (not a test; no
 * timing assertions). Prints GPU-timestamp time and throughput per op, best of --reps runs
 * after a warm-up run (which includes the shader JIT), plus the process CPU time per run: on a
 * shared CPU (lavapipe) "GFLOP/s per 2 CPU-s" stays meaningful when other work competes.
 *
 *   bench-ops [--reps N] [--filter SUBSTRING] [--shape MxNxK ...]
 *
 * --shape times vkrt_op_matmul on the given shapes only (tools/bench-compare uses it to put our
 * GEMM next to OpenBLAS on the same shapes).
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "ops.h"

static VkrtContext *ctx;

static double cpu_seconds(void)
{
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6;
}

static VkrtBuffer *buf(uint64_t bytes, uint32_t pattern)
{
  GError *e = NULL;
  VkrtBuffer *b = vkrt_buffer_new(ctx, bytes, &e);
  if (!b) {
    fprintf(stderr, "bench-ops: %s\n", e->message);
    g_error_free(e);
    return NULL;
  }
  vkrt_buffer_fill(b, 0, bytes / 4 * 4, pattern, NULL);
  return b;
}

typedef void (*RecordFn)(VkrtSeq *seq, void *user);

/* Runs `record` once to warm up, then `reps` times; prints the best GPU time. */
static void bench(const char *name, uint64_t flops, uint64_t bytes, int reps, RecordFn record, void *user)
{
  GError *e = NULL;
  VkrtSeq *seq = vkrt_seq_new(ctx, &e);
  double best = INFINITY, best_cpu = INFINITY, first = 0, best_rec = INFINITY;
  for (int r = 0; r <= reps; r++) {
    vkrt_seq_begin(seq);
    vkrt_seq_mark(seq, "start");
    gint64 r0 = g_get_monotonic_time();
    record(seq, user);
    double rec_us = (double)(g_get_monotonic_time() - r0);
    vkrt_seq_mark(seq, "end");
    double c0 = cpu_seconds();
    gint64 t0 = g_get_monotonic_time();
    if (!vkrt_seq_submit(seq, &e)) {
      printf("%-34s error: %s\n", name, e->message);
      g_clear_error(&e);
      vkrt_seq_free(seq);
      return;
    }
    double wall = (g_get_monotonic_time() - t0) * 1e-3, cpu = (cpu_seconds() - c0) * 1e3;
    uint32_t n;
    const VkrtTiming *t = vkrt_seq_timings(seq, &n);
    double ms = n >= 2 ? t[1].ms : wall;
    if (r == 0) {
      first = wall;
      continue;
    }
    if (ms < best) best = ms;
    if (cpu < best_cpu) best_cpu = cpu;
    if (rec_us < best_rec) best_rec = rec_us;
  }
  printf("%-34s %9.3f ms", name, best);
  if (flops) printf("  %7.1f GFLOP/s  %7.1f GFLOP/2cpu-s", flops / (best * 1e6), flops / (best_cpu / 2 * 1e6));
  if (bytes) printf("  %6.1f GB/s", bytes / (best * 1e6));
  /* host time to record the dispatches (the CPU cost a GPU's command-buffer replay saves) */
  printf("  (first run %.0f ms, recorded in %.0f us)\n", first, best_rec);
  vkrt_seq_free(seq);
}

typedef struct { VkrtBuffer *y, *x, *w; uint32_t M, N, K; } MM;

static void rec_matmul(VkrtSeq *seq, void *u)
{
  MM *m = u;
  vkrt_op_matmul(seq, vkrt_tensor(m->y), vkrt_tensor(m->x), vkrt_tensor(m->w), vkrt_tensor_none(), m->M, m->N, m->K, 0);
}

static void bench_matmul(uint32_t M, uint32_t N, uint32_t K, int reps)
{
  MM m = { buf(4ull * M * N, 0), buf(4ull * M * K, 0x3c000000u), buf(2ull * N * K, 0x3c003c00u), M, N, K };
  char name[64];
  g_snprintf(name, sizeof name, "matmul %ux%ux%u", M, N, K);
  if (m.y && m.x && m.w)
    bench(name, 2ull * M * N * K, 2ull * N * K + 4ull * M * (N + K), reps, rec_matmul, &m);
  vkrt_buffer_free(m.y); vkrt_buffer_free(m.x); vkrt_buffer_free(m.w);
}

typedef struct { VkrtBuffer *o, *q, *k, *v, *s; VkrtAttnParams p; } AT;

static void rec_attention(VkrtSeq *seq, void *u)
{
  AT *a = u;
  vkrt_op_attention(seq, vkrt_tensor(a->o), vkrt_tensor(a->q), vkrt_tensor(a->k), vkrt_tensor(a->v),
                    vkrt_tensor_none(), &a->p);
}

/* Each shape twice: the online kernel, then with scratch (the GEMM form where the device takes
 * it; the name says which ran); causal shapes a third time as the LLM runs them on a GPU, with
 * the fp16 K/V cache (its values here: 0 and 1 in turn). */
static void bench_attention(uint32_t B, uint32_t nq, uint32_t q_start, uint32_t n_kv, uint32_t H, uint32_t D,
                            bool causal, int reps)
{
  uint32_t cap = n_kv;
  AT a = { buf(4ull * B * nq * H * D, 0), buf(4ull * B * nq * H * D, 0x3c000000u),
           buf(4ull * B * cap * H * D, 0x3c000000u), buf(4ull * B * cap * H * D, 0x3f800000u),
           buf(VKRT_ATTN_SCRATCH_BYTES, 0),
           { B, nq, H, D, q_start, n_kv, cap, causal, 1.0f / sqrtf((float)D), H, vkrt_tensor_none(), false } };
  uint64_t pairs = 0;
  for (uint32_t i = 0; i < nq; i++) pairs += causal ? MIN(n_kv, q_start + i + 1) : n_kv;
  for (int with = 0; with < (causal ? 3 : 2); with++) {
    a.p.scratch = with ? vkrt_tensor(a.s) : vkrt_tensor_none();
    a.p.kv_f16 = with == 2;
    char name[80];
    g_snprintf(name, sizeof name, "attention %s B%u q%u kv%u H%u D%u%s%s",
               with ? vkrt_ops_attention_path(ctx, nq, B * H, D) : "online", B, nq, n_kv, H, D,
               causal ? "" : " full", a.p.kv_f16 ? " kv-f16" : "");
    bench(name, 4ull * pairs * H * D * B, 0, reps, rec_attention, &a);
  }
  vkrt_buffer_free(a.o); vkrt_buffer_free(a.q); vkrt_buffer_free(a.k); vkrt_buffer_free(a.v); vkrt_buffer_free(a.s);
}

typedef struct { VkrtBuffer *y, *x, *w, *ids; uint32_t rows, dim; } RN;

static void rec_rmsnorm(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_rmsnorm(seq, vkrt_tensor(r->y), vkrt_tensor(r->x), vkrt_tensor(r->w), r->rows, r->dim, 1e-6f);
}

static void rec_rope(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_rope(seq, vkrt_tensor(r->x), vkrt_tensor(r->ids), r->rows, r->dim, 16, 128, 10000.0f);
}

static void rec_silu_mul(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_silu_mul(seq, vkrt_tensor(r->y), vkrt_tensor(r->x), vkrt_tensor(r->x), r->rows * r->dim);
}

static void rec_embed(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_embed(seq, vkrt_tensor(r->y), vkrt_tensor(r->w), vkrt_tensor(r->ids), r->rows, r->dim, 102400);
}

static void rec_topk(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_topk(seq, vkrt_tensor(r->y), vkrt_tensor(r->ids), vkrt_tensor(r->x), r->dim, 256);
}

static void rec_argmax(VkrtSeq *seq, void *u)
{
  RN *r = u;
  vkrt_op_argmax(seq, vkrt_tensor(r->ids), vkrt_tensor(r->x), r->rows, r->dim);
}

static void rec_empty(VkrtSeq *seq, void *u)
{
  RN *r = u;
  for (int i = 0; i < 100; i++) vkrt_op_add(seq, vkrt_tensor(r->y), vkrt_tensor(r->y), vkrt_tensor(r->y), 1);
}

static bool want(const char *filter, const char *name)
{
  return !filter || strstr(name, filter);
}

int main(int argc, char **argv)
{
  int reps = 3;
  char *filter = NULL, **shapes = NULL;
  GOptionEntry entries[] = {
    { "reps", 'r', 0, G_OPTION_ARG_INT, &reps, "Timed runs per op (after one warm-up)", "N" },
    { "filter", 'f', 0, G_OPTION_ARG_STRING, &filter, "Only ops whose group name contains this", "S" },
    { "shape", 's', 0, G_OPTION_ARG_STRING_ARRAY, &shapes, "Only matmul on this shape (repeatable)", "MxNxK" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- time the LLM ops");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *e = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &e)) {
    fprintf(stderr, "bench-ops: %s\n", e->message);
    return 2;
  }
  g_option_context_free(oc);
  uint32_t *mnk = g_new0(uint32_t, 3 * (shapes ? g_strv_length(shapes) : 0));  /* M, N, K per shape */
  for (guint i = 0; shapes && shapes[i]; i++) {
    char end;
    uint32_t *s = mnk + 3 * i;
    if (sscanf(shapes[i], "%ux%ux%u%c", &s[0], &s[1], &s[2], &end) != 3 || !s[0] || !s[1] || !s[2] || s[2] % 8) {
      fprintf(stderr, "bench-ops: --shape wants MxNxK with K a multiple of 8, not '%s'\n", shapes[i]);
      g_strfreev(shapes);
      g_free(mnk);
      g_free(filter);
      return 2;
    }
  }
  ctx = vkrt_context_new(&(VkrtOptions){ 0 }, &e);
  if (!ctx) {
    fprintf(stderr, "bench-ops: %s\n", e->message);
    return 1;
  }
  printf("device: %s\n", vkrt_context_info(ctx)->name);
  if (shapes) {
    for (guint i = 0; shapes[i]; i++) bench_matmul(mnk[3 * i], mnk[3 * i + 1], mnk[3 * i + 2], reps);
    g_free(filter);
    filter = g_strdup("-");  /* no group name contains it: nothing else runs */
  }
  if (want(filter, "gemm")) {
    bench_matmul(577, 2048, 2048, reps);
    bench_matmul(577, 5632, 2048, reps);
    bench_matmul(577, 2048, 5632, reps);
  }
  if (want(filter, "gemv")) {
    bench_matmul(1, 2048, 2048, reps);
    bench_matmul(2, 5632, 2048, reps);
    bench_matmul(1, 102400, 2048, reps);
  }
  if (want(filter, "attention")) {
    bench_attention(1, 577, 0, 577, 16, 128, true, reps);       /* JanusFlow-1.3B prefill */
    bench_attention(2, 577, 24, 601, 8, 128, true, reps);       /* `small` Euler step, CFG pair */
    bench_attention(1, 576, 0, 576, 8, 64, false, reps);        /* `small` SigLIP */
    bench_attention(2, 1, 600, 601, 16, 128, true, reps);       /* decode */
    bench_attention(1, 1, 4095, 4096, 16, 128, true, reps);     /* decode at the chat's full context */
  }
  if (want(filter, "small")) {
    uint32_t rows = 577, dim = 2048;
    RN r = { buf(4ull * rows * 5632, 0), buf(4ull * rows * 5632, 0x3f800000u), buf(2ull * 102400 * dim, 0x3f803f80u),
             buf(4ull * rows, 1), rows, dim };
    bench("rmsnorm 577x2048", 0, 8ull * rows * dim, reps, rec_rmsnorm, &r);
    bench("rope 577x(16x128)", 0, 8ull * rows * dim, reps, rec_rope, &r);
    bench("embed 577x2048", 0, 6ull * rows * dim, reps, rec_embed, &r);
    r.dim = 5632;
    bench("silu_mul 577x5632", 0, 12ull * rows * 5632, reps, rec_silu_mul, &r);
    r.rows = 1;
    r.dim = 102400;
    bench("argmax 1x102400", 0, 4ull * 102400, reps, rec_argmax, &r);
    bench("topk 256 of 102400", 0, 4ull * 102400, reps, rec_topk, &r);
    bench("100 tiny dispatches", 0, 0, reps, rec_empty, &r);
    vkrt_buffer_free(r.y); vkrt_buffer_free(r.x); vkrt_buffer_free(r.w); vkrt_buffer_free(r.ids);
  }
  vkrt_context_free(ctx);
  g_free(filter);
  g_strfreev(shapes);
  g_free(mnk);
  return 0;
}
