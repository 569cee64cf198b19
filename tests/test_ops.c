/* Every LLM op of vk/ops.h against its plain-C reference (tests/ref_ops.c) on random inputs, at
 * sizes that are not multiples of any tile, at unaligned offsets, and (when run with
 * JANUSFLOW_MAX_BINDING set small, see tests/meson.build) through binding windows. Ends with
 * no validation message. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ref_ops.h"
#include "attn_case.h"
#include "test_util.h"

static VkrtContext *ctx;
static GRand *rng;

/* --- helpers --------------------------------------------------------------------------------- */

static VkrtTensor tensor_at(VkrtBuffer *b, uint64_t off, uint64_t bytes)
{
  return vkrt_tensor_sub(vkrt_tensor(b), off, bytes);
}

static void assert_close(const char *what, const float *got, const float *want, size_t n, double max_nmse)
{
  double nmse = ref_nmse(got, want, n);
  if (!(nmse <= max_nmse)) {
    for (size_t i = 0; i < n; i++)
      if (!(fabs((double)got[i] - want[i]) <= 1e-3 * (1 + fabs(want[i])))) {
        g_printerr("%s: first bad element %zu: got %g want %g\n", what, i, got[i], want[i]);
        break;
      }
    g_printerr("%s: nmse %g > %g (max abs %g)\n", what, nmse, max_nmse, ref_max_abs(got, want, n));
  }
  g_assert_cmpfloat(nmse, <=, max_nmse);
}

/* Whether one binding can hold `bytes` (runs with JANUSFLOW_MAX_BINDING set make some cases
 * too big; those must then fail cleanly with VKRT_ERROR_UNSUPPORTED). */
static bool fits(uint64_t bytes)
{
  return bytes + 64 <= vkrt_max_binding(ctx, false);
}

static void seq_run_unsupported(VkrtSeq *s)
{
  GError *e = NULL;
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED);
  g_error_free(e);
}

static void assert_clean(void)
{
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* --- matmul ---------------------------------------------------------------------------------- */

static void check_matmul(uint32_t M, uint32_t N, uint32_t K, uint32_t flags, bool bias, uint64_t xoff, uint64_t woff)
{
  float *x = test_rand_f32(rng, (size_t)M * K, -1.0f, 1.0f);
  uint16_t *w = test_rand_bf16(rng, (size_t)N * K, -1.0f, 1.0f);
  uint16_t *bv = bias ? test_rand_bf16(rng, N, -1.0f, 1.0f) : NULL;
  float *y0 = test_rand_f32(rng, (size_t)M * N, -1.0f, 1.0f); /* prior contents, for ACCUMULATE */
  float *want = g_memdup2(y0, sizeof(float) * M * N);
  float *got = g_new(float, (size_t)M * N + 1);
  ref_matmul(want, x, w, bv, M, N, K, flags);

  VkrtBuffer *bx = test_upload_at(ctx, x, sizeof(float) * M * K, xoff);
  VkrtBuffer *bw = test_upload_at(ctx, w, 2ull * N * K, woff);
  VkrtBuffer *bb = bias ? test_upload_at(ctx, bv, 2ull * N, 2) : NULL;
  VkrtBuffer *by = test_upload_at(ctx, y0, sizeof(float) * M * N, 0);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_context_reset_flops(ctx);
  vkrt_op_matmul(s, vkrt_tensor(by), tensor_at(bx, xoff, sizeof(float) * M * K), tensor_at(bw, woff, 2ull * N * K),
                 bias ? tensor_at(bb, 2, 2ull * N) : vkrt_tensor_none(), M, N, K, flags);
  test_seq_run(s);
  g_assert_cmpuint(vkrt_context_flops(ctx), ==, 2ull * M * N * K);
  test_download(by, 0, got, sizeof(float) * M * N);
  char *what = g_strdup_printf("matmul M=%u N=%u K=%u flags=%u bias=%d xoff=%" G_GUINT64_FORMAT " woff=%" G_GUINT64_FORMAT,
                               M, N, K, flags, bias, xoff, woff);
  assert_close(what, got, want, (size_t)M * N, 1e-10);
  g_free(what);
  vkrt_seq_free(s);
  vkrt_buffer_free(bx);
  vkrt_buffer_free(bw);
  if (bb) vkrt_buffer_free(bb);
  vkrt_buffer_free(by);
  g_free(x); g_free(w); g_free(bv); g_free(y0); g_free(want); g_free(got);
}

static void test_matmul_shapes(void)
{
  static const uint32_t Ms[] = { 1, 3, 17, 77 }, Ns[] = { 1, 5, 67, 130 }, Ks[] = { 7, 64, 129, 300, 136 };
  for (size_t a = 0; a < G_N_ELEMENTS(Ms); a++)
    for (size_t b = 0; b < G_N_ELEMENTS(Ns); b++)
      for (size_t c = 0; c < G_N_ELEMENTS(Ks); c++)
        check_matmul(Ms[a], Ns[b], Ks[c], 0, false, 0, 0);
  assert_clean();
}

static void test_matmul_epilogues(void)
{
  /* texel GEMM, texel GEMV and the generic kernel each with bias, residual and activations */
  static const uint32_t shapes[][3] = { { 33, 40, 64 }, { 2, 70, 136 }, { 9, 11, 30 } };
  static const uint32_t flags[] = { 0, VKRT_MM_ACCUMULATE, VKRT_MM_GELU, VKRT_MM_SILU };
  for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++)
    for (size_t f = 0; f < G_N_ELEMENTS(flags); f++)
      for (int b = 0; b < 2; b++)
        check_matmul(shapes[i][0], shapes[i][1], shapes[i][2], flags[f], b, 0, 0);
  assert_clean();
}

