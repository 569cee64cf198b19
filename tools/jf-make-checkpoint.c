/* jf-make-checkpoint: writes a random-weight JanusFlow model folder (and optionally an SDXL-style
 * VAE folder) with the real Hugging Face layout, tensor names and shapes, for tests and timing
 * without downloading 4 GB. The weights are deterministic for a given --seed: every tensor draws
 * from its own splitmix64 stream seeded from (seed, tensor name), so a tensor's values do not
 * depend on which other tensors exist. Files are streamed tensor by tensor through a fixed buffer,
 * so the 4 GB `full` checkpoint needs a few MiB of memory. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#define BOS_TOKEN "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define EOS_TOKEN "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define GEN_TOKEN "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81generation\xef\xbd\x9c>"
/* The processor adds up to 4 image tags after the tokenizer's largest id. */
#define RUNTIME_TAGS 4

typedef struct {
  const char *name;
  /* LLM */
  int D, layers, heads, kv_heads, inter, vocab, max_pos;
  /* SigLIP; explicit = spell the geometry out in config.json (not a named preset) */
  const char *siglip_name;
  int image, patch, width, blocks, vheads;
  double mlp_ratio;
  gboolean explicit_geom;
  /* ShallowUViT channels, latent side */
  int C, latent_hw;
  /* VAE */
  int vae_boc[4], vae_lpb, vae_groups;
  /* Expected totals (0 = not checked) */
  uint64_t expect_model, expect_vae;
  /* LLM q/k/v/o_proj.bias tensors and `attention_bias: true` (JanusFlow has none; LLaMA takes them) */
  gboolean attn_bias;
  /* ShallowUViT options JanusFlow leaves at their defaults (all zero = JanusFlow's): enc_kernel 0 is
   * its 2x2 stride-2 patchify conv with no `padding` in config.json (the default kernel - stride);
   * otherwise that kernel with enc_padding spelled out. enc_no_bias = encoder `use_bias: false`,
   * dec_no_mid = decoder `use_mid_block: false`. dec_upsamples 0 = JanusFlow's one out_conv;
   * otherwise that many, each unpatching 2x2, and an encoder stride of 2^dec_upsamples to match. */
  int enc_kernel, enc_padding;
  gboolean enc_no_bias, dec_no_mid;
  int dec_upsamples;
} Preset;

static const Preset presets[] = {
  {"tiny", 64, 2, 4, 4, 160, 640, 512, "siglip_tiny_patch16_64", 64, 16, 32, 2, 2, 4.0, TRUE, 32, 8,
   {32, 32, 64, 64}, 1, 8, 0, 0, FALSE, 0, 0, FALSE, FALSE, 0},
  {"small", 1024, 8, 8, 8, 2816, 32000, 4096, "siglip_small_patch16_384", 384, 16, 512, 8, 8, 4.0, TRUE, 384, 48,
   {64, 128, 256, 256}, 2, 32, 0, 0, FALSE, 0, 0, FALSE, FALSE, 0},
  /* sizes that are no tile's multiple (K % 8 != 0 in the MLPs and SigLIP, head_dim 44 and 12,
   * 9 image tokens, 4 VAE blocks of 2 resnets): our own second parity fixture, tests/data/odd */
  {"odd", 88, 3, 2, 2, 236, 700, 512, "siglip_odd_patch16_48", 48, 16, 36, 2, 3, 3.0, TRUE, 24, 6,
   {16, 24, 40, 40}, 2, 8, 0, 0, FALSE, 0, 0, FALSE, FALSE, 0},
  /* awkward attention shapes and configs the official checkpoint does not use: LLM head_dim 10
   * with grouped-query attention (6 query heads on 2 K/V heads) and attention biases, SigLIP
   * head_dim 6 at 50 px, which patch 16 does not divide (the grid rounds down to 3x3 = 9 image
   * tokens), an odd UViT width of 23 (the timestep embedding pads one zero feature), a 6x6
   * stride-4 UViT patchify conv with padding 1 and a decoder of two out_convs (upsamples 2, the
   * official default) to match, a 12x12 default latent (9 generation tokens), an encoder without
   * biases and a decoder without ConvNeXt blocks: our third parity fixture, tests/data/heads */
  {"heads", 60, 2, 6, 2, 100, 640, 512, "siglip_heads_patch16_50", 50, 16, 30, 2, 5, 4.0, TRUE, 23, 12,
   {8, 16, 16, 24}, 1, 4, 0, 0, TRUE, 6, 1, TRUE, TRUE, 2},
  {"full", 2048, 24, 16, 16, 5632, 102400, 16384, "siglip_large_patch16_384", 384, 16, 1024, 24, 16, 4.0, FALSE, 768,
   48, {128, 256, 512, 512}, 2, 32, 2046367504ull, 49490199ull, FALSE, 0, 0, FALSE, FALSE, 0},
};

/* ---------------------------------------------------------------------------------------------
 * Tensor list */

typedef enum { INIT_UNIFORM, INIT_ONE } InitKind;

typedef struct {
  char *name;
  int ndim;
  int64_t shape[4];
  InitKind kind;
  float scale;  /* uniform in [-scale, scale], around 0 or 1 */
  uint64_t n, offset;
} Spec;

static void spec_free(gpointer p) { g_free(((Spec *)p)->name); }

static void add(GArray *a, InitKind kind, float scale, int ndim, const int64_t *shape, const char *fmt, ...)
    G_GNUC_PRINTF(6, 7);
