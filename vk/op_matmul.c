/* y = x . w^T (+ bias) (+ y) with an optional activation. Kernels (shaders/matmul.comp unless
 * said otherwise):
 *  - GEMM_TEX: register-tiled texel-buffer GEMM, the fastest form on CPU devices (lavapipe);
 *  - GEMM_SMEM: shared-memory tiled GEMM for GPUs, its tile chosen per device (gemm_tile_auto);
 *  - matmul_coop.comp: cooperative-matrix GEMM (fp16 operands, fp32 accumulation) on devices
 *    with VK_KHR_cooperative_matrix (the matmul_coop_khr build, where the build has it) or
 *    VK_NV_cooperative_matrix, used only after a self-check on the device (coop_usable);
 *  - GEMV_TEX for M <= 4; GENERIC (storage buffers) for shapes the texel kernels cannot take
 *    (K % 8 != 0, operands not 16-byte aligned).
 * Operands larger than one binding are split: rows of x and y into chunks, rows of w (the
 * output columns) into windows. */
#include "op_matmul_internal.h"

#include <math.h>

/* the GEMM tile (TM, TN, WG in matmul.comp; overridable to try variants) */
#ifndef GEMM_TM
#define GEMM_TM 16u
#define GEMM_TN 16u
#define GEMM_WG 16u
#endif
#define GEMV_MAX_M 4u
#define GEN_T 4u
#define GEN_WG 8u
/* matmul_coop.comp: fixed 64 x 64 tile of 4 subgroups; below COOP_MIN_M rows the fp32 kernels
 * (which cannot be told apart at that size) are kept */
#define COOP_BM 64u
#define COOP_BN 64u
#define COOP_SHARED_BYTES (2u * 64u * 40u * 2u + 64u * 68u * 4u + 4u * 64u * 4u)
#define COOP_MIN_M 64u
/* self-check: coopmat vs the fp32 kernel and both vs a double-precision reference; fp16
 * operands give ~1e-7 here (matmul_coop.comp), anything above 1e-5 means a broken kernel */
#define COOP_CHECK_M 37u
#define COOP_CHECK_N 100u
#define COOP_CHECK_K 64u
#define COOP_CHECK_NMSE 1e-5

typedef struct { uint32_t M, N, K, x_off, w_off, y_off, b_off, ldy, flags; } MatmulPush;

typedef enum { PATH_GEMV, PATH_REGISTER, PATH_SHARED, PATH_SHARED_F16, PATH_COOP, PATH_GENERIC } Path;

static volatile gint forced_gemm = -1;  /* -1: not read from the environment yet */
static volatile gint forced_gemv_rows;  /* 0: per device */
static GMutex tile_lock;
static bool tile_forced;
static VkrtGemmTile forced_tile;
static GMutex coop_lock;                /* serialises self-checks; guards the test state */
static volatile gint coop_test;        /* VkrtCoopmatTest */
static int coop_test_state;             /* the test stand-in's state (as vkrt_context_coopmat_state) */
static char *coop_test_note;

void vkrt_ops_force_gemm(VkrtGemmKernel kernel)
{
  g_atomic_int_set(&forced_gemm, (gint)kernel);
}

/* Rows of w per GEMV workgroup (64 invocations, a subgroup per 4 rows at a time). On a CPU
 * device 32: each of lavapipe's eight 8-lane subgroups takes one group of 4 rows, and fewer,
 * larger workgroups keep its per-workgroup overhead down. On a GPU one group of 4 rows per
 * subgroup (8 rows with 32-lane subgroups, 4 with 64): four times the workgroups of 32 rows,
 * so that a 2048-row decode GEMV spreads over the hundred-odd compute units of a large GPU
 * instead of 64 workgroups (a chosen shape, not a measured one: no GPU has run it yet). */
uint32_t vkrt_ops_gemv_rows(const VkrtDeviceInfo *di)
{
  gint f = g_atomic_int_get(&forced_gemv_rows);
  if (f > 0) return (uint32_t)f;
  if (di->type == VKRT_DEVICE_CPU || di->subgroup_size == 0) return 32;
  uint32_t per_wg = 64 / MIN(di->subgroup_size, 64u);
  return 4 * MAX(per_wg, 1u);
}

void vkrt_ops_force_gemv_rows(uint32_t rows)
{
  g_atomic_int_set(&forced_gemv_rows, (gint)(rows / 4 * 4));
}