static void test_matmul_offsets(void)
{
  /* 16-byte aligned offsets keep the texel kernels; others fall back to the generic kernel */
  check_matmul(20, 24, 64, 0, false, 48, 32);
  check_matmul(3, 24, 64, VKRT_MM_ACCUMULATE, true, 16, 4096);
  check_matmul(20, 24, 64, 0, false, 4, 0);
  check_matmul(2, 24, 64, 0, true, 0, 2);
  check_matmul(20, 17, 33, VKRT_MM_GELU, true, 12, 6);
  assert_clean();
}

/* the shared-memory GEMM for GPUs, forced on whatever device this is */
static void test_matmul_shared(void)
{
  vkrt_ops_force_gemm(VKRT_GEMM_SHARED);
  check_matmul(77, 130, 136, 0, false, 0, 0);
  check_matmul(5, 67, 64, VKRT_MM_ACCUMULATE, true, 16, 0);
  check_matmul(130, 70, 264, VKRT_MM_GELU, true, 0, 0);
  vkrt_ops_force_gemm(VKRT_GEMM_REGISTER);
  check_matmul(77, 130, 136, 0, false, 0, 0);
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  assert_clean();
}

/* the decode GEMV with the workgroup sizes GPUs get (4 and 8 rows: 64- and 32-lane subgroups)
 * and an odd one, row counts that leave a partial last workgroup */
static void test_matmul_gemv_rows(void)
{
  static const uint32_t rows[] = { 4, 8, 12 }, Ns[] = { 1, 5, 67, 130 };
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  uint32_t auto_rows = vkrt_ops_gemv_rows(di);
  g_assert_cmpuint(auto_rows % 4, ==, 0);
  if (di->type == VKRT_DEVICE_CPU) g_assert_cmpuint(auto_rows, ==, 32);
  for (size_t r = 0; r < G_N_ELEMENTS(rows); r++) {
    vkrt_ops_force_gemv_rows(rows[r]);
    g_assert_cmpuint(vkrt_ops_gemv_rows(di), ==, rows[r]);
    for (size_t n = 0; n < G_N_ELEMENTS(Ns); n++) {
      check_matmul(1, Ns[n], 136, 0, false, 0, 0);
      check_matmul(3, Ns[n], 64, VKRT_MM_ACCUMULATE, true, 16, 0);
    }
  }
  vkrt_ops_force_gemv_rows(0);
  g_assert_cmpuint(vkrt_ops_gemv_rows(di), ==, auto_rows);
  assert_clean();
}

static void test_matmul_big(void)
{
  /* bigger than one GEMM tile in each direction */
  check_matmul(150, 300, 256, 0, true, 0, 0);
  check_matmul(4, 1030, 512, 0, false, 0, 0);
  assert_clean();
}

/* --- embed ----------------------------------------------------------------------------------- */

