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
 * its head sizes are whole texels of 8 halves.
 * SPLITK (decode at long contexts on GPUs, given a scratch buffer): the SPLIT kernel over chunks
 * of SPLITK_CHUNK keys, a subgroup per (query, chunk), partial softmaxes into the scratch, then
 * a combine pass ("flash decoding"): SPLIT alone keeps only n_heads subgroups busy per token. */
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
#define SPLITK_CHUNK 256u  /* keys per chunk; auto selection wants more than 2 chunks' worth */
#define SPLITK_PATH_KV 4096u  /* vkrt_ops_attention_path: the context it reports for */

static volatile gint force_split = -1;
static volatile gint force_flash = -2;  /* -2: not read from the environment yet */
static volatile gint force_gemm = -2;   /* -2: not read from the environment yet */
static volatile gint flash_br, flash_bc, flash_wg;  /* tests: forced blocks, 0 = per device */
static volatile gint force_splitk = -2;  /* -2: not read from the environment yet */
static volatile gint splitk_keys = -1;   /* keys per chunk, 0 = SPLITK_CHUNK; -1: not read yet */

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

/* A switch's mode, read from JANUSFLOW_ATTENTION the first time (-2): 1 where it names `form`,
 * 0 for "online" (the one-pass kernels), else -1 (auto). */
static int env_mode(volatile gint *slot, const char *form)
{
  gint m = g_atomic_int_get(slot);
  if (m == -2) {
    const char *e = g_getenv("JANUSFLOW_ATTENTION");
    m = e && g_ascii_strcasecmp(e, form) == 0 ? 1 : e && g_ascii_strcasecmp(e, "online") == 0 ? 0 : -1;
    g_atomic_int_set(slot, m);
  }
  return m;
}

