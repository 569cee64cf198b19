#include "attn_case.h"
#include "ops.h"
#include "ref_ops.h"
#include "test_util.h"
#include <math.h>

static double run_case(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], bool kv_f16)
{
  static const uint64_t zero[4] = { 0 };
  if (!offs) offs = zero;
  uint32_t B = c->batch, nq = c->n_q, cap = c->kv_cap, D = c->head_dim;
  size_t HD = (size_t)c->heads * D, KD = (size_t)c->kv_heads * D;
  uint64_t qb = 4ull * B * nq * HD, kb = (kv_f16 ? 2ull : 4ull) * B * cap * KD, mb = 4ull * B * cap;
  float *q = test_rand_f32(rng, B * nq * HD, -1.0f, 1.0f), *k = test_rand_f32(rng, B * cap * KD, -1.0f, 1.0f);
  float *v = test_rand_f32(rng, B * cap * KD, -1.0f, 1.0f);
  /* fp16 K/V: what the op reads (kd, vd) are the halves; the reference takes their exact values */
  void *kd = k, *vd = v;
  if (kv_f16) {
    uint16_t *kh = g_new(uint16_t, (size_t)B * cap * KD), *vh = g_new(uint16_t, (size_t)B * cap * KD);
    for (size_t i = 0; i < (size_t)B * cap * KD; i++) {
      kh[i] = ref_f16_from_f32(k[i]);
      vh[i] = ref_f16_from_f32(v[i]);
      k[i] = ref_f16_to_f32(kh[i]);
      v[i] = ref_f16_to_f32(vh[i]);
    }
    kd = kh;
    vd = vh;
  }
  int32_t *mask = g_new(int32_t, (size_t)B * cap);
  for (size_t i = 0; i < (size_t)B * cap; i++) mask[i] = g_rand_int_range(rng, 0, 4) != 0;
  if (c->mask) for (uint32_t j = 0; j < cap; j++) mask[j] = 0;
  for (uint32_t b = 0; b < B; b++)
    for (uint32_t j = c->hide0; j < MIN(c->hide1, cap); j++) mask[(size_t)b * cap + j] = 0;
  float scale = 1.0f / sqrtf((float)D);
  float *want = g_new(float, B * nq * HD), *got = g_new(float, B * nq * HD);
  ref_attention(want, q, k, v, c->mask ? mask : NULL, B, nq, c->heads, D, c->q_start, c->n_kv, cap, c->causal, scale,
                c->kv_heads);
  VkrtBuffer *bq = test_upload_at(ctx, q, qb, offs[0]), *bk = test_upload_at(ctx, kd, kb, offs[1]);
  VkrtBuffer *bv = test_upload_at(ctx, vd, kb, offs[2]), *bm = test_upload_at(ctx, mask, mb, offs[3]);
  VkrtBuffer *bo = test_upload_at(ctx, NULL, qb, 0);
  /* scratch starts as NaN: the GEMM form must not read scores it did not write */
  VkrtBuffer *bs = c->scratch ? test_upload_at(ctx, NULL, c->scratch, 48) : NULL;
  VkrtAttnParams p = { B, nq, c->heads, D, c->q_start, c->n_kv, cap, c->causal, scale, c->kv_heads,
                       bs ? vkrt_tensor_sub(vkrt_tensor(bs), 48, c->scratch) : vkrt_tensor_none(), kv_f16 };
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_attention(s, vkrt_tensor(bo), vkrt_tensor_sub(vkrt_tensor(bq), offs[0], qb),
                    vkrt_tensor_sub(vkrt_tensor(bk), offs[1], kb), vkrt_tensor_sub(vkrt_tensor(bv), offs[2], kb),
                    c->mask ? vkrt_tensor_sub(vkrt_tensor(bm), offs[3], mb) : vkrt_tensor_none(), &p);
  /* (with small bindings, JANUSFLOW_MAX_BINDING, the op also splits by sequence and in smaller
   * chunks: then only the results count) */
  if (c->dispatches && vkrt_max_binding(ctx, false) >= (16u << 20))
    g_assert_cmpuint(vkrt_seq_dispatch_count(s), ==, c->dispatches);
  test_seq_run(s);
  test_download(bo, 0, got, qb);
  double r = ref_nmse(got, want, B * nq * HD);
  vkrt_seq_free(s);
  if (bs) vkrt_buffer_free(bs);
  vkrt_buffer_free(bq); vkrt_buffer_free(bk); vkrt_buffer_free(bv); vkrt_buffer_free(bm); vkrt_buffer_free(bo);
  if (kv_f16) { g_free(kd); g_free(vd); }
  g_free(q); g_free(k); g_free(v); g_free(mask); g_free(want); g_free(got);
  return r;
}

double attn_case_run(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4])
{
  return run_case(ctx, rng, c, offs, false);
}

static void check_case(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], const char *label,
                       bool kv_f16)
{
  double r = run_case(ctx, rng, c, offs, kv_f16);
  if (!(r <= 1e-10))
    g_printerr("%s attention B=%u nq=%u H=%u HK=%u D=%u q_start=%u n_kv=%u cap=%u causal=%d mask=%d (hiding %u..%u) "
               "kv_f16=%d: nmse %g\n",
               label, c->batch, c->n_q, c->heads, c->kv_heads, c->head_dim, c->q_start, c->n_kv, c->kv_cap, c->causal,
               c->mask, c->hide0, c->hide1, kv_f16, r);
  g_assert_cmpfloat(r, <=, 1e-10);
}

void attn_case_check(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], const char *label)
{
  check_case(ctx, rng, c, offs, label, false);
}

void attn_case_check_f16(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], const char *label)
{
  check_case(ctx, rng, c, offs, label, true);
}