VkrtGemmKernel op_matmul_kernel(void)
{
  gint k = g_atomic_int_get(&forced_gemm);
  if (k < 0) {
    const char *e = g_getenv("JANUSFLOW_GEMM");
    k = !e ? VKRT_GEMM_AUTO : g_ascii_strcasecmp(e, "shared") == 0 ? VKRT_GEMM_SHARED
      : g_ascii_strcasecmp(e, "register") == 0 ? VKRT_GEMM_REGISTER
      : g_ascii_strcasecmp(e, "shared-f16") == 0 ? VKRT_GEMM_SHARED_F16EMU
      : g_ascii_strcasecmp(e, "coopmat") == 0 ? VKRT_GEMM_COOPMAT : VKRT_GEMM_AUTO;
    g_atomic_int_set(&forced_gemm, k);
  }
  return (VkrtGemmKernel)k;
}

/* --- the shared-memory GEMM's tile ----------------------------------------------------------- */

static uint32_t tile_shared_bytes(const VkrtGemmTile *t, bool f16emu)
{
  /* two buffers of BK x (BM + BN) floats; the fp16 emulation adds 4 words per row */
  return 2u * t->bk * (t->bm + t->bn) * 4u + (f16emu ? (t->bm + t->bn) * 8u : 0u);
}

static bool tile_valid(const VkrtDeviceInfo *di, const VkrtGemmTile *t, bool f16emu)
{
  if (t->tm == 0 || t->tn == 0 || t->tm % 4 || t->tn % 4 || t->tm > 16 || t->tn > 16) return false;
  if (t->bm == 0 || t->bn == 0 || t->bm % t->tm || t->bn % t->tn || t->bk == 0 || t->bk % 8 || t->bk > 64)
    return false;
  uint32_t threads = (t->bm / t->tm) * (t->bn / t->tn);
  return threads <= di->max_wg_invocations && threads <= 1024 && tile_shared_bytes(t, f16emu) <= di->max_shared_bytes;
}

/* The per-device choice (nothing here was measured on a GPU; see docs/PERFORMANCE.md):
 *  - 128 x 128 tiles with 8 x 8 outputs per thread (256 threads, 32 KiB of double-buffered
 *    shared memory) on NVIDIA and AMD discrete GPUs, where 64 FMAs per pair of shared vec4
 *    loads keep the FMA units ahead of shared-memory bandwidth and 48-64 KiB of shared memory
 *    still lets two workgroups share an SM/CU; only when the output has enough such tiles to
 *    fill the device (>= 256, about 2 per SM on the largest parts), else the smaller tile,
 *    since idle SMs cost more than a lower arithmetic intensity;
 *  - 64 x 64 with 4 x 4 per thread (256 threads, 16 KiB) elsewhere (integrated GPUs, Intel,
 *    others): lower register pressure (16 accumulators) for GPUs with smaller register files
 *    and 16 KiB fits the smallest shared memory Vulkan allows; 256 threads are 8 subgroups of
 *    32, 4 of 64 (AMD wave64) or 16-32 of Intel's 8-16, all whole;
 *  - smaller tiles (32 x 32 / 64 threads) if the device limits workgroups or shared memory
 *    below that. BK halves when shared memory is short. */
void vkrt_ops_gemm_tile(const VkrtDeviceInfo *di, uint32_t M, uint32_t N, VkrtGemmTile *out)
{
  static const VkrtGemmTile big = { 128, 128, 16, 8, 8 }, mid = { 64, 64, 16, 4, 4 },
                            small = { 32, 32, 16, 4, 4 }, tiny = { 16, 16, 8, 4, 4 };
  bool bigvendor = di->vendor_id == 0x10de || di->vendor_id == 0x1002;
  uint64_t big_tiles = (uint64_t)((M + 127) / 128) * ((N + 127) / 128);
  const VkrtGemmTile *order[] = { &big, &mid, &small, &tiny };
  for (size_t i = (bigvendor && di->type == VKRT_DEVICE_DISCRETE && big_tiles >= 256) ? 0 : 1;
       i < G_N_ELEMENTS(order); i++) {
    VkrtGemmTile t = *order[i];
    if (!tile_valid(di, &t, true) && t.bk > 8) t.bk /= 2;
    if (tile_valid(di, &t, true)) {
      *out = t;
      return;
    }
  }
  *out = tiny;  /* fits every Vulkan device (128 invocations, 16 KiB are the required minimums) */
}

