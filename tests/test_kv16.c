/* The fp16 K/V cache: the fp32 -> fp16 conversion against a C reference (the compiler's
 * _Float16), every attention form reading fp16 K/V against the C reference fed the same rounded
 * values, the format choice and its fallback, the cache's memory, and the tiny model's LLM with
 * an fp16 cache against the same LLM with an fp32 one, and its decode with split-K attention
 * against without. Ends with no validation message. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "attn_case.h"
#include "llm.h"
#include "model.h"
#include "ops.h"
#include "ref_ops.h"
#include "test_util.h"

static VkrtContext *ctx;
static GRand *rng;

/* --- conversion ------------------------------------------------------------------------------ */

static gboolean f16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/* f16 bit patterns `got` of x[0..n) against the reference: every one must match (NaN: both NaN);
 * the two halves after them must be the NaN fill (0x7fc00000) the op must not touch. */
static void expect_f16(const uint16_t *got, const float *x, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t want = ref_f16_from_f32(x[i]);
    if (f16_is_nan(want) ? !f16_is_nan(got[i]) : got[i] != want)
      g_error("f32_to_f16 of %a (element %zu of %zu): got 0x%04x, want 0x%04x", (double)x[i], i, n, got[i], want);
  }
  g_assert_cmphex(got[n], ==, 0x0000);
  g_assert_cmphex(got[n + 1], ==, 0x7fc0);
}

/* n values (n even) of x, and of y when not NULL (the pair form: both in one dispatch), at byte
 * offset `off` of their buffers, converted on the device and by the reference. */
static void check_convert(const float *x, const float *y, size_t n, uint64_t off)
{
  VkrtBuffer *bs = test_upload_at(ctx, x, n * 4, off), *bd = test_upload_at(ctx, NULL, n * 2, off);
  VkrtBuffer *bs2 = y ? test_upload_at(ctx, y, n * 4, off + 4) : NULL;
  VkrtBuffer *bd2 = y ? test_upload_at(ctx, NULL, n * 2, off + 8) : NULL;
  VkrtSeq *s = test_seq_begin(ctx);
  VkrtTensor d = vkrt_tensor_sub(vkrt_tensor(bd), off, n * 2), src = vkrt_tensor_sub(vkrt_tensor(bs), off, n * 4);
  if (y)
    vkrt_op_f32_to_f16_pair(s, d, src, vkrt_tensor_sub(vkrt_tensor(bd2), off + 8, n * 2),
                            vkrt_tensor_sub(vkrt_tensor(bs2), off + 4, n * 4), n);
  else
    vkrt_op_f32_to_f16(s, d, src, n);
  test_seq_run(s);
  vkrt_seq_free(s);
  uint16_t *got = g_new(uint16_t, n + 2);
  test_download(bd, off, got, n * 2 + 4);
  expect_f16(got, x, n);
  if (y) {
    test_download(bd2, off + 8, got, n * 2 + 4);
    expect_f16(got, y, n);
    vkrt_buffer_free(bs2);
    vkrt_buffer_free(bd2);
  }
  g_free(got);
  vkrt_buffer_free(bs);
  vkrt_buffer_free(bd);
}