static int flash_mode(void)
{
  return env_mode(&force_flash, "flash");
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

void vkrt_ops_force_attention_splitk(int mode)
{
  g_atomic_int_set(&force_splitk, mode < 0 ? -1 : mode > 0);
}

static int splitk_mode(void)
{
  return env_mode(&force_splitk, "splitk");
}

void vkrt_ops_force_splitk_chunk(uint32_t keys)
{
  g_atomic_int_set(&splitk_keys, (gint)MIN(keys, (uint32_t)G_MAXINT));
}

/* Keys per chunk before the scratch has its say: forced, else JANUSFLOW_SPLITK_CHUNK (a test
 * knob: the tiny fixtures' contexts are far below 256 keys), else SPLITK_CHUNK. */
static uint32_t splitk_base_chunk(void)
{
  gint k = g_atomic_int_get(&splitk_keys);
  if (k < 0) {
    const char *e = g_getenv("JANUSFLOW_SPLITK_CHUNK");
    guint64 v = 0;
    k = e && g_ascii_string_to_unsigned(e, 10, 1, 1u << 30, &v, NULL) ? (gint)v : 0;
    g_atomic_int_set(&splitk_keys, k);
  }
  return k > 0 ? (uint32_t)k : SPLITK_CHUNK;
}

/* Bytes of scratch one (item, chunk) partial takes: max, sum and head_dim accumulators. */
static uint64_t splitk_unit_bytes(uint32_t head_dim)
{
  return ((uint64_t)head_dim + 2) * 4u;
}

/* Keys per chunk of the SPLITK form for `items` queries over n_kv keys with `room` scratch
 * bytes, or 0 where it is not wanted (auto: fewer than 3 natural chunks) or does not fit. A
 * scratch too small for the natural chunk count gets fewer, larger chunks. */
static uint32_t splitk_chunk(uint32_t n_kv, uint64_t items, uint32_t head_dim, uint64_t room)
{
  int mode = splitk_mode();
  uint32_t base = splitk_base_chunk();
  if (mode == 0 || items == 0 || (mode < 0 && n_kv <= 2ull * base)) return 0;
  uint64_t fit = room / splitk_unit_bytes(head_dim) / items;  /* chunks per item that fit */
  uint64_t n = MAX(((uint64_t)n_kv + base - 1) / base, 1), ch = base;
  if (fit == 0) return 0;
  if (n > fit) {
    ch = (n_kv + fit - 1) / fit;
    n = (n_kv + ch - 1) / ch;
  }
  return mode < 0 && n < 2 ? 0 : (uint32_t)ch;
}

static uint32_t splitk_chunks(uint32_t n_kv, uint32_t chunk)
{
  return MAX((n_kv + chunk - 1) / chunk, 1u);
}

typedef enum { ATTN_ONLINE, ATTN_SPLIT, ATTN_FLASH, ATTN_SCALAR, ATTN_GEMM, ATTN_SPLITK } AttnPath;

/* Heads the texel kernels take (K/V read as whole RGBA32 texels); the others go to SCALAR. */
static bool texel_head_dim(uint32_t head_dim)
{
  return head_dim % 4 == 0 && head_dim <= VKRT_ATTN_MAX_TEXEL_HEAD_DIM;
}

/* scratch: whether the caller gave a score buffer (the GEMM form needs one); sk_chunk: the
 * SPLITK form's chunk for this shape and scratch (splitk_chunk), 0 = not that form */
static AttnPath attention_path(const VkrtDeviceInfo *di, uint32_t n_q, uint64_t items, uint32_t head_dim,
                               bool scratch, uint32_t sk_chunk)
{
  if (!texel_head_dim(head_dim)) return ATTN_SCALAR;
  int fm = flash_mode(), gm = gemm_mode();
  bool gpu = di->type != VKRT_DEVICE_CPU;
  if (scratch && fm <= 0 && (gm > 0 || (gm < 0 && !gpu && n_q >= GEMM_MIN_Q))) return ATTN_GEMM;
  if (fm > 0 || (fm < 0 && gpu && n_q >= FLASH_MIN_Q)) return ATTN_FLASH;
  gint fs = g_atomic_int_get(&force_split);
  /* few queries (decode) on a GPU: spread each query's keys over a subgroup instead (a CPU
   * device already fills its SIMD lanes with one query per lane) */
  bool split = fs < 0 ? gpu : fs;
  if (items < 512 && di->has_subgroup_arith) {
    /* and at long contexts, over chunks of keys too (forced: also where SPLIT is not) */
    int sk = splitk_mode();
    if (sk_chunk && (sk > 0 || split)) return ATTN_SPLITK;
    if (split) return ATTN_SPLIT;
  }
  return ATTN_ONLINE;
}

const char *vkrt_ops_attention_path_for(const VkrtDeviceInfo *di, uint32_t n_q, uint32_t n_seq_heads,
                                        uint32_t head_dim, uint32_t n_kv, uint64_t scratch_bytes)
{
  static const char *const names[] = {
    [ATTN_ONLINE] = "online", [ATTN_SPLIT] = "split", [ATTN_FLASH] = "flash", [ATTN_SCALAR] = "scalar",
    [ATTN_GEMM] = "gemm", [ATTN_SPLITK] = "splitk",
  };
  uint64_t items = (uint64_t)n_q * n_seq_heads;
  uint32_t sk = texel_head_dim(head_dim) ? splitk_chunk(n_kv, items, head_dim, scratch_bytes) : 0;
  return names[attention_path(di, n_q, items, head_dim, scratch_bytes > 0, sk)];
}

const char *vkrt_ops_attention_path(VkrtContext *ctx, uint32_t n_q, uint32_t n_seq_heads, uint32_t head_dim)
{
  return vkrt_ops_attention_path_for(vkrt_context_info(ctx), n_q, n_seq_heads, head_dim, SPLITK_PATH_KV,
                                     vkrt_ops_attention_scratch_bytes(ctx));
}

uint64_t vkrt_ops_attention_scratch_bytes(VkrtContext *ctx)
{
  int gm = gemm_mode(), sk = splitk_mode();
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  bool cpu = di->type == VKRT_DEVICE_CPU;
  if (gm > 0 || (gm < 0 && cpu && flash_mode() <= 0)) return VKRT_ATTN_SCRATCH_BYTES;
  return di->has_subgroup_arith && (sk > 0 || (sk < 0 && !cpu)) ? VKRT_ATTN_SPLITK_SCRATCH_BYTES : 0;
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

/* The push block of attention.comp's kernels */
typedef struct {
  uint32_t n_b, n_q, n_heads, q_start, n_kv, kv_cap, causal, has_mask;
  float scale;
  uint32_t o_off, q_off, k_off, v_off, mask_off, n_kv_heads;
  uint32_t n_chunks, chunk, s_off;  /* SPLITK and its combine only */
} AttnPush;

/* The SPLITK form for nb sequences: partials of every (item, chunk) into the scratch, then the
 * combine into out. push: the op's push block (the SPLITK fields are set here). */
static void attention_splitk(VkrtSeq *seq, const VkrtAttnParams *p, uint64_t nb, uint32_t chunk, AttnPush *push,
                             uint64_t flops, const OpBind *bo, const OpBind *bq, const OpBind *bk,
                             const OpBind *bv, const OpBind *bm)
{
  uint64_t items = nb * p->n_heads * p->n_q;
  uint32_t n_chunks = splitk_chunks(p->n_kv, chunk);
  uint64_t units = items * n_chunks;
  /* a unit per subgroup of the 64-invocation workgroup (UNITS in attention.comp) */
  uint32_t sg = vkrt_context_info(vkrt_seq_context(seq))->subgroup_size;
  uint32_t per_wg = sg && sg < ATTN_WG ? ATTN_WG / sg : 1;
  OpBind bs = { 0 };
  if (!op_bind(seq, "attention", "scratch", vkrt_tensor_sub(p->scratch, 0, units * splitk_unit_bytes(p->head_dim)),
               false, 4, &bs))
    return;
  push->n_chunks = n_chunks;
  push->chunk = chunk;
  push->s_off = bs.off;
  VkrtDispatch d = {
    .shader = p->kv_f16 ? "attention_splitk_f16" : "attention_splitk",
    .n_bindings = 5,
    .bindings = { bs.bind, bq->bind, bk->bind, bv->bind, bm->bind },
    .texel_mask = 0xc,
    .push = push,
    .push_size = sizeof *push,
    .spec = { p->head_dim / 4, per_wg },
    .n_spec = 2,
    .flops = flops,
  };
  vkrt_groups_linear((units + per_wg - 1) / per_wg, d.groups);
  vkrt_seq_dispatch(seq, &d);
  d.shader = "attention_combine";
  d.n_bindings = 2;
  d.bindings[0] = bo->bind;
  d.bindings[1] = bs.bind;
  d.texel_mask = 0;
  d.spec[0] = p->head_dim;
  d.n_spec = 1;
  d.flops = 0;
  vkrt_groups_linear((items * (p->head_dim / 4) + ATTN_WG - 1) / ATTN_WG, d.groups);
  vkrt_seq_dispatch(seq, &d);
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
  /* the SPLITK form's scratch: 4-byte floats in one storage binding */
  uint64_t sk_room = p->scratch.buf && p->scratch.offset % 4 == 0 ? MIN(p->scratch.size, op_window_bytes(seq, false)) : 0;
  for (uint64_t b0 = 0; b0 < B; b0 += per) {
    uint64_t nb = MIN(per, B - b0);
    uint64_t items = nb * p->n_heads * p->n_q;
    uint32_t sk_chunk = texel ? splitk_chunk(p->n_kv, items, p->head_dim, sk_room) : 0;
    AttnPath path = attention_path(di, p->n_q, items, p->head_dim, scratch, sk_chunk);
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
    AttnPush push = { (uint32_t)nb, p->n_q, p->n_heads, p->q_start, p->n_kv, p->kv_capacity, p->causal, has_mask,
               p->scale, bo.off, bq.off, bk.off, bv.off, bm.off, hk, 0, 0, 0 };
    /* 2 FLOPs per multiply-add: q.k and p.v over the keys each query sees */
    uint64_t pairs = 0;
    for (uint32_t i = 0; i < p->n_q; i++)
      pairs += p->causal ? MIN((uint64_t)p->n_kv, (uint64_t)p->q_start + i + 1) : p->n_kv;
    bool split = path == ATTN_SPLIT, f16 = p->kv_f16;
    if (path == ATTN_SPLITK) {
      attention_splitk(seq, p, nb, sk_chunk, &push, 4ull * pairs * HD * nb, &bo, &bq, &bk, &bv, &bm);
      continue;
    }
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
