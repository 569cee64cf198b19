/* Attention over a K/V cache. Kernels: attn_gemm.comp (CPU devices with >= GEMM_MIN_Q queries
 * per sequence and a scratch buffer: scores q k^T, softmax, P v, chunked over query rows; its
 * texel-fetch tiles are what lavapipe runs fastest), attention.comp (online softmax, one
 * invocation per query; CPU devices for decode, and GPUs for small query counts), its SPLIT
 * variant (decode on GPUs: a subgroup per query) and flash_attn.comp (GPUs with >= FLASH_MIN_Q
 * queries per sequence: blocks of queries share K/V tiles staged in shared memory). All
 * sequences go in one dispatch when their K/V regions fit one binding, else one dispatch per
 * sequence (a single sequence's K/V must fit one texel binding: 128 MiB+ on every device seen).
 * Head sizes that are not a multiple of 4 or above 256 take the SCALAR variant of attention.comp
 * (storage buffers) on every device. fp16 K/V (kv_f16, the LLM's fp16 cache) takes the _f16
 * variant of whichever texel kernel the shape gets (shaders/kv.glsl); there is no SCALAR one, so
 * its head sizes are whole texels of 8 halves. */
#include "ops.h"
#include "op_util.h"

#define ATTN_WG 64u
#define ATTN_SPLIT_ITEMS 8u  /* (sequence, head, query) items per workgroup (ITEMS in attention.comp) */
#define FLASH_MIN_Q 16u
#define FLASH_WG 128u
#define GEMM_MIN_Q 16u
#define GEMM_TILE 16u      /* TM in attn_gemm.comp: PV's rows per lane */
#define S_ALIGN 16u        /* score rows are padded to this many keys (a multiple of QK_KEYS) */
#define QK_ROWS 16u        /* QM, QN and the workgroup size of attn_gemm.comp's QK */
#define QK_KEYS 8u
#define QK_WG 16u
#define GEMM_PV_TEXELS 4u  /* TD in attn_gemm.comp */

static volatile gint force_split = -1;
static volatile gint force_flash = -2;  /* -2: not read from the environment yet */
static volatile gint force_gemm = -2;   /* -2: not read from the environment yet */
static volatile gint flash_br, flash_bc, flash_wg;  /* tests: forced blocks, 0 = per device */

void vkrt_ops_force_attention_flash(int mode)
{
  g_atomic_int_set(&force_flash, mode < 0 ? -1 : mode > 0);
}

void vkrt_ops_force_flash_blocks(uint32_t br, uint32_t bc, uint32_t wg)
{
  g_atomic_int_set(&flash_br, (gint)br);
  g_atomic_int_set(&flash_bc, (gint)bc);
  g_atomic_int_set(&flash_wg, (gint)wg);
}

static int flash_mode(void)
{
  gint m = g_atomic_int_get(&force_flash);
  if (m == -2) {
    const char *e = g_getenv("JANUSFLOW_ATTENTION");
    m = e && g_ascii_strcasecmp(e, "flash") == 0 ? 1 : e && g_ascii_strcasecmp(e, "online") == 0 ? 0 : -1;
    g_atomic_int_set(&force_flash, m);
  }
  return m;
}

void vkrt_ops_force_attention_gemm(int mode)
{
  g_atomic_int_set(&force_gemm, mode < 0 ? -1 : mode > 0);
}

static int gemm_mode(void)
{
  gint m = g_atomic_int_get(&force_gemm);
  if (m == -2) {
    const char *e = g_getenv("JANUSFLOW_ATTENTION");
    m = !e ? -1 : g_ascii_strcasecmp(e, "gemm") == 0 ? 1 :
        g_ascii_strcasecmp(e, "online") == 0 || g_ascii_strcasecmp(e, "flash") == 0 ? 0 : -1;
    g_atomic_int_set(&force_gemm, m);
  }
  return m;
}

static uint32_t flash_shared_bytes(uint32_t d4, uint32_t br, uint32_t bc)
{
  /* Q block, one K/V tile (rows padded by a vec4), scores, and 3 floats per query */
  return 16u * (br * d4 + bc * (d4 + 1)) + 4u * (br * bc + 3u * br);
}