static float bits_f32(uint32_t u)
{
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void test_convert(void)
{
  /* the edges: zeros, the largest half and the overflow threshold 65520 (ties to even: inf),
   * inf, NaN, the smallest normal 2^-14, subnormals, ties at 2^-25 and between subnormals, an
   * fp32 subnormal, ties between normals */
  const float special[] = {
    0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, -65504.0f, 65519.996f, 65520.0f, -65520.0f, 1e6f, -3e38f,
    INFINITY, -INFINITY, NAN, -NAN, ldexpf(1, -14), ldexpf(1, -14) * (1 - ldexpf(1, -12)), ldexpf(1, -24),
    ldexpf(1, -25), -ldexpf(1, -25), ldexpf(1, -25) * (1 + ldexpf(1, -20)), ldexpf(3, -26), ldexpf(5, -26),
    ldexpf(3, -25), ldexpf(1, -30), bits_f32(0x00000001u), bits_f32(0x807fffffu), 1 + ldexpf(1, -11),
    1 + ldexpf(3, -11), 1 + ldexpf(1, -11) + ldexpf(1, -23), 2047.5f, 2048.5f, 0.1f, -0.333333f, 3.14159265f,
    ldexpf(1023, -24) + ldexpf(1, -25), 65488.0f, 65503.99f, 32768.0f + 8.0f, 1.0f / 3,
  };
  size_t ns = G_N_ELEMENTS(special) & ~(size_t)1;
  check_convert(special, NULL, ns, 0);
  check_convert(special, NULL, ns, 4);  /* not on a texel boundary */
  /* random values over the ranges K and V take and far beyond, and every exponent */
  const size_t n = 20000;
  float *x = g_new(float, n);
  for (size_t i = 0; i < n; i++) {
    if (i < n / 2)
      x[i] = (float)g_rand_double_range(rng, -8.0, 8.0);
    else
      x[i] = bits_f32(g_rand_int(rng));  /* any bit pattern: NaN, inf, subnormal, huge */
  }
  check_convert(x, NULL, n, 8);
  check_convert(x + n / 2, x, n / 2, 12);  /* the pair form */
  g_free(x);

  /* odd counts are refused (a lone half would share a word with what follows) */
  GError *e = NULL;
  VkrtBuffer *b = test_upload_at(ctx, NULL, 64, 0);
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_f32_to_f16(s, vkrt_tensor(b), vkrt_tensor(b), 3);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_FAILED);
  g_clear_error(&e);
  vkrt_seq_free(s);
  vkrt_buffer_free(b);
}

/* --- attention ------------------------------------------------------------------------------- */

static void check_f16(uint32_t B, uint32_t nq, uint32_t H, uint32_t HK, uint32_t D, uint32_t q_start, uint32_t n_kv,
                      uint32_t cap, bool causal, bool mask, uint64_t scratch, uint32_t dispatches, const char *label)
{
  /* q and the mask off texel boundaries (the online kernels read them as storage buffers) where
   * no scratch is given; k and v on them (texels); with scratch all aligned (the GEMM form) */
  static const uint64_t odd[4] = { 4, 0, 32, 8 }, aligned[4] = { 16, 0, 48, 32 };
  AttnCase c = { B, nq, H, HK, D, q_start, n_kv, cap, causal, mask, scratch, dispatches, 0, 0 };
  attn_case_check_f16(ctx, rng, &c, scratch ? aligned : odd, label);
}

/* Shapes every form runs: prefill and decode, sizes that are no tile's multiple, GQA, causal with
 * a mask, bidirectional, several sequences, keys over several tiles. */
static void check_shapes(uint64_t scratch, uint32_t dispatches, const char *label)
{
  check_f16(1, 17, 2, 2, 64, 0, 17, 20, true, false, scratch, dispatches, label);     /* prefill */
  check_f16(1, 1, 3, 3, 128, 40, 41, 41, true, false, scratch, dispatches, label);    /* decode step */
  check_f16(2, 5, 2, 2, 32, 7, 12, 16, true, true, scratch, dispatches, label);       /* CFG pair, masked */
  check_f16(2, 19, 1, 1, 16, 0, 19, 19, false, true, scratch, dispatches, label);     /* bidirectional, mask */
  check_f16(2, 7, 6, 2, 16, 3, 10, 12, true, true, scratch, dispatches, label);       /* GQA 3:1, mask */
  check_f16(2, 1, 4, 1, 40, 20, 21, 23, true, false, scratch, dispatches, label);     /* GQA decode, D4 = 10 */
  check_f16(2, 21, 4, 2, 24, 280, 301, 310, true, true, scratch, dispatches, label);  /* keys over tiles, D4 = 6 */
  check_f16(1, 33, 2, 2, 8, 0, 33, 35, true, false, scratch, dispatches, label);      /* smallest head */
  check_f16(1, 18, 1, 1, 256, 0, 18, 18, true, false, scratch, dispatches, label);    /* widest texel head */
}