static void add(GArray *a, InitKind kind, float scale, int ndim, const int64_t *shape, const char *fmt, ...) {
  Spec s = {0};
  va_list ap;
  va_start(ap, fmt);
  s.name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  s.ndim = ndim;
  s.n = 1;
  for (int i = 0; i < ndim; i++) {
    s.shape[i] = shape[i];
    s.n *= (uint64_t)shape[i];
  }
  s.kind = kind;
  s.scale = scale;
  g_array_append_val(a, s);
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* PyTorch-default-like magnitude 1/sqrt(fan_in) for a weight of this shape. */
static float fan_scale(int ndim, const int64_t *shape) {
  double fan = 1;
  for (int i = 1; i < ndim; i++) fan *= (double)shape[i];
  return (float)(1.0 / sqrt(fan));
}

/* Linear [out, in] + bias [out]. */
static void linear(GArray *a, const char *prefix, int64_t out, int64_t in, gboolean bias) {
  float s = (float)(1.0 / sqrt((double)in));
  add(a, INIT_UNIFORM, s, 2, SHAPE(out, in), "%s.weight", prefix);
  if (bias) add(a, INIT_UNIFORM, s, 1, SHAPE(out), "%s.bias", prefix);
}

static void norm(GArray *a, const char *prefix, int64_t c, gboolean bias) {
  add(a, INIT_ONE, 0.05f, 1, SHAPE(c), "%s.weight", prefix);
  if (bias) add(a, INIT_UNIFORM, 0.02f, 1, SHAPE(c), "%s.bias", prefix);
}

/* ConvNeXt block of ShallowUViT (depthwise 7x7, RMSNorm, GRN, FiLM from the LLM hidden size).
 * bias = the config's use_bias (the GRN keeps its bias either way). */
static void convnext(GArray *a, const char *prefix, int64_t C, int64_t D, gboolean bias) {
  char *p;
  add(a, INIT_UNIFORM, 1.0f / 7.0f, 4, SHAPE(C, 1, 7, 7), "%s.depthwise.weight", prefix);
  if (bias) add(a, INIT_UNIFORM, 1.0f / 7.0f, 1, SHAPE(C), "%s.depthwise.bias", prefix);
  add(a, INIT_ONE, 0.05f, 1, SHAPE(C), "%s.norm.weight", prefix);
  p = g_strdup_printf("%s.channelwise_linear_1", prefix);
  linear(a, p, 4 * C, C, bias);
  g_free(p);
  add(a, INIT_UNIFORM, 0.1f, 4, SHAPE(1, 1, 1, 4 * C), "%s.channelwise_norm.weight", prefix);
  add(a, INIT_UNIFORM, 0.1f, 4, SHAPE(1, 1, 1, 4 * C), "%s.channelwise_norm.bias", prefix);
  p = g_strdup_printf("%s.channelwise_linear_2", prefix);
  linear(a, p, C, 4 * C, bias);
  g_free(p);
  p = g_strdup_printf("%s.cond_embeds_mapper", prefix);
  linear(a, p, 2 * C, D, bias);
  g_free(p);
}

static void janusflow_tensors(GArray *a, const Preset *p) {
  const int64_t D = p->D, I = p->inter, V = p->vocab, hd = p->D / p->heads, KV = (int64_t)p->kv_heads * hd;
  add(a, INIT_UNIFORM, 1.0f, 2, SHAPE(V, D), "language_model.model.embed_tokens.weight");
  for (int l = 0; l < p->layers; l++) {
    char pre[96];
    snprintf(pre, sizeof pre, "language_model.model.layers.%d", l);
    char *q = g_strdup_printf("%s.self_attn.q_proj", pre), *k = g_strdup_printf("%s.self_attn.k_proj", pre),
         *v = g_strdup_printf("%s.self_attn.v_proj", pre), *o = g_strdup_printf("%s.self_attn.o_proj", pre),
         *g = g_strdup_printf("%s.mlp.gate_proj", pre), *u = g_strdup_printf("%s.mlp.up_proj", pre),
         *d = g_strdup_printf("%s.mlp.down_proj", pre), *n1 = g_strdup_printf("%s.input_layernorm", pre),
         *n2 = g_strdup_printf("%s.post_attention_layernorm", pre);
    linear(a, q, D, D, FALSE);
    linear(a, k, KV, D, FALSE);
    linear(a, v, KV, D, p->attn_bias);
    linear(a, o, D, D, p->attn_bias);
    if (p->attn_bias) {
      /* q/k biases about as large as q/k themselves: at the linear-default size they move the
       * logits by well under the fixtures' 2% tolerance, so a dropped one would pass */
      add(a, INIT_UNIFORM, 1.0f, 1, SHAPE(D), "%s.bias", q);
      add(a, INIT_UNIFORM, 1.0f, 1, SHAPE(KV), "%s.bias", k);
    }
    linear(a, g, I, D, FALSE);
    linear(a, u, I, D, FALSE);
    linear(a, d, D, I, FALSE);
    norm(a, n1, D, FALSE);
    norm(a, n2, D, FALSE);
    g_free(q), g_free(k), g_free(v), g_free(o), g_free(g), g_free(u), g_free(d), g_free(n1), g_free(n2);
  }
  norm(a, "language_model.model.norm", D, FALSE);
  linear(a, "language_model.lm_head", V, D, FALSE);

  /* SigLIP tower (timm VisionTransformer), including the attention-pool head the file carries. */
  const int64_t Wd = p->width, M = (int64_t)(p->width * p->mlp_ratio), P = p->patch;
  /* a stride-P conv over an image that P does not divide drops the last pixels: the grid rounds down */
  const int64_t N = (int64_t)(p->image / p->patch) * (p->image / p->patch);
  const char *vt = "vision_und_enc_model.vision_tower";
  add(a, INIT_UNIFORM, fan_scale(4, SHAPE(Wd, 3, P, P)), 4, SHAPE(Wd, 3, P, P), "%s.patch_embed.proj.weight", vt);
  add(a, INIT_UNIFORM, 0.02f, 1, SHAPE(Wd), "%s.patch_embed.proj.bias", vt);
  add(a, INIT_UNIFORM, 0.04f, 3, SHAPE(1, N, Wd), "%s.pos_embed", vt);
  for (int b = 0; b < p->blocks; b++) {
    char *pre = g_strdup_printf("%s.blocks.%d", vt, b);
    char *s;
    s = g_strdup_printf("%s.norm1", pre), norm(a, s, Wd, TRUE), g_free(s);
    s = g_strdup_printf("%s.attn.qkv", pre), linear(a, s, 3 * Wd, Wd, TRUE), g_free(s);
    s = g_strdup_printf("%s.attn.proj", pre), linear(a, s, Wd, Wd, TRUE), g_free(s);
    s = g_strdup_printf("%s.norm2", pre), norm(a, s, Wd, TRUE), g_free(s);
    s = g_strdup_printf("%s.mlp.fc1", pre), linear(a, s, M, Wd, TRUE), g_free(s);
    s = g_strdup_printf("%s.mlp.fc2", pre), linear(a, s, Wd, M, TRUE), g_free(s);
    g_free(pre);
  }
  norm(a, "vision_und_enc_model.vision_tower.norm", Wd, TRUE);
  add(a, INIT_UNIFORM, 0.04f, 3, SHAPE(1, 1, Wd), "%s.attn_pool.latent", vt);
  linear(a, "vision_und_enc_model.vision_tower.attn_pool.q", Wd, Wd, TRUE);
  linear(a, "vision_und_enc_model.vision_tower.attn_pool.kv", 2 * Wd, Wd, TRUE);
  linear(a, "vision_und_enc_model.vision_tower.attn_pool.proj", Wd, Wd, TRUE);
  norm(a, "vision_und_enc_model.vision_tower.attn_pool.norm", Wd, TRUE);
  linear(a, "vision_und_enc_model.vision_tower.attn_pool.mlp.fc1", M, Wd, TRUE);
  linear(a, "vision_und_enc_model.vision_tower.attn_pool.mlp.fc2", Wd, M, TRUE);
  linear(a, "vision_und_enc_aligner", D, Wd, TRUE);
  add(a, INIT_UNIFORM, 0.1f, 2, SHAPE(1, D), "beg_of_und_embed");

  /* ShallowUViT encoder: patchify conv of stride 2^upsamples (2x2 stride 2 unless the preset says
   * otherwise; it keeps its bias whatever use_bias says), 2 ConvNeXt blocks, timestep MLP. */
  const int64_t C = p->C, C2 = 2 * p->C, K = p->enc_kernel ? p->enc_kernel : 2;
  const gboolean enc_bias = !p->enc_no_bias;
  linear(a, "vision_gen_enc_model.time_embed.linear_1", D, C, enc_bias);
  linear(a, "vision_gen_enc_model.time_embed.linear_2", D, D, enc_bias);
  add(a, INIT_UNIFORM, fan_scale(4, SHAPE(C, 4, K, K)), 4, SHAPE(C, 4, K, K), "vision_gen_enc_model.in_conv.weight");
  add(a, INIT_UNIFORM, 0.25f, 1, SHAPE(C), "vision_gen_enc_model.in_conv.bias");
  for (int r = 0; r < 2; r++) {
    char *s = g_strdup_printf("vision_gen_enc_model.mid_block.res_blocks.%d", r);
    convnext(a, s, C, D, enc_bias);
    g_free(s);
  }
  linear(a, "vision_gen_enc_aligner", D, C, TRUE);
  /* Decoder: RMSNorm on the aligned LLM features, concat with the encoder skip (2C), 2 blocks
   * (none with use_mid_block false), then per out_conv RMSNorm + 1x1 conv to 2x2 sub-pixels: the
   * first takes the 2C concat, later ones C; the last gives the 4 latent channels, others C. */
  norm(a, "vision_gen_dec_model.input_norm", C, FALSE);
  for (int r = 0; r < (p->dec_no_mid ? 0 : 2); r++) {
    char *s = g_strdup_printf("vision_gen_dec_model.mid_block.res_blocks.%d", r);
    convnext(a, s, C2, D, TRUE);
    g_free(s);
  }
  const int ups = p->dec_upsamples ? p->dec_upsamples : 1;
  for (int u = 0; u < ups; u++) {
    const int64_t cin = u == 0 ? C2 : C, cout = 4 * (u + 1 == ups ? 4 : C);
    add(a, INIT_ONE, 0.05f, 1, SHAPE(cin), "vision_gen_dec_model.out_convs.%d.norm.weight", u);
    add(a, INIT_UNIFORM, fan_scale(4, SHAPE(cout, cin, 1, 1)), 4, SHAPE(cout, cin, 1, 1),
        "vision_gen_dec_model.out_convs.%d.unpatch_conv.weight", u);
    add(a, INIT_UNIFORM, 0.02f, 1, SHAPE(cout), "vision_gen_dec_model.out_convs.%d.unpatch_conv.bias", u);
  }
  norm(a, "vision_gen_dec_aligner_norm", D, FALSE);
  linear(a, "vision_gen_dec_aligner", C, D, TRUE);
}

static void conv(GArray *a, const char *prefix, int64_t out, int64_t in, int64_t k) {
  float s = fan_scale(4, SHAPE(out, in, k, k));
  add(a, INIT_UNIFORM, s, 4, SHAPE(out, in, k, k), "%s.weight", prefix);
  add(a, INIT_UNIFORM, s, 1, SHAPE(out), "%s.bias", prefix);
}

static void resnet(GArray *a, const char *prefix, int64_t in, int64_t out) {
  char *s;
  s = g_strdup_printf("%s.norm1", prefix), norm(a, s, in, TRUE), g_free(s);
  s = g_strdup_printf("%s.conv1", prefix), conv(a, s, out, in, 3), g_free(s);
  s = g_strdup_printf("%s.norm2", prefix), norm(a, s, out, TRUE), g_free(s);
  s = g_strdup_printf("%s.conv2", prefix), conv(a, s, out, out, 3), g_free(s);
  if (in != out) s = g_strdup_printf("%s.conv_shortcut", prefix), conv(a, s, out, in, 1), g_free(s);
}

/* diffusers AutoencoderKL decoder side (decoder.* + post_quant_conv.*), current attention names.
 * plain = without post_quant_conv and the mid-block attention (use_post_quant_conv: false,
 * mid_block_add_attention: false); every other tensor is the same as in the full form. */
static void vae_tensors(GArray *a, const Preset *p, gboolean plain) {
  const int n = 4;
  const int64_t top = p->vae_boc[n - 1];
  if (!plain) conv(a, "post_quant_conv", 4, 4, 1);
  conv(a, "decoder.conv_in", top, 4, 3);
  resnet(a, "decoder.mid_block.resnets.0", top, top);
  if (!plain) {
    norm(a, "decoder.mid_block.attentions.0.group_norm", top, TRUE);
    linear(a, "decoder.mid_block.attentions.0.to_q", top, top, TRUE);
    linear(a, "decoder.mid_block.attentions.0.to_k", top, top, TRUE);
    linear(a, "decoder.mid_block.attentions.0.to_v", top, top, TRUE);
    linear(a, "decoder.mid_block.attentions.0.to_out.0", top, top, TRUE);
  }
  resnet(a, "decoder.mid_block.resnets.1", top, top);
  int64_t prev = top;
  for (int i = 0; i < n; i++) {
    int64_t out = p->vae_boc[n - 1 - i];
    for (int j = 0; j <= p->vae_lpb; j++) {
      char *s = g_strdup_printf("decoder.up_blocks.%d.resnets.%d", i, j);
      resnet(a, s, j == 0 ? prev : out, out);
      g_free(s);
    }
    if (i != n - 1) {
      char *s = g_strdup_printf("decoder.up_blocks.%d.upsamplers.0.conv", i);
      conv(a, s, out, out, 3);
      g_free(s);
    }
    prev = out;
  }
  norm(a, "decoder.conv_norm_out", p->vae_boc[0], TRUE);
  conv(a, "decoder.conv_out", 3, p->vae_boc[0], 3);
}

/* ---------------------------------------------------------------------------------------------
 * Values */

static inline uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;  /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

static inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

/* Values are bf16-representable in both files so that a bf16 upload of the F32 VAE is exact. */
static inline uint16_t value_bf16(const Spec *s, uint64_t *state) {
  float u = (float)(splitmix64(state) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
  float v = u * s->scale + (s->kind == INIT_ONE ? 1.0f : 0.0f);
  return f32_to_bf16(v);
}

/* ---------------------------------------------------------------------------------------------
 * safetensors writer */

static int spec_cmp(gconstpointer a, gconstpointer b) { return strcmp(((const Spec *)a)->name, ((const Spec *)b)->name); }

static gboolean write_safetensors(const char *path, GArray *specs, gboolean f32, uint64_t seed, GError **error) {
  g_array_sort(specs, spec_cmp);
  const unsigned es = f32 ? 4 : 2;
  uint64_t off = 0;
  GString *h = g_string_new("{\"__metadata__\":{\"format\":\"pt\"}");
  for (guint i = 0; i < specs->len; i++) {
    Spec *s = &g_array_index(specs, Spec, i);
    s->offset = off;
    g_string_append_printf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", s->name, f32 ? "F32" : "BF16");
    for (int d = 0; d < s->ndim; d++) g_string_append_printf(h, "%s%" G_GINT64_FORMAT, d ? "," : "", s->shape[d]);
    g_string_append_printf(h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", off,
                           off + s->n * es);
    off += s->n * es;
  }
  g_string_append_c(h, '}');
  while (h->len % 8) g_string_append_c(h, ' ');  /* keeps the data section 8-byte aligned */

  char *tmp = g_strconcat(path, ".part", NULL);
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", tmp, g_strerror(e));
    g_free(tmp);
    g_string_free(h, TRUE);
    return FALSE;
  }
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h->len >> (8 * i));
  gboolean ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(h->str, 1, h->len, fp) == h->len;
  enum { CHUNK = 1 << 20 };
  void *buf = g_malloc((size_t)CHUNK * 4);
  for (guint i = 0; ok && i < specs->len; i++) {
    const Spec *s = &g_array_index(specs, Spec, i);
    uint64_t state = seed * 0x9e3779b97f4a7c15ull ^ name_hash(s->name);
    for (uint64_t done = 0; ok && done < s->n;) {
      size_t m = (size_t)MIN((uint64_t)CHUNK, s->n - done);
      if (f32) {
        float *o = buf;
        for (size_t j = 0; j < m; j++) o[j] = bf16_to_f32(value_bf16(s, &state));
      } else {
        uint16_t *o = buf;
        for (size_t j = 0; j < m; j++) o[j] = value_bf16(s, &state);
      }
      ok = fwrite(buf, es, m, fp) == m;
      done += m;
    }
  }
  g_free(buf);
  int e = errno;
  if (fclose(fp) != 0 && ok) {
    ok = FALSE;
    e = errno;
  }
  if (ok && g_rename(tmp, path) != 0) {
    ok = FALSE;
    e = errno;
  }
  if (!ok) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: write failed: %s", path, g_strerror(e));
    g_unlink(tmp);
  }
  g_free(tmp);
  g_string_free(h, TRUE);
  return ok;
}