void vkrt_ops_force_gemm_tile(const VkrtGemmTile *tile)
{
  g_mutex_lock(&tile_lock);
  tile_forced = tile != NULL;
  if (tile) forced_tile = *tile;
  g_mutex_unlock(&tile_lock);
}

static void gemm_tile_for(const VkrtDeviceInfo *di, uint32_t M, uint32_t N, VkrtGemmTile *t)
{
  g_mutex_lock(&tile_lock);
  bool forced = tile_forced;
  if (forced) *t = forced_tile;
  g_mutex_unlock(&tile_lock);
  if (!forced) vkrt_ops_gemm_tile(di, M, N, t);
}

/* --- recording ------------------------------------------------------------------------------- */

static Path choose_path(VkrtContext *ctx, bool tex, uint32_t mc);

/* Records y = x . w^T (+ bias) (+ y) for the chunk: one dispatch of `path`. */
static void record_gemm(VkrtSeq *seq, Path path, OpBind by, OpBind bx, OpBind bw, OpBind bb, const MatmulPush *push,
                        bool count_flops)
{
  const char *op = "matmul";
  const VkrtDeviceInfo *di = vkrt_context_info(vkrt_seq_context(seq));
  uint32_t mc = push->M, nc = push->N;
  VkrtDispatch d = {
    .n_bindings = 4,
    .bindings = { by.bind, bx.bind, bw.bind, bb.bind },
    .push = push,
    .push_size = sizeof *push,
    .flops = count_flops ? 2ull * mc * nc * push->K : 0,
    .texel_mask = path == PATH_GENERIC ? 0 : 0x6,
  };
  switch (path) {
  case PATH_GEMV:
    d.shader = "matmul_gemv";
    d.spec[0] = mc;
    d.spec[1] = vkrt_ops_gemv_rows(di);
    d.n_spec = 2;
    vkrt_groups_linear((nc + d.spec[1] - 1) / d.spec[1], d.groups);
    break;
  case PATH_SHARED:
  case PATH_SHARED_F16: {
    VkrtGemmTile t;
    gemm_tile_for(di, mc, nc, &t);
    if (!tile_valid(di, &t, path == PATH_SHARED_F16)) {
      op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "GEMM tile %ux%u (BK %u, %ux%u per thread) is not possible on this device",
              t.bm, t.bn, t.bk, t.tm, t.tn);
      return;
    }
    d.shader = path == PATH_SHARED ? "matmul_gemm_smem" : "matmul_gemm_smem_f16emu";
    d.spec[0] = (t.bm / t.tm) * (t.bn / t.tn);
    d.spec[1] = t.bm;
    d.spec[2] = t.bn;
    d.spec[3] = t.bk;
    d.spec[4] = t.tm;
    d.spec[5] = t.tn;
    d.n_spec = 6;
    d.groups[0] = (nc + t.bn - 1) / t.bn;
    d.groups[1] = (mc + t.bm - 1) / t.bm;
    d.groups[2] = 1;
    break;
  }
  case PATH_COOP:
    if (g_atomic_int_get(&coop_test) != VKRT_COOPMAT_TEST_OFF) {
      /* the stand-in (tests): the fp16-emulating fp32 kernel, or a shader that does not exist */
      if (g_atomic_int_get(&coop_test) == VKRT_COOPMAT_TEST_BROKEN) {
        d.shader = "matmul_coop_missing";
        d.groups[0] = d.groups[1] = d.groups[2] = 1;
        break;
      }
      record_gemm(seq, PATH_SHARED_F16, by, bx, bw, bb, push, count_flops);
      return;
    }
    d.shader = di->coopmat_khr ? "matmul_coop_khr" : "matmul_coop";
    d.spec[0] = 4 * di->subgroup_size;
    d.spec[1] = di->coopmat_m;
    d.spec[2] = di->coopmat_n;
    d.spec[3] = di->coopmat_k;
    d.n_spec = 4;
    d.groups[0] = (nc + COOP_BN - 1) / COOP_BN;
    d.groups[1] = (mc + COOP_BM - 1) / COOP_BM;
    d.groups[2] = 1;
    break;
  case PATH_REGISTER:
    d.shader = "matmul_gemm";
    d.groups[0] = (nc + GEMM_TN * GEMM_WG - 1) / (GEMM_TN * GEMM_WG);
    d.groups[1] = (mc + GEMM_TM - 1) / GEMM_TM;
    d.groups[2] = 1;
    break;
  case PATH_GENERIC:
    d.shader = "matmul_generic";
    d.groups[0] = (nc + GEN_T * GEN_WG - 1) / (GEN_T * GEN_WG);
    d.groups[1] = (mc + GEN_T * GEN_WG - 1) / (GEN_T * GEN_WG);
    d.groups[2] = 1;
    break;
  }
  if (d.groups[0] > 65535 || d.groups[1] > 65535) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "M = %u, N = %u is too large for one dispatch", mc, nc);
    return;
  }
  vkrt_seq_dispatch(seq, &d);
}