/* Largest query block and key tile whose shared memory fits the device: 32 x 32 at head_dim 128
 * needs 38 KiB (NVIDIA/AMD have 48-64), 32 x 16 fits 32 KiB. Bigger BR means fewer K/V
 * fetches; 128 threads hold BR * head_dim / 128 outputs each (32 floats at 32 x 128). */
static void flash_blocks(const VkrtDeviceInfo *di, uint32_t d4, uint32_t *br, uint32_t *bc)
{
  static const uint32_t cand[][2] = { { 32, 32 }, { 32, 16 }, { 16, 32 }, { 16, 16 }, { 16, 8 }, { 8, 8 }, { 4, 4 } };
  /* CPU devices only run this kernel when it is forced (tests): there small blocks, because
   * lavapipe's JIT time grows with the unrolled block (15 s for 32 x 16 at head_dim 128) */
  for (size_t i = di->type == VKRT_DEVICE_CPU ? 4 : 0; i < G_N_ELEMENTS(cand); i++)
    if (flash_shared_bytes(d4, cand[i][0], cand[i][1]) <= di->max_shared_bytes || i + 1 == G_N_ELEMENTS(cand)) {
      *br = cand[i][0];
      *bc = cand[i][1];
      return;
    }
}

typedef enum { ATTN_ONLINE, ATTN_SPLIT, ATTN_FLASH, ATTN_SCALAR, ATTN_GEMM } AttnPath;

/* Heads the texel kernels take (K/V read as whole RGBA32 texels); the others go to SCALAR. */
static bool texel_head_dim(uint32_t head_dim)
{
  return head_dim % 4 == 0 && head_dim <= VKRT_ATTN_MAX_TEXEL_HEAD_DIM;
}

/* scratch: whether the caller gave a score buffer (the GEMM form needs one) */
static AttnPath attention_path(const VkrtDeviceInfo *di, uint32_t n_q, uint64_t items, uint32_t head_dim,
                               bool scratch)
{
  if (!texel_head_dim(head_dim)) return ATTN_SCALAR;
  int fm = flash_mode(), gm = gemm_mode();
  bool gpu = di->type != VKRT_DEVICE_CPU;
  if (scratch && fm <= 0 && (gm > 0 || (gm < 0 && !gpu && n_q >= GEMM_MIN_Q))) return ATTN_GEMM;
  if (fm > 0 || (fm < 0 && gpu && n_q >= FLASH_MIN_Q)) return ATTN_FLASH;
  gint fs = g_atomic_int_get(&force_split);
  /* few queries (decode) on a GPU: spread each query's keys over a subgroup instead (a CPU
   * device already fills its SIMD lanes with one query per lane) */
  if (items < 512 && di->has_subgroup_arith && (fs < 0 ? gpu : fs)) return ATTN_SPLIT;
  return ATTN_ONLINE;
}

const char *vkrt_ops_attention_path(VkrtContext *ctx, uint32_t n_q, uint32_t n_seq_heads, uint32_t head_dim)
{
  static const char *const names[] = {
    [ATTN_ONLINE] = "online", [ATTN_SPLIT] = "split", [ATTN_FLASH] = "flash", [ATTN_SCALAR] = "scalar",
    [ATTN_GEMM] = "gemm",
  };
  return names[attention_path(vkrt_context_info(ctx), n_q, (uint64_t)n_q * n_seq_heads, head_dim, true)];
}

uint64_t vkrt_ops_attention_scratch_bytes(VkrtContext *ctx)
{
  int gm = gemm_mode();
  bool cpu = vkrt_context_info(ctx)->type == VKRT_DEVICE_CPU;
  return gm > 0 || (gm < 0 && cpu && flash_mode() <= 0) ? VKRT_ATTN_SCRATCH_BYTES : 0;
}