static void check_embed(uint32_t n, uint32_t dim, uint32_t vocab, uint64_t toff)
{
  uint16_t *table = test_rand_bf16(rng, (size_t)vocab * dim, -2.0f, 2.0f);
  int32_t *ids = g_new(int32_t, n);
  for (uint32_t i = 0; i < n; i++) ids[i] = g_rand_int_range(rng, 0, (int32_t)vocab);
  if (n > 2) { ids[0] = (int32_t)vocab - 1; ids[1] = -3; ids[2] = (int32_t)vocab; }  /* last row, out of range */
  float *want = g_new(float, (size_t)n * dim), *got = g_new(float, (size_t)n * dim);
  ref_embed(want, table, ids, n, dim, vocab);
  VkrtBuffer *bt = test_upload_at(ctx, table, 2ull * vocab * dim, toff), *bi = test_upload_at(ctx, ids, 4ull * n, 0);
  VkrtBuffer *by = test_upload_at(ctx, NULL, 4ull * n * dim, 0);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_embed(s, vkrt_tensor(by), tensor_at(bt, toff, 2ull * vocab * dim), tensor_at(bi, 0, 4ull * n), n, dim, vocab);
  test_seq_run(s);
  test_download(by, 0, got, 4ull * n * dim);
  g_assert_cmpmem(got, 4ull * n * dim, want, 4ull * n * dim);
  vkrt_seq_free(s);
  vkrt_buffer_free(bt); vkrt_buffer_free(bi); vkrt_buffer_free(by);
  g_free(table); g_free(ids); g_free(want); g_free(got);
}

static void test_embed(void)
{
  check_embed(1, 64, 10, 0);
  check_embed(9, 67, 1000, 2);     /* odd dim: rows start mid-word (storage-buffer kernel) */
  check_embed(40, 256, 3000, 16);  /* texel kernel */
  check_embed(7, 256, 300, 2);     /* unaligned table: storage-buffer kernel */
  assert_clean();
}

/* --- rmsnorm --------------------------------------------------------------------------------- */

static void check_rmsnorm(uint32_t rows, uint32_t dim, bool in_place)
{
  float *x = test_rand_f32(rng, (size_t)rows * dim, -3.0f, 3.0f);
  uint16_t *w = test_rand_bf16(rng, dim, -2.0f, 2.0f);
  float *want = g_new(float, (size_t)rows * dim), *got = g_new(float, (size_t)rows * dim);
  ref_rmsnorm(want, x, w, rows, dim, 1e-6f);
  VkrtBuffer *bx = test_upload_at(ctx, x, 4ull * rows * dim, 16), *bw = test_upload_at(ctx, w, 2ull * dim, 6);
  VkrtBuffer *by = in_place ? bx : test_upload_at(ctx, NULL, 4ull * rows * dim, 0);
  uint64_t yoff = in_place ? 16 : 0;
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_rmsnorm(s, tensor_at(by, yoff, 4ull * rows * dim), tensor_at(bx, 16, 4ull * rows * dim),
                  tensor_at(bw, 6, 2ull * dim), rows, dim, 1e-6f);
  test_seq_run(s);
  test_download(by, yoff, got, 4ull * rows * dim);
  assert_close("rmsnorm", got, want, (size_t)rows * dim, 1e-11);
  vkrt_seq_free(s);
  vkrt_buffer_free(bx); vkrt_buffer_free(bw);
  if (!in_place) vkrt_buffer_free(by);
  g_free(x); g_free(w); g_free(want); g_free(got);
}

static void test_rmsnorm(void)
{
  check_rmsnorm(1, 2048, false);
  check_rmsnorm(77, 67, false);
  check_rmsnorm(130, 256, true);
  assert_clean();
}

/* --- rope ------------------------------------------------------------------------------------ */

static void check_rope(uint32_t rows, uint32_t stride, uint32_t heads, uint32_t hd, uint32_t max_pos)
{
  size_t n = (size_t)rows * stride;
  float *x = test_rand_f32(rng, n, -2.0f, 2.0f);
  int32_t *pos = g_new(int32_t, rows);
  for (uint32_t r = 0; r < rows; r++) pos[r] = g_rand_int_range(rng, 0, (int32_t)max_pos);
  float *want = g_memdup2(x, n * 4), *got = g_new(float, n);
  ref_rope(want, pos, rows, stride, heads, hd, 10000.0f);
  VkrtBuffer *bx = test_upload_at(ctx, x, n * 4, 32), *bp = test_upload_at(ctx, pos, 4ull * rows, 4);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_rope(s, tensor_at(bx, 32, n * 4), tensor_at(bp, 4, 4ull * rows), rows, stride, heads, hd, 10000.0f);
  test_seq_run(s);
  test_download(bx, 32, got, n * 4);
  /* fp32 angles of positions in the thousands are only good to ~1e-4 rad in any implementation */
  assert_close("rope", got, want, n, 1e-8);
  /* values past the heads are untouched */
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t c = heads * hd; c < stride; c++) g_assert_cmpfloat(got[(size_t)r * stride + c], ==, x[(size_t)r * stride + c]);
  vkrt_seq_free(s);
  vkrt_buffer_free(bx); vkrt_buffer_free(bp);
  g_free(x); g_free(pos); g_free(want); g_free(got);
}