static uint64_t total_params(GArray *specs) {
  uint64_t t = 0;
  for (guint i = 0; i < specs->len; i++) t += g_array_index(specs, Spec, i).n;
  return t;
}

/* ---------------------------------------------------------------------------------------------
 * JSON files */

static gboolean write_json(const char *dir, const char *name, JsonBuilder *b, GError **error) {
  JsonNode *root = json_builder_get_root(b);
  JsonGenerator *g = json_generator_new();
  json_generator_set_root(g, root);
  json_generator_set_pretty(g, TRUE);
  json_generator_set_indent(g, 2);
  char *path = g_build_filename(dir, name, NULL);
  gsize len;
  char *text = json_generator_to_data(g, &len);
  char *withnl = g_strconcat(text, "\n", NULL);
  gboolean ok = g_file_set_contents(path, withnl, -1, error);
  g_free(withnl);
  g_free(text);
  g_free(path);
  g_object_unref(g);
  json_node_unref(root);
  g_object_unref(b);
  return ok;
}

static void kv_int(JsonBuilder *b, const char *k, gint64 v) {
  json_builder_set_member_name(b, k);
  json_builder_add_int_value(b, v);
}
static void kv_double(JsonBuilder *b, const char *k, double v) {
  json_builder_set_member_name(b, k);
  json_builder_add_double_value(b, v);
}
static void kv_str(JsonBuilder *b, const char *k, const char *v) {
  json_builder_set_member_name(b, k);
  json_builder_add_string_value(b, v);
}
static void kv_bool(JsonBuilder *b, const char *k, gboolean v) {
  json_builder_set_member_name(b, k);
  json_builder_add_boolean_value(b, v);
}
static void kv_null(JsonBuilder *b, const char *k) {
  json_builder_set_member_name(b, k);
  json_builder_add_null_value(b);
}
static void kv_ints(JsonBuilder *b, const char *k, const int *v, int n) {
  json_builder_set_member_name(b, k);
  json_builder_begin_array(b);
  for (int i = 0; i < n; i++) json_builder_add_int_value(b, v[i]);
  json_builder_end_array(b);
}
static void kv_doubles(JsonBuilder *b, const char *k, const double *v, int n) {
  json_builder_set_member_name(b, k);
  json_builder_begin_array(b);
  for (int i = 0; i < n; i++) json_builder_add_double_value(b, v[i]);
  json_builder_end_array(b);
}