static void test_attention_f16(void)
{
  const uint64_t big = VKRT_ATTN_SCRATCH_BYTES;
  /* the device's own choice with and without scratch (lavapipe: online, and gemm from 16 queries) */
  check_shapes(0, 0, "auto");
  check_shapes(big, 0, "auto, scratch");
  /* each form forced */
  vkrt_ops_force_attention_split(0);
  vkrt_ops_force_attention_gemm(0);
  vkrt_ops_force_attention_flash(0);
  check_shapes(0, 1, "online");
  vkrt_ops_force_attention_split(1);
  if (vkrt_context_info(ctx)->has_subgroup_arith) {
    g_assert_cmpstr(vkrt_ops_attention_path(ctx, 1, 4, 64), ==, "split");
    check_f16(1, 1, 3, 3, 128, 40, 41, 41, true, false, 0, 1, "split");
    check_f16(2, 2, 2, 2, 32, 70, 72, 80, true, true, 0, 1, "split");
    check_f16(2, 1, 2, 2, 16, 0, 5, 9, false, true, 0, 1, "split");
    check_f16(2, 1, 4, 2, 16, 30, 31, 35, true, true, 0, 1, "split");
    check_f16(1, 3, 2, 1, 40, 100, 103, 110, true, false, 0, 1, "split");
  }
  vkrt_ops_force_attention_split(-1);
  /* split-K decode over 16-key chunks: several, one, a short last, causal limits inside them */
  if (vkrt_context_info(ctx)->has_subgroup_arith) {
    vkrt_ops_force_attention_splitk(1);
    vkrt_ops_force_splitk_chunk(16);
    check_f16(1, 1, 3, 3, 128, 40, 41, 41, true, false, big, 2, "splitk");
    check_f16(2, 2, 2, 2, 32, 70, 72, 80, true, true, big, 2, "splitk");
    check_f16(2, 1, 2, 2, 16, 0, 5, 9, false, true, big, 2, "splitk");
    check_f16(2, 4, 4, 2, 16, 30, 34, 35, true, true, big, 2, "splitk");
    check_f16(1, 3, 2, 1, 40, 100, 103, 110, true, false, big, 2, "splitk");
    check_f16(1, 1, 1, 1, 256, 60, 61, 64, true, false, big, 2, "splitk");
    check_f16(2, 1, 2, 2, 8, 0, 300, 300, false, true, big, 2, "splitk");
    vkrt_ops_force_splitk_chunk(0);
    vkrt_ops_force_attention_splitk(-1);
  }
  vkrt_ops_force_attention_flash(1);
  check_shapes(0, 1, "flash");
  vkrt_ops_force_flash_blocks(8, 8, 64);  /* a key tile smaller than the keys: several tiles */
  check_f16(2, 21, 4, 2, 24, 280, 301, 310, true, true, 0, 1, "flash 8x8");
  check_f16(1, 9, 2, 2, 40, 0, 9, 9, false, false, 0, 1, "flash 8x8");
  vkrt_ops_force_flash_blocks(0, 0, 0);
  vkrt_ops_force_attention_flash(0);
  vkrt_ops_force_attention_gemm(1);
  check_shapes(big, 3, "gemm");
  /* chunks of query rows */
  check_f16(2, 50, 2, 2, 16, 0, 50, 50, true, true,
            16 * vkrt_ops_attention_scratch_row_bytes(4, 50) + 100, 12, "gemm, 16-row chunks");
  vkrt_ops_force_attention_gemm(-1);
  vkrt_ops_force_attention_flash(-1);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* fp16 K/V with a head size the fp16 kernels do not take fails cleanly. */
static void test_attention_f16_refused(void)
{
  GError *e = NULL;
  VkrtBuffer *b = test_upload_at(ctx, NULL, 4096, 0);
  VkrtAttnParams p = { .n_batch = 1, .n_q = 1, .n_heads = 1, .head_dim = 12, .n_kv = 2, .kv_capacity = 2,
                       .scale = 1.0f, .kv_f16 = true };
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_attention(s, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor_none(), &p);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED);
  g_clear_error(&e);
  vkrt_seq_free(s);
  vkrt_buffer_free(b);
}