static void test_rope(void)
{
  check_rope(5, 256, 2, 128, 4096);
  check_rope(17, 3 * 64, 2, 64, 600);  /* q of a fused row: heads at the start, rest untouched */
  check_rope(3, 20, 3, 6, 50);
  assert_clean();
}

/* --- attention ------------------------------------------------------------------------------- */

/* HK K/V heads (grouped-query attention when < H); operands at offsets that are no texel's */
static void check_attention_gqa(uint32_t B, uint32_t nq, uint32_t H, uint32_t HK, uint32_t D, uint32_t q_start,
                                uint32_t n_kv, uint32_t cap, bool causal, bool use_mask)
{
  static const uint64_t offs[4] = { 4, 0, 32, 8 };
  AttnCase c = { B, nq, H, HK, D, q_start, n_kv, cap, causal, use_mask, 0, 0, 0, 0 };
  attn_case_check(ctx, rng, &c, offs, "op");
}

/* The GEMM form (attn_gemm.comp) with `scratch` bytes; `dispatches`: 3 per chunk of query rows
 * (1: the op fell back to the online kernel). q, k, v and the mask at texel-aligned offsets. */
static void check_attention_gemm(uint32_t B, uint32_t nq, uint32_t H, uint32_t HK, uint32_t D, uint32_t q_start,
                                 uint32_t n_kv, uint32_t cap, bool causal, bool use_mask, uint64_t scratch,
                                 uint32_t dispatches)
{
  static const uint64_t offs[4] = { 16, 0, 48, 32 };
  AttnCase c = { B, nq, H, HK, D, q_start, n_kv, cap, causal, use_mask, scratch, dispatches, 0, 0 };
  attn_case_check(ctx, rng, &c, offs, "gemm");
}

/* Scratch for `rows` query rows of B x H heads over n_kv keys. */
static uint64_t gemm_scratch(uint32_t B, uint32_t H, uint32_t n_kv, uint32_t rows)
{
  return rows * vkrt_ops_attention_scratch_row_bytes((uint64_t)B * H, n_kv);
}

static void test_attention_gemm(void)
{
  const uint64_t big = VKRT_ATTN_SCRATCH_BYTES;
  bool cpu = vkrt_context_info(ctx)->type == VKRT_DEVICE_CPU;
  /* CPU devices take it by themselves from 16 queries */
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 16, 16, 64), ==, cpu ? "gemm" : "flash");
  bool sg = vkrt_context_info(ctx)->has_subgroup_arith;
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 15, 16, 64), ==, cpu || !sg ? "online" : "splitk");
  g_assert_cmpuint(vkrt_ops_attention_scratch_bytes(ctx), ==, cpu ? big : sg ? VKRT_ATTN_SPLITK_SCRATCH_BYTES : 0);
  vkrt_ops_force_attention_gemm(1);
  g_assert_cmpuint(vkrt_ops_attention_scratch_bytes(ctx), ==, big);
  check_attention_gemm(1, 40, 2, 2, 64, 0, 40, 45, true, false, big, 3);      /* prefill */
  check_attention_gemm(2, 37, 3, 1, 36, 5, 42, 50, true, true, big, 3);       /* GQA, mask, D4 = 9 */
  check_attention_gemm(1, 33, 4, 4, 8, 0, 33, 33, false, false, big, 3);      /* bidirectional */
  check_attention_gemm(1, 17, 1, 1, 256, 0, 17, 17, true, false, big, 3);     /* widest texel head */
  check_attention_gemm(2, 20, 1, 1, 32, 280, 300, 310, true, true, big, 3);   /* keys over several tiles */
  check_attention_gemm(1, 70, 1, 1, 16, 0, 700, 700, false, false, big, 3);   /* ... and workgroups */
  check_attention_gemm(2, 20, 2, 1, 16, 10, 25, 30, true, false, big, 3);     /* fewer keys than q_start + n_q */
  check_attention_gemm(3, 3, 2, 2, 16, 40, 43, 43, true, true, big, 3);       /* few queries (forced) */
  check_attention_gemm(2, 1, 4, 2, 32, 40, 41, 41, true, false, big, 3);      /* decode (forced) */
  check_attention_gemm(2, 50, 2, 2, 16, 0, 50, 50, true, true, gemm_scratch(2, 2, 50, 16) + 100, 12); /* 16-row chunks */
  check_attention_gemm(1, 20, 3, 3, 12, 4, 24, 26, true, false, gemm_scratch(1, 3, 24, 7), 9);       /* 7-row chunks */
  check_attention_gemm(1, 20, 2, 2, 16, 0, 20, 20, true, false, gemm_scratch(1, 2, 20, 1) - 4, 1);  /* too small: online */
  /* not texel-aligned q: the online kernel */
  static const uint64_t odd[4] = { 4, 0, 48, 32 };
  AttnCase c = { 1, 20, 2, 2, 16, 0, 20, 20, true, false, big, 1, 0, 0 };
  attn_case_check(ctx, rng, &c, odd, "gemm, odd q");
  /* never: the online kernel with scratch */
  vkrt_ops_force_attention_gemm(0);
  check_attention_gemm(1, 40, 2, 2, 64, 0, 40, 45, true, false, big, 1);
  vkrt_ops_force_attention_gemm(-1);
  assert_clean();
}