static gboolean write_model_config(const char *dir, const Preset *p, GError **error) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "architectures");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, "MultiModalityCausalLM");
  json_builder_end_array(b);
  json_builder_set_member_name(b, "language_config");
  json_builder_begin_object(b);
  if (p->attn_bias) kv_bool(b, "attention_bias", TRUE);
  kv_int(b, "hidden_size", p->D);
  kv_int(b, "intermediate_size", p->inter);
  kv_int(b, "max_position_embeddings", p->max_pos);
  kv_str(b, "model_type", "llama");
  kv_int(b, "num_attention_heads", p->heads);
  kv_int(b, "num_hidden_layers", p->layers);
  kv_int(b, "num_key_value_heads", p->kv_heads);
  kv_str(b, "torch_dtype", "bfloat16");
  kv_int(b, "vocab_size", p->vocab);
  json_builder_end_object(b);
  kv_str(b, "model_type", "multi_modality");
  kv_str(b, "torch_dtype", "bfloat16");
  kv_str(b, "transformers_version", "4.38.2");
  const int boc[] = {p->C};

  json_builder_set_member_name(b, "vision_gen_dec_config");
  json_builder_begin_object(b);
  kv_str(b, "cls", "ShallowUViTDecoder");
  kv_str(b, "model_type", "vision_gen_dec");
  json_builder_set_member_name(b, "params");
  json_builder_begin_object(b);
  kv_ints(b, "block_out_channels", boc, 1);
  kv_bool(b, "elementwise_affine", TRUE);
  kv_int(b, "hidden_size", p->D);
  kv_int(b, "in_channels", p->C);
  kv_int(b, "layers_in_middle", 2);
  kv_int(b, "out_channels", 4);
  kv_int(b, "upsamples", p->dec_upsamples ? p->dec_upsamples : 1);
  kv_bool(b, "use_bias", TRUE);
  kv_bool(b, "use_mid_block", !p->dec_no_mid);
  json_builder_end_object(b);
  json_builder_end_object(b);

  json_builder_set_member_name(b, "vision_gen_enc_config");
  json_builder_begin_object(b);
  kv_str(b, "cls", "ShallowUViTEncoder");
  kv_str(b, "model_type", "vision_gen_enc");
  json_builder_set_member_name(b, "params");
  json_builder_begin_object(b);
  kv_ints(b, "block_out_channels", boc, 1);
  kv_bool(b, "elementwise_affine", TRUE);
  kv_int(b, "hidden_size", p->D);
  kv_int(b, "input_channels", 4);
  kv_int(b, "kernel_size", p->enc_kernel ? p->enc_kernel : 2);
  kv_int(b, "layers_in_middle", 2);
  if (p->enc_kernel) kv_int(b, "padding", p->enc_padding);
  kv_int(b, "stride", 1 << (p->dec_upsamples ? p->dec_upsamples : 1));
  kv_bool(b, "use_bias", !p->enc_no_bias);
  kv_bool(b, "use_mid_block", TRUE);
  json_builder_end_object(b);
  json_builder_end_object(b);

  json_builder_set_member_name(b, "vision_und_enc_config");
  json_builder_begin_object(b);
  kv_str(b, "cls", "CLIPVisionTower");
  kv_str(b, "model_type", "vision_und_enc");
  json_builder_set_member_name(b, "params");
  json_builder_begin_object(b);
  kv_int(b, "image_size", p->image);
  kv_str(b, "model_name", p->siglip_name);
  kv_str(b, "select_feature", "same");
  kv_int(b, "select_layer", -1);
  if (p->explicit_geom) {
    kv_int(b, "width", p->width);
    kv_int(b, "layers", p->blocks);
    kv_int(b, "heads", p->vheads);
    kv_int(b, "patch_size", p->patch);
    kv_int(b, "mlp_ratio", (gint64)p->mlp_ratio);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return write_json(dir, "config.json", b, error);
}