/* --- the format choice ----------------------------------------------------------------------- */

static void test_format_choice(void)
{
  llm_force_kv_format(-1);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_CPU, 128), ==, JF_KV_F32);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_DISCRETE, 128), ==, JF_KV_F16);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_INTEGRATED, 16), ==, JF_KV_F16);
  /* heads the fp16 kernels do not take: fp32, whatever is asked */
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_DISCRETE, 44), ==, JF_KV_F32);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_DISCRETE, 10), ==, JF_KV_F32);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_DISCRETE, 264), ==, JF_KV_F32);
  llm_force_kv_format(1);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_CPU, 128), ==, JF_KV_F16);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_CPU, 44), ==, JF_KV_F32);
  llm_force_kv_format(0);
  g_assert_cmpint(llm_kv_format_for(VKRT_DEVICE_DISCRETE, 128), ==, JF_KV_F32);
  llm_force_kv_format(-1);
  g_assert_cmpstr(llm_kv_format_name(JF_KV_F16), ==, "f16");
  g_assert_cmpstr(llm_kv_format_name(JF_KV_F32), ==, "f32");
  /* the full model (24 layers, kv_dim 2048) at the chat's 4096 tokens: 1.5 GiB and 768 MiB */
  g_assert_cmpuint(llm_kv_bytes_for(24, 2048, JF_KV_F32, 1, 4096), ==, 1536ull << 20);
  g_assert_cmpuint(llm_kv_bytes_for(24, 2048, JF_KV_F16, 1, 4096), ==, 768ull << 20);
}

/* --- the LLM with each cache ----------------------------------------------------------------- */

static JfModel *model;

static JfKvCache *kv_new(int mode, uint32_t n_batch, uint32_t cap)
{
  GError *e = NULL;
  llm_force_kv_format(mode);
  JfKvCache *kv = llm_kv_new(model->llm, n_batch, cap, &e);
  test_check_no_error(e);
  llm_force_kv_format(-1);
  return kv;
}

static void test_memory(void)
{
  const uint32_t cap = 1000;
  uint64_t a0 = vkrt_context_allocated(ctx);
  JfKvCache *k32 = kv_new(0, 2, cap);
  uint64_t a32 = vkrt_context_allocated(ctx) - a0;
  JfKvCache *k16 = kv_new(1, 2, cap);
  uint64_t a16 = vkrt_context_allocated(ctx) - a0 - a32;
  const JfLlmConfig *c = llm_config(model->llm);
  g_test_message("K/V of %u x 2 tokens: fp32 %" G_GUINT64_FORMAT " bytes allocated, fp16 %" G_GUINT64_FORMAT, cap, a32,
                 a16);
  g_assert_cmpint(llm_kv_format(k32), ==, JF_KV_F32);
  g_assert_cmpint(llm_kv_format(k16), ==, JF_KV_F16);
  g_assert_cmpuint(llm_kv_bytes(k32), ==, 2ull * c->n_layers * 2 * cap * c->n_kv_heads * c->head_dim * 4);
  g_assert_cmpuint(llm_kv_bytes(k16) * 2, ==, llm_kv_bytes(k32));
  /* what the device allocates (buffers may be rounded up a little) */
  g_assert_cmpuint(a32, >=, llm_kv_bytes(k32));
  g_assert_cmpuint(a16, >=, llm_kv_bytes(k16));
  g_assert_cmpuint(a16, <=, a32 / 2 + 4096ull * c->n_layers);
  llm_kv_free(k16);
  llm_kv_free(k32);
}

typedef struct {
  VkrtBuffer *ids, *pos, *x, *out;
} Run;

/* hidden states after the final norm for `n` tokens of ids at cache index `start` of each of
 * kv's sequences (the same tokens for every sequence), into host memory */