static void check_attention(uint32_t B, uint32_t nq, uint32_t H, uint32_t D, uint32_t q_start, uint32_t n_kv,
                            uint32_t cap, bool causal, bool use_mask)
{
  check_attention_gqa(B, nq, H, H, D, q_start, n_kv, cap, causal, use_mask);
}

static void test_attention(void)
{
  check_attention(1, 17, 2, 64, 0, 17, 20, true, false);     /* prefill */
  check_attention(1, 1, 3, 128, 40, 41, 41, true, false);    /* decode step */
  check_attention(2, 5, 2, 32, 7, 12, 16, true, true);       /* CFG pair, masked, continuing */
  check_attention(2, 9, 1, 16, 0, 9, 9, false, true);        /* bidirectional with mask */
  check_attention(3, 4, 4, 8, 0, 30, 33, false, false);
  check_attention(3, 6, 4, 32, 90, 96, 100, true, true);     /* one dispatch per sequence at 64 KiB */
  check_attention_gqa(2, 7, 6, 2, 16, 3, 10, 12, true, true); /* grouped-query: 3 query heads per K/V head */
  check_attention_gqa(1, 1, 4, 1, 32, 20, 21, 21, true, false);
  /* head sizes that are no whole vec4 (the storage-buffer kernel), also grouped and per sequence */
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 600, 16, 10), ==, "scalar");
  check_attention(1, 17, 2, 10, 0, 17, 20, true, false);
  check_attention(2, 9, 3, 6, 0, 9, 9, false, true);
  check_attention(1, 1, 3, 2, 40, 41, 41, true, false);
  check_attention(3, 5, 2, 14, 90, 96, 100, true, true);
  check_attention_gqa(2, 4, 6, 3, 10, 0, 11, 13, true, true);
  check_attention(1, 3, 1, 255, 0, 7, 7, false, false);
  check_attention(1, 5, 2, 300, 0, 9, 9, true, false);       /* above the texel kernels' 256 */
  check_attention(1, 2, 1, 1024, 0, 4, 4, false, false);
  /* the subgroup-split decode kernel (used on GPUs), forced */
  vkrt_ops_force_attention_split(1);
  check_attention(1, 1, 3, 128, 40, 41, 41, true, false);
  check_attention(2, 2, 2, 32, 70, 72, 80, true, true);
  check_attention(2, 1, 2, 16, 0, 5, 9, false, true);
  check_attention_gqa(2, 1, 4, 2, 16, 30, 31, 35, true, true);
  vkrt_ops_force_attention_split(-1);
  assert_clean();
}

/* The split-K decode form, forced, with `chunk` keys per chunk (0: the default 256) and
 * `scratch` bytes; `dispatches`: 2 (partials and combine), or 1 where it must fall back. Keys
 * [hide0, hide1) are hidden in every sequence (with use_mask). */