typedef struct {
  uint32_t K, N, pflags;
  int path;         /* < 0: chosen per row chunk */
  Path chunk_path;
  bool tex, count_flops;
} MatmulJob;

static gboolean matmul_record(VkrtSeq *seq, const OpMatmulWindow *win, void *user)
{
  MatmulJob *j = user;
  if (win->n0 == 0)
    j->chunk_path = j->path >= 0 ? (Path)j->path : choose_path(vkrt_seq_context(seq), j->tex, win->mc);
  MatmulPush push = { win->mc, win->nc, j->K, win->x.off, win->w[0].off, (uint32_t)(win->y.off + win->n0),
                      win->bias.off, j->N, j->pflags };
  record_gemm(seq, j->chunk_path, win->y, win->x, win->w[0], win->bias, &push, j->count_flops);
  return TRUE;  /* a failed dispatch leaves its error in seq, which stops later recording */
}

/* path < 0: chosen per chunk */
static void matmul(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                   uint32_t M, uint32_t N, uint32_t K, uint32_t flags, int path, bool count_flops)
{
  const char *op = "matmul";
  if (!op_matmul_check_flags(seq, op, flags))
    return;
  if (!op_check(seq, op, "y", y, (uint64_t)M * N * 4) || !op_check(seq, op, "x", x, (uint64_t)M * K * 4) ||
      !op_check(seq, op, "w", w, (uint64_t)N * K * 2))
    return;
  bool has_bias = bias.buf != NULL;
  if (has_bias && !op_check(seq, op, "bias", bias, (uint64_t)N * 2)) return;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "K = 0");
    return;
  }

  /* texel kernels read whole 16-byte texels: 8 weights / 4 activations at a time */
  bool tex = K % 8 == 0 && x.offset % 16 == 0 && w.offset % 16 == 0;
  if (path >= 0 && path != PATH_GENERIC && !tex) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "this kernel needs K %% 8 == 0 and 16-byte aligned operands");
    return;
  }
  OpMatmulArgs a = {
    .op = op, .y = y, .x = x, .bias = bias, .M = M, .N = N, .K = K, .tex = tex,
    .n_w = 1,
    .w = { { "w", w, (uint64_t)K * 2, tex ? 16 : 2 } },
    .act = op_matmul_activation(flags),
  };
  MatmulJob j = { K, N, op_matmul_push_flags(flags, has_bias), path, PATH_GENERIC, tex, count_flops };
  op_matmul_windows(seq, &a, matmul_record, &j);
}

void vkrt_op_matmul(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                    uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  matmul(seq, y, x, w, bias, M, N, K, flags, -1, true);
}

/* --- cooperative matrices: self-check and selection -------------------------------------------
 * None of this has run on a GPU: no such device was available. The KHR kernel runs on Mesa
 * 26's lavapipe (tools/mesa-next; tests/test_gpu_paths.c /gpu/coopmat/real), the NV build
 * nowhere. The self-check is what protects a user's results: it runs the kernel once per
 * context on a small problem before any real use, and any failure (pipeline, submit, NaN,
 * mismatch) turns the path off for the context. Elsewhere the stand-ins of
 * vkrt_ops_coopmat_test_mode() run it (tests/test_gpu_paths.c). */

static double nmse(const float *got, const double *want, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  return isfinite(num) ? num / MAX(den, 1e-30) : INFINITY;
}

static float bf16_to_f32(uint16_t h)
{
  union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
  return v.f;
}