static gboolean write_processor_files(const char *dir, const Preset *p, GError **error) {
  const double half[] = {0.5, 0.5, 0.5};
  const int bg[] = {127, 127, 127};
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  kv_ints(b, "background_color", bg, 3);
  kv_bool(b, "do_normalize", TRUE);
  kv_doubles(b, "image_mean", half, 3);
  kv_str(b, "image_processor_type", "VLMImageProcessor");
  kv_int(b, "image_size", p->image);
  kv_doubles(b, "image_std", half, 3);
  kv_int(b, "min_size", 14);
  kv_str(b, "processor_class", "VLChatProcessor");
  kv_double(b, "rescale_factor", 1.0 / 255.0);
  json_builder_end_object(b);
  if (!write_json(dir, "preprocessor_config.json", b, error)) return FALSE;

  int side = p->image / p->patch;
  b = json_builder_new();
  json_builder_begin_object(b);
  kv_bool(b, "add_special_token", FALSE);
  kv_int(b, "ignore_id", -100);
  kv_str(b, "image_end_tag", "<image_end>");
  kv_str(b, "image_gen_tag", GEN_TOKEN);
  kv_str(b, "image_start_tag", "<image_beg>");
  kv_str(b, "image_tag", "<image_placeholder>");
  kv_bool(b, "mask_prompt", TRUE);
  kv_int(b, "num_image_tokens", side * side);
  kv_str(b, "processor_class", "VLChatProcessor");
  kv_str(b, "sft_format", "deepseek_old");
  json_builder_end_object(b);
  if (!write_json(dir, "processor_config.json", b, error)) return FALSE;

  b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "additional_special_tokens");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  kv_str(b, "content", GEN_TOKEN);
  kv_bool(b, "lstrip", FALSE);
  kv_bool(b, "normalized", FALSE);
  kv_bool(b, "rstrip", FALSE);
  kv_bool(b, "single_word", FALSE);
  json_builder_end_object(b);
  json_builder_end_array(b);
  const char *keys[] = {"bos_token", "eos_token"}, *vals[] = {BOS_TOKEN, EOS_TOKEN};
  for (int i = 0; i < 2; i++) {
    json_builder_set_member_name(b, keys[i]);
    json_builder_begin_object(b);
    kv_str(b, "content", vals[i]);
    kv_bool(b, "lstrip", FALSE);
    kv_bool(b, "normalized", TRUE);
    kv_bool(b, "rstrip", FALSE);
    kv_bool(b, "single_word", FALSE);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  if (!write_json(dir, "special_tokens_map.json", b, error)) return FALSE;

  b = json_builder_new();
  json_builder_begin_object(b);
  kv_bool(b, "add_bos_token", TRUE);
  kv_bool(b, "add_eos_token", FALSE);
  json_builder_set_member_name(b, "additional_special_tokens");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, GEN_TOKEN);
  json_builder_end_array(b);
  kv_str(b, "bos_token", BOS_TOKEN);
  kv_bool(b, "clean_up_tokenization_spaces", FALSE);
  kv_str(b, "eos_token", EOS_TOKEN);
  kv_bool(b, "legacy", TRUE);
  kv_int(b, "model_max_length", 16384);
  kv_null(b, "pad_token");
  kv_str(b, "tokenizer_class", "LlamaTokenizer");
  kv_null(b, "unk_token");
  kv_bool(b, "use_default_system_prompt", FALSE);
  json_builder_end_object(b);
  return write_json(dir, "tokenizer_config.json", b, error);
}