static void check_attention_splitk(uint32_t chunk, uint32_t B, uint32_t nq, uint32_t H, uint32_t HK, uint32_t D,
                                   uint32_t q_start, uint32_t n_kv, uint32_t cap, bool causal, bool use_mask,
                                   uint32_t hide0, uint32_t hide1, uint64_t scratch, uint32_t dispatches)
{
  static const uint64_t offs[4] = { 4, 0, 32, 8 };
  AttnCase c = { B, nq, H, HK, D, q_start, n_kv, cap, causal, use_mask, scratch, dispatches, hide0, hide1 };
  vkrt_ops_force_splitk_chunk(chunk);
  attn_case_check(ctx, rng, &c, offs, "splitk");
  vkrt_ops_force_splitk_chunk(0);
}

/* Scratch for n_chunks partials of each of `items` queries (head_dim + 2 floats each). */
static uint64_t splitk_scratch(uint64_t items, uint32_t D, uint32_t n_chunks)
{
  return items * n_chunks * (D + 2ull) * 4u;
}

static void test_attention_splitk(void)
{
  const uint64_t big = VKRT_ATTN_SCRATCH_BYTES;
  bool sg = vkrt_context_info(ctx)->has_subgroup_arith;
  if (!sg) {
    g_test_skip("no subgroup arithmetic on this device");
    return;
  }
  vkrt_ops_force_attention_splitk(1);
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 1, 16, 128), ==, "splitk");
  g_assert_cmpuint(vkrt_ops_attention_scratch_bytes(ctx), >, 0);
  check_attention_splitk(16, 1, 1, 3, 3, 128, 40, 41, 41, true, false, 0, 0, big, 2);    /* 3 chunks, a short last */
  check_attention_splitk(16, 1, 1, 2, 2, 32, 9, 10, 12, true, false, 0, 0, big, 2);      /* a single chunk */
  /* (K/V of a sequence within 64 KiB: the windowed run binds one sequence at a time) */
  check_attention_splitk(16, 2, 1, 2, 1, 16, 0, 300, 310, false, true, 0, 0, big, 2);    /* 19 chunks */
  check_attention_splitk(0, 1, 2, 2, 1, 16, 598, 600, 600, true, false, 0, 0, big, 2);   /* 256-key chunks */
  /* causal, q_start > 0, 1..4 queries: the early queries see none of the last chunk */
  check_attention_splitk(16, 2, 4, 2, 2, 32, 62, 66, 70, true, true, 0, 0, big, 2);
  check_attention_splitk(16, 1, 3, 2, 2, 16, 30, 33, 40, true, false, 0, 0, big, 2);
  check_attention_splitk(8, 3, 2, 2, 2, 16, 70, 72, 80, true, true, 0, 0, big, 2);
  /* masks: a whole chunk hidden (sequence 0 hides every key: zeros), one-key chunks */
  check_attention_splitk(16, 3, 1, 2, 2, 32, 0, 70, 70, false, true, 16, 32, big, 2);
  check_attention_splitk(16, 2, 2, 2, 2, 32, 60, 62, 64, true, true, 0, 64, big, 2);    /* every key hidden */
  check_attention_splitk(1, 2, 1, 2, 2, 16, 0, 40, 40, false, true, 0, 0, big, 2);
  check_attention_splitk(2, 2, 3, 1, 1, 8, 30, 33, 33, true, true, 3, 9, big, 2);
  /* grouped-query attention, head sizes 8 .. 256 */
  check_attention_splitk(16, 2, 1, 4, 2, 16, 30, 31, 35, true, true, 0, 0, big, 2);
  check_attention_splitk(16, 1, 3, 6, 2, 64, 0, 100, 100, false, false, 0, 0, big, 2);
  check_attention_splitk(16, 2, 1, 2, 2, 8, 50, 51, 60, true, true, 0, 0, big, 2);
  check_attention_splitk(16, 1, 1, 1, 1, 256, 44, 45, 45, true, false, 0, 0, big, 2);
  /* a scratch too small for 10 chunks: 3 larger ones; for one: the split kernel */
  check_attention_splitk(16, 2, 1, 2, 2, 32, 0, 150, 150, false, true, 0, 0, splitk_scratch(4, 32, 3), 2);
  check_attention_splitk(16, 2, 1, 2, 2, 32, 0, 150, 150, false, true, 0, 0, splitk_scratch(4, 32, 1) - 4, 1);
  /* no scratch: not this form */
  check_attention_splitk(16, 1, 1, 2, 2, 32, 0, 150, 150, false, false, 0, 0, 0, 1);
  vkrt_ops_force_attention_splitk(0);
  check_attention_splitk(16, 1, 1, 2, 2, 32, 0, 150, 150, false, false, 0, 0, big, 1);
  vkrt_ops_force_attention_splitk(-1);
  assert_clean();
}