static void forward(Run *r, JfKvCache *kv, const int32_t *ids, uint32_t n, uint32_t start, float *host)
{
  JfLlm *llm = model->llm;
  uint32_t B = llm_kv_batch(kv), H = (uint32_t)llm_config(llm)->hidden;
  int32_t *all = g_new(int32_t, B * n), *pos = g_new(int32_t, B * n);
  for (uint32_t b = 0; b < B; b++)
    for (uint32_t i = 0; i < n; i++) {
      all[b * n + i] = ids[i];
      pos[b * n + i] = (int32_t)(start + i);
    }
  GError *e = NULL;
  vkrt_buffer_write(r->ids, 0, all, B * n * 4ull, &e);
  test_check_no_error(e);
  vkrt_buffer_write(r->pos, 0, pos, B * n * 4ull, &e);
  test_check_no_error(e);
  VkrtSeq *s = test_seq_begin(ctx);
  uint64_t xb = (uint64_t)B * n * H * 4;
  VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(r->x), 0, xb), out = vkrt_tensor_sub(vkrt_tensor(r->out), 0, xb);
  llm_record_embed(llm, s, vkrt_tensor(r->ids), B * n, x);
  g_assert_true(llm_record_forward(llm, s, kv, x, vkrt_tensor(r->pos), vkrt_tensor_none(), n, start, out, &e));
  test_check_no_error(e);
  test_seq_run(s);
  vkrt_seq_free(s);
  test_download(r->out, 0, host, xb);
  g_free(all);
  g_free(pos);
}

static double compare(const char *what, const float *got, const float *want, size_t n)
{
  double mx = 0, rel = test_rel_l2(got, want, n, &mx);
  g_test_message("%s: rel_l2 %.3e, max |diff| %.3e", what, rel, mx);
  return rel;
}

/* Buffers for up to 2 sequences of 64 tokens, and n random token ids */
static Run run_new(int32_t *ids, size_t n)
{
  const uint32_t H = (uint32_t)llm_config(model->llm)->hidden, vocab = (uint32_t)llm_config(model->llm)->vocab;
  for (size_t i = 0; i < n; i++) ids[i] = (int32_t)g_rand_int_range(rng, 0, (gint32)vocab);
  GError *e = NULL;
  Run r = { vkrt_buffer_new(ctx, 2 * 64 * 4, &e), vkrt_buffer_new(ctx, 2 * 64 * 4, &e),
            vkrt_buffer_new(ctx, 2ull * 64 * H * 4, &e), vkrt_buffer_new(ctx, 2ull * 64 * H * 4, &e) };
  test_check_no_error(e);
  return r;
}

static void run_free(Run *r)
{
  vkrt_buffer_free(r->ids); vkrt_buffer_free(r->pos); vkrt_buffer_free(r->x); vkrt_buffer_free(r->out);
}