/* Floats per score row: n_kv padded to S_ALIGN keys. */
static uint32_t score_ld(uint32_t n_kv)
{
  return (n_kv + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

uint64_t vkrt_ops_attention_scratch_row_bytes(uint64_t n_seq_heads, uint32_t n_kv)
{
  return n_seq_heads * ((uint64_t)score_ld(n_kv) + 1) * 4u;  /* scores and 1 / sum */
}

/* Query rows per chunk of the GEMM form for nb sequences (0: not even one row fits). */
static uint32_t gemm_chunk_rows(VkrtSeq *seq, const VkrtAttnParams *p, uint64_t nb)
{
  uint64_t per_row = vkrt_ops_attention_scratch_row_bytes(nb * p->n_heads, p->n_kv);
  uint64_t room = MIN(p->scratch.size, MIN(op_window_bytes(seq, false), op_window_bytes(seq, true)));
  uint64_t rows = MIN(room / per_row, (uint64_t)p->n_q);
  if (rows > GEMM_TILE && rows < p->n_q) rows -= rows % GEMM_TILE;
  return (uint32_t)rows;
}

/* Keys query q of a sequence sees (exclusive end). */
static uint64_t key_end(const VkrtAttnParams *p, uint32_t q)
{
  return p->causal ? MIN((uint64_t)p->n_kv, (uint64_t)p->q_start + q + 1) : p->n_kv;
}

/* The GEMM form for sequences [b0, b0 + nb): per chunk of query rows, QK into the scratch,
 * softmax in place, PV into out. o/q/k/v/mask are this group's bindings (q as texels). */
static void attention_gemm(VkrtSeq *seq, const VkrtAttnParams *p, uint32_t hk, uint64_t nb, uint32_t chunk,
                           const OpBind *bo, const OpBind *bq, const OpBind *bk, const OpBind *bv,
                           const OpBind *bm, bool has_mask)
{
  const char *op = "attention";
  uint32_t s_ld = score_ld(p->n_kv), d4 = p->head_dim / 4u;
  uint64_t bh = nb * p->n_heads;
  for (uint32_t q0 = 0; q0 < p->n_q; q0 += chunk) {
    uint32_t rows = MIN(chunk, p->n_q - q0);
    uint64_t s_bytes = bh * rows * s_ld * 4u;  /* then the rows' 1 / sums */
    VkrtTensor sc = vkrt_tensor_sub(p->scratch, 0, rows * vkrt_ops_attention_scratch_row_bytes(bh, p->n_kv));
    OpBind bs = { 0 }, bst = { 0 };
    if (!op_bind(seq, op, "scratch", sc, false, 16, &bs) ||
        !op_bind(seq, op, "scratch", vkrt_tensor_sub(sc, 0, s_bytes), true, 16, &bst))
      return;
    struct {
      uint32_t n_b, n_heads, n_kv_heads, rows, q0, n_q, q_start, n_kv;
      uint32_t kv_cap, causal, has_mask, s_ld;
      float scale;
      uint32_t o_off, q_off, k_off, v_off, s_off, mask_off, inv_off, st_off;
    } push = { (uint32_t)nb, p->n_heads, hk, rows, q0, p->n_q, p->q_start, p->n_kv,
               p->kv_capacity, p->causal, has_mask, s_ld, p->scale,
               bo->off, bq->off, bk->off, bv->off, bs.off, bm->off, (uint32_t)(bs.off * 4u + s_bytes / 4u), bst.off };
    /* what the kernels multiply: QK whole QK_KEYS-key columns up to each QK_ROWS-row tile's
     * causal limit (clipped to n_kv), PV keys in fours up to each GEMM_TILE-row tile's */
    uint64_t qk = 0, pv = 0;
    for (uint32_t r0 = 0; r0 < rows; r0 += QK_ROWS) {
      uint32_t nr = MIN(QK_ROWS, rows - r0);
      uint64_t kend = key_end(p, q0 + r0 + nr - 1);
      qk += nr * MIN((kend + QK_KEYS - 1) / QK_KEYS * QK_KEYS, (uint64_t)p->n_kv);
    }
    for (uint32_t r0 = 0; r0 < rows; r0 += GEMM_TILE) {
      uint32_t nr = MIN(GEMM_TILE, rows - r0);
      pv += nr * ((key_end(p, q0 + r0 + nr - 1) + 3) / 4 * 4);
    }
    uint64_t per_bh = 2ull * p->head_dim * bh;
    VkrtDispatch d = {
      .shader = "attn_gemm_qk",
      .n_bindings = 4,
      .bindings = { bs.bind, bq->bind, bk->bind, bm->bind },
      .texel_mask = 0x6,
      .push = &push,
      .push_size = sizeof push,
      .spec = { d4 },
      .n_spec = 1,
      .groups = { (p->n_kv + QK_WG * QK_KEYS - 1) / (QK_WG * QK_KEYS), (rows + QK_ROWS - 1) / QK_ROWS, (uint32_t)bh },
      .flops = per_bh * qk,
    };
    if (p->kv_f16) d.shader = "attn_gemm_qk_f16";
    vkrt_seq_dispatch(seq, &d);
    d.shader = "attn_gemm_softmax";
    d.n_bindings = 3;
    d.bindings[1] = bs.bind;
    d.bindings[2] = bst.bind;
    d.texel_mask = 0x4;
    d.flops = 0;
    vkrt_groups_linear((bh * rows + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
    uint64_t tiles = bh * ((rows + GEMM_TILE - 1) / GEMM_TILE) * ((d4 + GEMM_PV_TEXELS - 1) / GEMM_PV_TEXELS);
    push.s_off = bst.off;
    d.shader = p->kv_f16 ? "attn_gemm_pv_f16" : "attn_gemm_pv";
    d.n_bindings = 4;
    d.bindings[0] = bo->bind;
    d.bindings[1] = bst.bind;
    d.bindings[2] = bv->bind;
    d.bindings[3] = bs.bind;
    d.texel_mask = 0x6;
    d.flops = per_bh * pv;
    vkrt_groups_linear((tiles + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}

void vkrt_ops_force_attention_split(int mode)
{
  g_atomic_int_set(&force_split, mode < 0 ? -1 : mode > 0);
}

void vkrt_op_attention(VkrtSeq *seq, VkrtTensor out, VkrtTensor q, VkrtTensor k, VkrtTensor v,
                       VkrtTensor mask, const VkrtAttnParams *p)
{
  const char *op = "attention";
  uint32_t hk = p && p->n_kv_heads ? p->n_kv_heads : p ? p->n_heads : 0;
  if (!p || !vkrt_attention_head_dim_ok(p->head_dim) || p->n_kv > p->kv_capacity || !hk || p->n_heads % hk) {
    op_fail(seq, VKRT_ERROR_FAILED, op,
            "bad parameters (head_dim must be 1..%u, n_kv <= kv_capacity, n_kv_heads must divide n_heads)",
            VKRT_ATTN_MAX_HEAD_DIM);
    return;
  }
  if (p->kv_f16 && !vkrt_attention_kv_f16_ok(p->head_dim)) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "fp16 K/V needs a head size that is a multiple of 8 up to %u, not %u",
            VKRT_ATTN_MAX_TEXEL_HEAD_DIM, p->head_dim);
    return;
  }
  uint64_t B = p->n_batch, HD = (uint64_t)p->n_heads * p->head_dim, KD = (uint64_t)hk * p->head_dim;
  uint64_t kv_es = p->kv_f16 ? 2 : 4;  /* bytes per K/V value */
  uint64_t q_bytes = p->n_q * HD * 4, kv_bytes = p->kv_capacity * KD * kv_es;
  bool has_mask = mask.buf != NULL;
  if (!op_check(seq, op, "out", out, B * q_bytes) || !op_check(seq, op, "q", q, B * q_bytes) ||
      !op_check(seq, op, "k", k, B * kv_bytes) || !op_check(seq, op, "v", v, B * kv_bytes) ||
      (has_mask && !op_check(seq, op, "mask", mask, B * p->kv_capacity * 4)))
    return;
  if (B == 0 || p->n_q == 0 || p->n_heads == 0) return;
  const VkrtDeviceInfo *di = vkrt_context_info(vkrt_seq_context(seq));
  bool texel = texel_head_dim(p->head_dim);
  if (texel && (k.offset % 16 || v.offset % 16)) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "k and v must start on 16-byte boundaries");
    return;
  }
  /* all sequences at once if the K/V span (up to the last key read) fits one binding */
  uint64_t read_kv = ((B - 1) * p->kv_capacity + p->n_kv) * KD * kv_es;
  bool all = read_kv <= op_window_bytes(seq, texel) && B * q_bytes <= op_window_bytes(seq, false);
  uint64_t per = all ? B : 1;
  bool scratch = p->scratch.buf && p->scratch.offset % 16 == 0 && q.offset % 16 == 0 &&
                 gemm_chunk_rows(seq, p, per) > 0;
  for (uint64_t b0 = 0; b0 < B; b0 += per) {
    uint64_t nb = MIN(per, B - b0);
    uint64_t items = nb * p->n_heads * p->n_q;
    AttnPath path = attention_path(di, p->n_q, items, p->head_dim, scratch);
    bool gemm = path == ATTN_GEMM;
    uint64_t kv_span = MAX(((nb - 1) * p->kv_capacity + p->n_kv) * KD * kv_es, 16);
    OpBind bo = { 0 }, bq = { 0 }, bk = { 0 }, bv = { 0 }, bm = { 0 };
    if (!op_bind(seq, op, "out", vkrt_tensor_sub(out, b0 * q_bytes, nb * q_bytes), false, 4, &bo) ||
        !op_bind(seq, op, "q", vkrt_tensor_sub(q, b0 * q_bytes, nb * q_bytes), gemm, gemm ? 16 : 4, &bq) ||
        !op_bind(seq, op, "k", vkrt_tensor_sub(k, b0 * kv_bytes, kv_span), texel, texel ? 16 : 4, &bk) ||
        !op_bind(seq, op, "v", vkrt_tensor_sub(v, b0 * kv_bytes, kv_span), texel, texel ? 16 : 4, &bv))
      return;
    if (has_mask) {
      if (!op_bind(seq, op, "mask", vkrt_tensor_sub(mask, b0 * p->kv_capacity * 4, nb * p->kv_capacity * 4),
                   false, 4, &bm))
        return;
    } else {
      bm = gemm ? bo : bq;  /* never read: any storage binding */
      bm.off = 0;
    }
    if (gemm) {
      attention_gemm(seq, p, hk, nb, gemm_chunk_rows(seq, p, nb), &bo, &bq, &bk, &bv, &bm, has_mask);
      continue;
    }
    struct {
      uint32_t n_b, n_q, n_heads, q_start, n_kv, kv_cap, causal, has_mask;
      float scale;
      uint32_t o_off, q_off, k_off, v_off, mask_off, n_kv_heads;
    } push = { (uint32_t)nb, p->n_q, p->n_heads, p->q_start, p->n_kv, p->kv_capacity, p->causal, has_mask,
               p->scale, bo.off, bq.off, bk.off, bv.off, bm.off, hk };
    /* 2 FLOPs per multiply-add: q.k and p.v over the keys each query sees */
    uint64_t pairs = 0;
    for (uint32_t i = 0; i < p->n_q; i++)
      pairs += p->causal ? MIN((uint64_t)p->n_kv, (uint64_t)p->q_start + i + 1) : p->n_kv;
    bool split = path == ATTN_SPLIT, f16 = p->kv_f16;
    VkrtDispatch d = {
      .shader = path == ATTN_FLASH ? (f16 ? "flash_attn_f16" : "flash_attn")
                : split ? (f16 ? "attention_split_f16" : "attention_split")
                : texel ? (f16 ? "attention_f16" : "attention") : "attention_scalar",
      .n_bindings = 5,
      .bindings = { bo.bind, bq.bind, bk.bind, bv.bind, bm.bind },
      .texel_mask = texel ? 0xc : 0,
      .push = &push,
      .push_size = sizeof push,
      .spec = { texel ? p->head_dim / 4 : p->head_dim },
      .n_spec = 1,
      .flops = 4ull * pairs * HD * nb,
    };
    if (path == ATTN_FLASH) {
      uint32_t d4 = p->head_dim / 4, br = (uint32_t)g_atomic_int_get(&flash_br), bc = (uint32_t)g_atomic_int_get(&flash_bc);
      uint32_t wg = (uint32_t)g_atomic_int_get(&flash_wg);
      if (!br || !bc) flash_blocks(di, d4, &br, &bc);
      if (!wg) wg = FLASH_WG;
      if (flash_shared_bytes(d4, br, bc) > di->max_shared_bytes || wg > di->max_wg_invocations) {
        op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "flash attention blocks %ux%u (%u threads) do not fit this device", br, bc, wg);
        return;
      }
      d.spec[1] = br;
      d.spec[2] = bc;
      d.spec[3] = wg;
      d.n_spec = 4;
      vkrt_groups_linear(nb * p->n_heads * ((p->n_q + br - 1) / br), d.groups);
    } else if (split)
      vkrt_groups_linear((items + ATTN_SPLIT_ITEMS - 1) / ATTN_SPLIT_ITEMS, d.groups);
    else
      vkrt_groups_linear((items + ATTN_WG - 1) / ATTN_WG, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