/* --- element-wise ------------------------------------------------------------------------------ */

static void check_eltwise(uint32_t n, uint64_t aoff)
{
  float *a = test_rand_f32(rng, n, -8.0f, 8.0f), *b = test_rand_f32(rng, n, -2.0f, 2.0f);
  float *want = g_new(float, n), *got = g_new(float, n);
  VkrtBuffer *ba = test_upload_at(ctx, a, 4ull * n, aoff), *bb = test_upload_at(ctx, b, 4ull * n, 0);
  VkrtBuffer *by = test_upload_at(ctx, NULL, 4ull * n, 0);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_silu_mul(s, vkrt_tensor(by), tensor_at(ba, aoff, 4ull * n), tensor_at(bb, 0, 4ull * n), n);
  test_seq_run(s);
  test_download(by, 0, got, 4ull * n);
  ref_silu_mul(want, a, b, n);
  assert_close("silu_mul", got, want, n, 1e-12);
  /* add in place: a += b */
  vkrt_seq_begin(s);
  vkrt_op_add(s, tensor_at(ba, aoff, 4ull * n), tensor_at(ba, aoff, 4ull * n), tensor_at(bb, 0, 4ull * n), n);
  test_seq_run(s);
  test_download(ba, aoff, got, 4ull * n);
  ref_add(want, a, b, n);
  g_assert_cmpmem(got, 4ull * n, want, 4ull * n);
  vkrt_seq_free(s);
  vkrt_buffer_free(ba); vkrt_buffer_free(bb); vkrt_buffer_free(by);
  g_free(a); g_free(b); g_free(want); g_free(got);
}

static void test_eltwise(void)
{
  /* aligned lengths divisible by 4 take the vec4 kernels, the others the scalar ones */
  static const uint32_t ns[] = { 1, 7, 1000, 70001, 70004 };
  for (size_t t = 0; t < G_N_ELEMENTS(ns); t++) {
    check_eltwise(ns[t], 0);
    check_eltwise(ns[t], 4);
  }
  assert_clean();
}

/* --- argmax / top-k ---------------------------------------------------------------------------- */

static void test_argmax(void)
{
  static const uint32_t shapes[][2] = { { 1, 1 }, { 3, 1000 }, { 2, 102400 }, { 5, 257 } };
  for (size_t t = 0; t < G_N_ELEMENTS(shapes); t++) {
    uint32_t rows = shapes[t][0], n = shapes[t][1];
    float *x = test_rand_f32(rng, (size_t)rows * n, -10.0f, 10.0f);
    if (n > 300) { x[5] = 100.0f; x[200] = 100.0f; }  /* a tie: the lower index wins */
    uint32_t *want = g_new(uint32_t, rows), *got = g_new(uint32_t, rows);
    ref_argmax(want, x, rows, n);
    VkrtBuffer *bx = test_upload_at(ctx, x, 4ull * rows * n, 0), *bo = test_upload_at(ctx, NULL, 4ull * rows, 4);
    VkrtSeq *s = test_seq_begin(ctx);
    vkrt_op_argmax(s, tensor_at(bo, 4, 4ull * rows), vkrt_tensor(bx), rows, n);
    if (fits(4ull * n)) {
      test_seq_run(s);
      test_download(bo, 4, got, 4ull * rows);
      g_assert_cmpmem(got, 4ull * rows, want, 4ull * rows);
    } else {
      seq_run_unsupported(s);  /* a row must fit one binding */
    }
    vkrt_seq_free(s);
    vkrt_buffer_free(bx); vkrt_buffer_free(bo);
    g_free(x); g_free(want); g_free(got);
  }
  assert_clean();
}