/* GPT-2 byte-to-unicode table: printable Latin-1 bytes map to themselves, the rest to U+0100.. */
static gunichar byte_char(int byte) {
  if ((byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF)) return byte;
  int n = 0;
  for (int b = 0; b < byte; b++)
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) n++;
  return 256 + n;
}

static void added_token(JsonBuilder *b, int id, const char *content, gboolean normalized) {
  json_builder_begin_object(b);
  kv_int(b, "id", id);
  kv_str(b, "content", content);
  kv_bool(b, "single_word", FALSE);
  kv_bool(b, "lstrip", FALSE);
  kv_bool(b, "rstrip", FALSE);
  kv_bool(b, "normalized", normalized);
  kv_bool(b, "special", TRUE);
  json_builder_end_object(b);
}

/* Fallback tokenizer: one token per byte (256 ids, no merges) + BOS 256, EOS 257, generation tag
 * 258, in the layout of the DeepSeek-LLM tokenizer.json (same decoder / post-processor types). */
static gboolean write_byte_tokenizer(const char *dir, GError **error) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  kv_str(b, "version", "1.0");
  kv_null(b, "truncation");
  kv_null(b, "padding");
  json_builder_set_member_name(b, "added_tokens");
  json_builder_begin_array(b);
  added_token(b, 256, BOS_TOKEN, TRUE);
  added_token(b, 257, EOS_TOKEN, TRUE);
  added_token(b, 258, GEN_TOKEN, FALSE);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "normalizer");
  json_builder_begin_object(b);
  kv_str(b, "type", "Sequence");
  json_builder_set_member_name(b, "normalizers");
  json_builder_begin_array(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "pre_tokenizer");
  json_builder_begin_object(b);
  kv_str(b, "type", "Sequence");
  json_builder_set_member_name(b, "pretokenizers");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  kv_str(b, "type", "ByteLevel");
  kv_bool(b, "add_prefix_space", FALSE);
  kv_bool(b, "trim_offsets", TRUE);
  kv_bool(b, "use_regex", FALSE);
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "post_processor");
  json_builder_begin_object(b);
  kv_str(b, "type", "TemplateProcessing");
  const char *seqs[] = {"single", "pair"};
  for (int k = 0; k < 2; k++) {
    json_builder_set_member_name(b, seqs[k]);
    json_builder_begin_array(b);
    for (int part = 0; part <= k; part++) {
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "SpecialToken");
      json_builder_begin_object(b);
      kv_str(b, "id", BOS_TOKEN);
      kv_int(b, "type_id", part);
      json_builder_end_object(b);
      json_builder_end_object(b);
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "Sequence");
      json_builder_begin_object(b);
      kv_str(b, "id", part ? "B" : "A");
      kv_int(b, "type_id", part);
      json_builder_end_object(b);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
  }
  json_builder_set_member_name(b, "special_tokens");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, BOS_TOKEN);
  json_builder_begin_object(b);
  kv_str(b, "id", BOS_TOKEN);
  json_builder_set_member_name(b, "ids");
  json_builder_begin_array(b);
  json_builder_add_int_value(b, 256);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "tokens");
  json_builder_begin_array(b);
  json_builder_add_string_value(b, BOS_TOKEN);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "decoder");
  json_builder_begin_object(b);
  kv_str(b, "type", "ByteLevel");
  kv_bool(b, "add_prefix_space", TRUE);
  kv_bool(b, "trim_offsets", TRUE);
  kv_bool(b, "use_regex", TRUE);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "model");
  json_builder_begin_object(b);
  kv_str(b, "type", "BPE");
  kv_null(b, "dropout");
  kv_null(b, "unk_token");
  kv_null(b, "continuing_subword_prefix");
  kv_null(b, "end_of_word_suffix");
  kv_bool(b, "fuse_unk", FALSE);
  kv_bool(b, "byte_fallback", FALSE);
  json_builder_set_member_name(b, "vocab");
  json_builder_begin_object(b);
  for (int i = 0; i < 256; i++) {
    char s[8];
    s[g_unichar_to_utf8(byte_char(i), s)] = 0;
    kv_int(b, s, i);
  }
  json_builder_end_object(b);
  json_builder_set_member_name(b, "merges");
  json_builder_begin_array(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return write_json(dir, "tokenizer.json", b, error);
}