static void test_llm(void)
{
  JfLlm *llm = model->llm;
  const uint32_t H = (uint32_t)llm_config(llm)->hidden;
  const uint32_t P = 40, cap = 64;  /* a 40-token prompt (the GEMM form on CPUs), then decode */
  int32_t ids[48];
  GError *e = NULL;
  Run r = run_new(ids, G_N_ELEMENTS(ids));
  JfKvCache *k32 = kv_new(0, 1, cap), *k16 = kv_new(1, 1, cap);
  float *a = g_new(float, 2 * 64 * H), *b = g_new(float, 2 * 64 * H);

  /* prefill, then decode steps: the fp16 cache within the parity bound of the fp32 one */
  forward(&r, k32, ids, P, 0, a);
  forward(&r, k16, ids, P, 0, b);
  g_assert_cmpfloat(compare("llm prefill (40 tokens)", b, a, (size_t)P * H), <, 2e-2);
  for (uint32_t t = P; t < P + 4; t++) {
    forward(&r, k32, ids + t, 1, t, a);
    forward(&r, k16, ids + t, 1, t, b);
    g_assert_cmpfloat(compare("llm decode", b, a, H), <, 2e-2);
  }
  float *dec16 = g_memdup2(b, H * 4ull);

  /* the prefix copy of fp16 rows into both sequences of a 2-sequence fp16 cache (the CFG pair),
   * then one step of both: each as the single sequence's step (same rows, same kernel shapes
   * but for the batch) */
  JfKvCache *pair = kv_new(1, 2, cap);
  VkrtSeq *s = test_seq_begin(ctx);
  llm_copy_prefix(llm, s, pair, 0, k16, 0, P + 3);
  llm_copy_prefix(llm, s, pair, 1, k16, 0, P + 3);
  test_seq_run(s);
  forward(&r, pair, ids + P + 3, 1, P + 3, b);
  g_assert_cmpfloat(compare("llm pair after prefix copy, seq 0", b, dec16, H), <, 1e-5);
  g_assert_cmpfloat(compare("llm pair after prefix copy, seq 1", b + H, dec16, H), <, 1e-5);

  /* copying between caches of different formats is refused */
  llm_copy_prefix(llm, s, k32, 0, k16, 0, 4);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_FAILED);
  g_clear_error(&e);
  vkrt_seq_free(s);

  llm_kv_free(pair);
  llm_kv_free(k16);
  llm_kv_free(k32);
  g_free(dec16);
  g_free(a);
  g_free(b);
  run_free(&r);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* The tiny LLM decoding with split-K attention over 4-key chunks (10+ of them) against the same
 * steps with it off, for both cache formats: the whole model through the partials and their
 * combine, not only the op. */
static void test_llm_splitk(void)
{
  if (!vkrt_context_info(ctx)->has_subgroup_arith) {
    g_test_skip("no subgroup arithmetic on this device");
    return;
  }
  const uint32_t H = (uint32_t)llm_config(model->llm)->hidden;
  const uint32_t P = 40, cap = 64;
  int32_t ids[48];
  Run r = run_new(ids, G_N_ELEMENTS(ids));
  float *a = g_new(float, 2 * 64 * H), *b = g_new(float, 2 * 64 * H);
  vkrt_ops_force_splitk_chunk(4);
  for (int fmt = 0; fmt < 2; fmt++) {
    JfKvCache *ka = kv_new(fmt, 1, cap), *kb = kv_new(fmt, 1, cap);
    forward(&r, ka, ids, P, 0, a);
    forward(&r, kb, ids, P, 0, b);
    for (uint32_t t = P; t < P + 6; t++) {
      vkrt_ops_force_attention_splitk(0);
      forward(&r, ka, ids + t, 1, t, a);
      vkrt_ops_force_attention_splitk(1);
      forward(&r, kb, ids + t, 1, t, b);
      g_assert_cmpfloat(compare(fmt ? "llm decode, split-K, fp16 cache" : "llm decode, split-K", b, a, H), <, 1e-5);
    }
    vkrt_ops_force_attention_splitk(-1);
    llm_kv_free(ka);
    llm_kv_free(kb);
  }
  vkrt_ops_force_splitk_chunk(0);
  g_free(a);
  g_free(b);
  run_free(&r);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ctx = test_context_new(false);
  if (!ctx)
    return 1;
  rng = g_rand_new_with_seed(4321);
  GError *err = NULL;
  char *dir = test_data_path("tiny/janusflow");
  model = model_load(ctx, dir, NULL, JF_LOAD_LLM, NULL, NULL, &err);
  test_check_no_error(err);
  g_free(dir);
  g_test_add_func("/kv16/convert", test_convert);
  g_test_add_func("/kv16/attention", test_attention_f16);
  g_test_add_func("/kv16/attention-refused", test_attention_f16_refused);
  g_test_add_func("/kv16/format", test_format_choice);
  g_test_add_func("/kv16/memory", test_memory);
  g_test_add_func("/kv16/llm", test_llm);
  g_test_add_func("/kv16/llm-splitk", test_llm_splitk);
  int rc = g_test_run();
  model_free(model);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
  g_rand_free(rng);
  return rc;
}