static void check_topk(uint32_t n, uint32_t k, int ties)
{
  float *x = test_rand_f32(rng, n, -10.0f, 10.0f);
  if (ties == 1)  /* many equal values around the threshold */
    for (uint32_t i = 0; i < n; i++) x[i] = (float)g_rand_int_range(rng, 0, 40);
  if (ties == 2)  /* masked logits: most are -inf */
    for (uint32_t i = 0; i < n; i++) if (i % 97) x[i] = -INFINITY;
  float *want_v = g_new(float, k), *got_v = g_new(float, k);
  uint32_t *want_i = g_new(uint32_t, k), *got_i = g_new(uint32_t, k);
  ref_topk(want_v, want_i, x, n, k);
  VkrtBuffer *bx = test_upload_at(ctx, x, 4ull * n, 16);
  VkrtBuffer *bv = test_upload_at(ctx, NULL, 4ull * k, 0), *bi = test_upload_at(ctx, NULL, 4ull * k, 0);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_topk(s, vkrt_tensor(bv), vkrt_tensor(bi), tensor_at(bx, 16, 4ull * n), n, k);
  if (fits(4ull * n)) {
    test_seq_run(s);
    test_download(bv, 0, got_v, 4ull * k);
    test_download(bi, 0, got_i, 4ull * k);
    g_assert_cmpmem(got_i, 4ull * k, want_i, 4ull * k);
    g_assert_cmpmem(got_v, 4ull * k, want_v, 4ull * k);
  } else {
    seq_run_unsupported(s);
  }
  vkrt_seq_free(s);
  vkrt_buffer_free(bx); vkrt_buffer_free(bv); vkrt_buffer_free(bi);
  g_free(x); g_free(want_v); g_free(got_v); g_free(want_i); g_free(got_i);
}

static void test_topk(void)
{
  check_topk(1, 1, 0);
  check_topk(300, 256, 0);
  check_topk(102400, 256, 0);
  check_topk(102405, 50, 1);
  check_topk(102400, 256, 2);
  check_topk(1000, 1, 1);
  assert_clean();
}

/* --- bad input --------------------------------------------------------------------------------- */

static void test_bad_input(void)
{
  GError *e = NULL;
  VkrtBuffer *small = vkrt_buffer_new(ctx, 64, &e);
  test_check_no_error(e);
  VkrtSeq *s = test_seq_begin(ctx);
  /* too small a tensor: the error comes back at submit, nothing crashes */
  vkrt_op_matmul(s, vkrt_tensor(small), vkrt_tensor(small), vkrt_tensor(small), vkrt_tensor_none(), 8, 8, 8, 0);
  g_assert_true(vkrt_seq_has_error(s));
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_FAILED);
  g_clear_error(&e);
  vkrt_seq_begin(s);
  vkrt_op_topk(s, vkrt_tensor(small), vkrt_tensor(small), vkrt_tensor(small), 4, 5);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_clear_error(&e);
  /* the sequence is usable again */
  vkrt_seq_begin(s);
  vkrt_op_add(s, vkrt_tensor(small), vkrt_tensor(small), vkrt_tensor(small), 16);
  test_seq_run(s);
  vkrt_seq_free(s);
  vkrt_buffer_free(small);
  assert_clean();
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ctx = test_context_new(false);
  if (!ctx)
    return 1;
  rng = g_rand_new_with_seed(1234);
  g_test_message("device %s, max binding %" G_GUINT64_FORMAT " / texel %" G_GUINT64_FORMAT,
                 vkrt_context_info(ctx)->name, vkrt_max_binding(ctx, false), vkrt_max_binding(ctx, true));
  g_test_add_func("/ops/matmul/shapes", test_matmul_shapes);
  g_test_add_func("/ops/matmul/epilogues", test_matmul_epilogues);
  g_test_add_func("/ops/matmul/offsets", test_matmul_offsets);
  g_test_add_func("/ops/matmul/big", test_matmul_big);
  g_test_add_func("/ops/matmul/gemv-rows", test_matmul_gemv_rows);
  g_test_add_func("/ops/matmul/shared", test_matmul_shared);
  g_test_add_func("/ops/embed", test_embed);
  g_test_add_func("/ops/rmsnorm", test_rmsnorm);
  g_test_add_func("/ops/rope", test_rope);
  g_test_add_func("/ops/attention", test_attention);
  g_test_add_func("/ops/attention-gemm", test_attention_gemm);
  g_test_add_func("/ops/attention-splitk", test_attention_splitk);
  g_test_add_func("/ops/eltwise", test_eltwise);
  g_test_add_func("/ops/argmax", test_argmax);
  g_test_add_func("/ops/topk", test_topk);
  g_test_add_func("/ops/bad-input", test_bad_input);
  int rc = g_test_run();
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
  g_rand_free(rng);
  return rc;
}