/* 1: passed; -1: failed, *note says why */
static int coop_self_check(VkrtContext *ctx, double max_nmse, char **note)
{
  const uint32_t M = COOP_CHECK_M, N = COOP_CHECK_N, K = COOP_CHECK_K;
  float *x = g_new(float, M * K), *y0 = g_new(float, M * N), *ys = g_new(float, M * N), *yc = g_new(float, M * N);
  uint16_t *w = g_new(uint16_t, N * K), *b = g_new(uint16_t, N);
  double *ref = g_new(double, M * N);
  /* a fixed pseudo-random problem; x spans several binades, with one row far beyond fp16's
   * range, so that the kernel's per-row scaling is checked too */
  uint32_t s = 12345;
#define RND() ((s = s * 1664525u + 1013904223u), ((double)(s >> 8) / 16777216.0 - 0.5))
  for (uint32_t i = 0; i < M * K; i++) x[i] = (float)(RND() * (i / K == 5 ? 2e6 : i / K % 3 == 0 ? 40.0 : 1.0));
  for (uint32_t i = 0; i < N * K; i++) {
    union { float f; uint32_t u; } v = { .f = (float)RND() };
    w[i] = (uint16_t)(v.u >> 16);
  }
  for (uint32_t i = 0; i < N; i++) b[i] = (uint16_t)(0x3f80u + (i & 7));  /* 1.0 .. 1.05 */
  for (uint32_t i = 0; i < M * N; i++) y0[i] = (float)RND();
  for (uint32_t m = 0; m < M; m++)
    for (uint32_t n = 0; n < N; n++) {
      double acc = 0;
      for (uint32_t k = 0; k < K; k++) acc += (double)x[m * K + k] * bf16_to_f32(w[n * K + k]);
      ref[m * N + n] = acc + bf16_to_f32(b[n]) + y0[m * N + n];
    }
#undef RND
  GError *e = NULL;
  VkrtSeq *seq = NULL;
  VkrtBuffer *bx = vkrt_buffer_new(ctx, 4 * M * K, &e), *bw = !e ? vkrt_buffer_new(ctx, 2 * N * K, &e) : NULL;
  VkrtBuffer *bb = !e ? vkrt_buffer_new(ctx, 2 * N, &e) : NULL;
  VkrtBuffer *bys = !e ? vkrt_buffer_new(ctx, 4 * M * N, &e) : NULL, *byc = !e ? vkrt_buffer_new(ctx, 4 * M * N, &e) : NULL;
  if (!e && vkrt_buffer_write(bx, 0, x, 4 * M * K, &e) && vkrt_buffer_write(bw, 0, w, 2 * N * K, &e) &&
      vkrt_buffer_write(bb, 0, b, 2 * N, &e) && vkrt_buffer_write(bys, 0, y0, 4 * M * N, &e) &&
      vkrt_buffer_write(byc, 0, y0, 4 * M * N, &e) && (seq = vkrt_seq_new(ctx, &e))) {
    vkrt_seq_begin(seq);
    bool cpu = vkrt_context_info(ctx)->type == VKRT_DEVICE_CPU;
    matmul(seq, vkrt_tensor(bys), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor(bb), M, N, K, VKRT_MM_ACCUMULATE,
           cpu ? PATH_REGISTER : PATH_SHARED, false);
    matmul(seq, vkrt_tensor(byc), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor(bb), M, N, K, VKRT_MM_ACCUMULATE,
           PATH_COOP, false);
    if (vkrt_seq_submit(seq, &e) && vkrt_buffer_read(bys, 0, ys, 4 * M * N, &e))
      vkrt_buffer_read(byc, 0, yc, 4 * M * N, &e);
  }
  int result = -1;
  if (e) {
    *note = g_strdup_printf("self-check failed: %s", e->message);
    g_error_free(e);
  } else {
    double es = nmse(ys, ref, M * N), ec = nmse(yc, ref, M * N);
    if (!(es <= 1e-10))
      *note = g_strdup_printf("self-check inconclusive: the fp32 GEMM is off by nmse %.2g", es);
    else if (!(ec <= max_nmse))
      *note = g_strdup_printf("self-check failed: cooperative-matrix GEMM nmse %.2g vs the fp32 GEMM (limit %.0g)",
                              ec, max_nmse);
    else {
      *note = g_strdup_printf("passed its self-check (nmse %.2g vs the fp32 GEMM)", ec);
      result = 1;
    }
  }
  vkrt_seq_free(seq);
  VkrtBuffer *bufs[] = { bx, bw, bb, bys, byc };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    if (bufs[i]) vkrt_buffer_free(bufs[i]);
  g_free(x); g_free(y0); g_free(ys); g_free(yc); g_free(w); g_free(b); g_free(ref);
  return result;
}