/* Copies a tokenizer.json after checking that its ids (plus the image tags the processor adds)
 * fit in the preset's vocabulary. */
static gboolean copy_tokenizer(const char *src, const char *dir, int vocab, GError **error) {
  char *file = g_file_test(src, G_FILE_TEST_IS_DIR) ? g_build_filename(src, "tokenizer.json", NULL) : g_strdup(src);
  char *text = NULL;
  gsize len = 0;
  gboolean ok = g_file_get_contents(file, &text, &len, error);
  JsonParser *jp = NULL;
  if (ok) {
    jp = json_parser_new();
    ok = json_parser_load_from_data(jp, text, (gssize)len, error);
  }
  if (ok) {
    JsonNode *root = json_parser_get_root(jp);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
    JsonObject *model = o && json_object_has_member(o, "model") ? json_object_get_object_member(o, "model") : NULL;
    JsonObject *v = model && json_object_has_member(model, "vocab") ? json_object_get_object_member(model, "vocab") : NULL;
    if (!v) {
      g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a BPE tokenizer.json (no model.vocab)", file);
      ok = FALSE;
    } else {
      gint64 max_id = -1;
      GList *vals = json_object_get_values(v);
      for (GList *l = vals; l; l = l->next) max_id = MAX(max_id, json_node_get_int(l->data));
      g_list_free(vals);
      JsonArray *added = json_object_has_member(o, "added_tokens") ? json_object_get_array_member(o, "added_tokens") : NULL;
      for (guint i = 0; added && i < json_array_get_length(added); i++) {
        JsonObject *t = json_array_get_object_element(added, i);
        if (t && json_object_has_member(t, "id")) max_id = MAX(max_id, json_object_get_int_member(t, "id"));
      }
      if (max_id + 1 + RUNTIME_TAGS > vocab) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: ids up to %" G_GINT64_FORMAT " (+%d image tags) do not fit this preset's vocab_size %d; "
                    "use the 'full' preset or omit --tokenizer (a byte-level tokenizer is written)",
                    file, max_id, RUNTIME_TAGS, vocab);
        ok = FALSE;
      }
    }
  }
  if (ok) {
    char *dst = g_build_filename(dir, "tokenizer.json", NULL);
    ok = g_file_set_contents(dst, text, (gssize)len, error);
    g_free(dst);
  }
  if (jp) g_object_unref(jp);
  g_free(text);
  g_free(file);
  return ok;
}

/* plain: also says so in the config (the parts vae_tensors leaves out), and gives a shift_factor,
 * which JanusFlow's decode (z / scaling_factor only) must ignore. */
static gboolean write_vae_config(const char *dir, const Preset *p, gboolean plain, GError **error) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  kv_str(b, "_class_name", "AutoencoderKL");
  kv_str(b, "_diffusers_version", "0.18.0.dev0");
  kv_str(b, "act_fn", "silu");
  kv_ints(b, "block_out_channels", p->vae_boc, 4);
  json_builder_set_member_name(b, "down_block_types");
  json_builder_begin_array(b);
  for (int i = 0; i < 4; i++) json_builder_add_string_value(b, "DownEncoderBlock2D");
  json_builder_end_array(b);
  kv_int(b, "in_channels", 3);
  kv_int(b, "latent_channels", 4);
  kv_int(b, "layers_per_block", p->vae_lpb);
  if (plain) kv_bool(b, "mid_block_add_attention", FALSE);
  kv_int(b, "norm_num_groups", p->vae_groups);
  kv_int(b, "out_channels", 3);
  kv_int(b, "sample_size", p->latent_hw * 8);
  kv_double(b, "scaling_factor", 0.13025);
  if (plain) kv_double(b, "shift_factor", 0.1159);
  json_builder_set_member_name(b, "up_block_types");
  json_builder_begin_array(b);
  for (int i = 0; i < 4; i++) json_builder_add_string_value(b, "UpDecoderBlock2D");
  json_builder_end_array(b);
  if (plain) kv_bool(b, "use_post_quant_conv", FALSE);
  json_builder_end_object(b);
  return write_json(dir, "config.json", b, error);
}

/* ---------------------------------------------------------------------------------------------
 * main */

/* A VAE folder; plain = without post_quant_conv and the mid-block attention (see vae_tensors). */
static gboolean write_vae(const char *dir, const Preset *p, uint64_t seed, gboolean plain, GError **error) {
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", dir, g_strerror(e));
    return FALSE;
  }
  if (!write_vae_config(dir, p, plain, error)) return FALSE;
  GArray *specs = g_array_new(FALSE, TRUE, sizeof(Spec));
  g_array_set_clear_func(specs, spec_free);
  vae_tensors(specs, p, plain);
  uint64_t total = total_params(specs);
  gboolean ok = TRUE;
  if (!plain && p->expect_vae && total != p->expect_vae) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                "internal error: VAE has %" G_GUINT64_FORMAT " parameters, expected %" G_GUINT64_FORMAT, total,
                p->expect_vae);
    ok = FALSE;
  }
  if (ok) {
    char *st = g_build_filename(dir, "diffusion_pytorch_model.safetensors", NULL);
    ok = write_safetensors(st, specs, TRUE, seed, error);
    g_print("%s: %u tensors, %" G_GUINT64_FORMAT " parameters (F32, decoder only%s)\n", st, specs->len, total,
            plain ? ", no post_quant_conv / mid-block attention" : "");
    g_free(st);
  }
  g_array_unref(specs);
  return ok;
}