static bool coop_env_disabled(void)
{
  const char *e = g_getenv("JANUSFLOW_COOPMAT");
  return e && (g_strcmp0(e, "0") == 0 || g_ascii_strcasecmp(e, "off") == 0);
}

bool vkrt_ops_coopmat_usable(VkrtContext *ctx, const char **note)
{
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  g_mutex_lock(&coop_lock);
  int state;
  VkrtCoopmatTest test = (VkrtCoopmatTest)g_atomic_int_get(&coop_test);
  if (test != VKRT_COOPMAT_TEST_OFF) {
    if (coop_test_state == 0) {
      char *why = NULL;
      coop_test_state = coop_self_check(ctx, test == VKRT_COOPMAT_TEST_MISMATCH ? 0.0 : COOP_CHECK_NMSE, &why);
      g_free(coop_test_note);
      coop_test_note = g_strdup_printf("test stand-in (fp16-emulating fp32 kernel): %s", why);
      g_free(why);
      if (coop_test_state < 0) g_message("cooperative-matrix GEMM disabled: %s", coop_test_note);
    }
    state = coop_test_state;
    if (note) *note = coop_test_note;
  } else {
    const char *n = NULL;
    state = vkrt_context_coopmat_state(ctx, &n);
    if (state == 0) {
      char *why = NULL;
      if (coop_env_disabled())
        why = g_strdup("disabled by JANUSFLOW_COOPMAT=0"), state = -1;
      else if (4 * di->subgroup_size > di->max_wg_invocations || COOP_SHARED_BYTES > di->max_shared_bytes)
        why = g_strdup("the device's workgroup or shared-memory limits are below the kernel's needs"), state = -1;
      else
        state = coop_self_check(ctx, COOP_CHECK_NMSE, &why);
      vkrt_context_set_coopmat_state(ctx, state, why);
      if (state < 0) g_message("cooperative-matrix GEMM disabled on %s: %s", di->name, why);
      g_free(why);
      state = vkrt_context_coopmat_state(ctx, &n);
    }
    if (note) *note = n;
  }
  g_mutex_unlock(&coop_lock);
  return state > 0;
}

void vkrt_ops_coopmat_test_mode(VkrtCoopmatTest mode)
{
  g_mutex_lock(&coop_lock);
  g_atomic_int_set(&coop_test, (gint)mode);
  coop_test_state = 0;
  g_clear_pointer(&coop_test_note, g_free);
  g_mutex_unlock(&coop_lock);
}

/* The kernel for an M-row chunk; the self-check runs only where coopmat could be chosen. */
static Path choose_path(VkrtContext *ctx, bool tex, uint32_t mc)
{
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  if (!tex) return PATH_GENERIC;
  if (mc <= GEMV_MAX_M && di->has_subgroup_arith) return PATH_GEMV;
  VkrtGemmKernel k = op_matmul_kernel();
  bool gpu = di->type != VKRT_DEVICE_CPU;
  bool coop_possible = g_atomic_int_get(&coop_test) != VKRT_COOPMAT_TEST_OFF || di->coopmat_m != 0;
  if (coop_possible && (k == VKRT_GEMM_COOPMAT || (k == VKRT_GEMM_AUTO && gpu && mc >= COOP_MIN_M)) &&
      vkrt_ops_coopmat_usable(ctx, NULL))
    return PATH_COOP;
  if (k == VKRT_GEMM_SHARED_F16EMU) return PATH_SHARED_F16;
  if (k == VKRT_GEMM_SHARED) return PATH_SHARED;
  if (k == VKRT_GEMM_REGISTER) return PATH_REGISTER;
  return gpu ? PATH_SHARED : PATH_REGISTER;
}

const char *vkrt_ops_gemm_path(VkrtContext *ctx, uint32_t M, uint32_t K)
{
  static const char *const names[] = { [PATH_GEMV] = "gemv", [PATH_REGISTER] = "register",
    [PATH_SHARED] = "shared", [PATH_SHARED_F16] = "shared-f16", [PATH_COOP] = "coopmat", [PATH_GENERIC] = "generic" };
  return names[choose_path(ctx, K % 8 == 0, M)];
}