static int fail_msg(GError *e) {
  g_printerr("jf-make-checkpoint: %s\n", e->message);
  g_error_free(e);
  return 1;
}

int main(int argc, char **argv) {
  g_autofree char *preset_name = NULL, *out = NULL, *vae_out = NULL, *vae_plain_out = NULL, *tokenizer = NULL;
  gint64 seed = 0;
  GOptionEntry entries[] = {
    {"preset", 0, 0, G_OPTION_ARG_STRING, &preset_name, "tiny | small | odd | heads | full", "NAME"},
    {"out", 0, 0, G_OPTION_ARG_FILENAME, &out, "model folder to write (created if needed)", "DIR"},
    {"vae-out", 0, 0, G_OPTION_ARG_FILENAME, &vae_out, "also write a VAE folder here", "DIR"},
    {"vae-plain-out", 0, 0, G_OPTION_ARG_FILENAME, &vae_plain_out,
     "also write a VAE folder without post_quant_conv and the mid-block attention here", "DIR"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "seed of the random weights (default 0)", "N"},
    {"tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &tokenizer,
     "tokenizer.json (or a folder holding one) to copy; default: a byte-level tokenizer", "FILE"},
    {NULL},
  };
  GOptionContext *ctx = g_option_context_new("- write a random-weight JanusFlow checkpoint");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_set_description(
      ctx,
      "Writes DIR/config.json, model.safetensors (BF16, the official tensor names and shapes, including\n"
      "the unused SigLIP attn_pool.*), preprocessor_config.json, processor_config.json,\n"
      "special_tokens_map.json, tokenizer_config.json and tokenizer.json.\n"
      "With --vae-out, also a diffusers AutoencoderKL folder: config.json and\n"
      "diffusion_pytorch_model.safetensors (F32). Only the decoder side is written (decoder.* and\n"
      "post_quant_conv.*); the encoder tensors (encoder.*, quant_conv.*) are omitted, since JanusFlow\n"
      "only decodes. With --vae-plain-out, a VAE folder with the same weights less post_quant_conv and\n"
      "the mid-block attention (use_post_quant_conv / mid_block_add_attention false, a shift_factor).\n\n"
      "Presets: tiny = the tiny test fixture's dimensions (0.4 M + 0.6 M parameters);\n"
      "small = LLM 1024/8 layers, SigLIP 512/8 blocks at 384 px, UViT 384 channels, VAE [64,128,256,256];\n"
      "odd = sizes that are no tile's multiple (LLM 88/3 layers/2 heads, MLP 236, SigLIP 36 wide at 48 px,\n"
      "9 image tokens, VAE [16,24,40,40] with 2 resnets per block): tests/data/odd;\n"
      "heads = awkward attention shapes (LLM 60 wide, 6 heads of 10 on 2 K/V heads with attention biases,\n"
      "SigLIP 30 wide with 5 heads of 6 at 50 px (patch 16: a 3x3 grid), UViT 23 channels with a 6x6\n"
      "stride-4 padding-1 patchify conv and 2 decoder out_convs, no encoder biases and no decoder\n"
      "blocks, a 12x12 latent, VAE [8,16,16,24]):\n"
      "tests/data/heads;\n"
      "full = the exact JanusFlow-1.3B shapes (2,046,367,504 parameters, 4.09 GB) + SDXL-VAE decoder.\n"
      "Weights are deterministic for a seed and exactly representable in bf16.");
  GError *e = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &e)) {
    g_printerr("jf-make-checkpoint: %s\n", e->message);
    g_error_free(e);
    g_option_context_free(ctx);
    return 2;
  }
  const Preset *p = NULL;
  for (size_t i = 0; preset_name && i < G_N_ELEMENTS(presets); i++)
    if (strcmp(preset_name, presets[i].name) == 0) p = &presets[i];
  if (!p || !out || argc > 1) {
    char *help = g_option_context_get_help(ctx, TRUE, NULL);
    g_printerr("%s", help);
    g_free(help);
    g_option_context_free(ctx);
    return 2;
  }
  g_option_context_free(ctx);

  if (g_mkdir_with_parents(out, 0755) != 0) {
    g_printerr("jf-make-checkpoint: cannot create %s: %s\n", out, g_strerror(errno));
    return 1;
  }
  if (!write_model_config(out, p, &e) || !write_processor_files(out, p, &e)) return fail_msg(e);
  if (tokenizer ? !copy_tokenizer(tokenizer, out, p->vocab, &e) : !write_byte_tokenizer(out, &e)) return fail_msg(e);

  GArray *specs = g_array_new(FALSE, TRUE, sizeof(Spec));
  g_array_set_clear_func(specs, spec_free);
  janusflow_tensors(specs, p);
  uint64_t total = total_params(specs);
  if (p->expect_model && total != p->expect_model) {
    g_printerr("jf-make-checkpoint: internal error: %" G_GUINT64_FORMAT " parameters, expected %" G_GUINT64_FORMAT "\n",
               total, p->expect_model);
    return 1;
  }
  char *st = g_build_filename(out, "model.safetensors", NULL);
  gboolean ok = write_safetensors(st, specs, FALSE, (uint64_t)seed, &e);
  g_print("%s: %u tensors, %" G_GUINT64_FORMAT " parameters (BF16)\n", st, specs->len, total);
  g_free(st);
  g_array_unref(specs);
  if (!ok) return fail_msg(e);

  if (vae_out && !write_vae(vae_out, p, (uint64_t)seed + 1, FALSE, &e)) return fail_msg(e);
  if (vae_plain_out && !write_vae(vae_plain_out, p, (uint64_t)seed + 1, TRUE, &e)) return fail_msg(e);
  return 0;
}
