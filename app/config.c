/* config: JSON files of a JanusFlow folder and of a diffusers AutoencoderKL folder.
 *
 * Defaults follow the classes that read these files in the official code: LlamaConfig (language),
 * CLIPVisionTower + siglip_vit presets (vision), ShallowUViTEncoder/Decoder constructor defaults,
 * VLMImageProcessor / VLChatProcessor, diffusers AutoencoderKL. A JSON null counts as absent, as
 * `dict.get(key, default)` sees it in those classes only for keys whose default is None; for the
 * rest a null is reported as a wrong type. Values the engine does not implement (rope scaling, a
 * class token, missing norms...) are refused here so that no later stage runs a different model. */
#include "config.h"
#include "json_guard.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <json-glib/json-glib.h>

#define CONFIG_MAX_FILE (16u * 1024 * 1024)
#define CONFIG_MAX_DEPTH 64
#define CONFIG_MAX_DIM (1 << 20)
#define CONFIG_MAX_LAYERS 1024

/* --------------------------------------------------------------------------------------------
 * Reading a JSON file */

/* Returns the parser holding the root object, or NULL: with *absent = TRUE (and no error) when the
 * file does not exist and absent_ok, otherwise with an error naming the file. */
static JsonParser *load_json(const char *path, gboolean absent_ok, gboolean *absent, GError **error) {
  if (absent) *absent = FALSE;
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    if (e == ENOENT && absent_ok) {
      *absent = TRUE;
      return NULL;
    }
    g_set_error(error, JF_LOAD_ERROR, e == ENOENT ? JF_LOAD_ERROR_MISSING : JF_LOAD_ERROR_IO, "%s: %s", path,
                e == ENOENT ? "not found" : g_strerror(e));
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: not a regular file", path);
    return NULL;
  }
  if ((guint64)st.st_size > CONFIG_MAX_FILE) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "%s: %" G_GUINT64_FORMAT " bytes is over the %u MiB bound",
                path, (guint64)st.st_size, CONFIG_MAX_FILE >> 20);
    return NULL;
  }
  char *text = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &text, &len, &e)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  if (len > CONFIG_MAX_FILE) {  /* grew after stat */
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "%s: over the %u MiB bound", path, CONFIG_MAX_FILE >> 20);
    g_free(text);
    return NULL;
  }
  if (!g_utf8_validate_len(text, len, NULL)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: not valid UTF-8 text", path);
    g_free(text);
    return NULL;
  }
  JfJsonTextCheck check = json_guard_check_text(text, len, CONFIG_MAX_DEPTH);
  if (check != JF_JSON_TEXT_OK) {
    char *why = json_guard_describe(check, CONFIG_MAX_DEPTH);
    g_set_error(error, JF_LOAD_ERROR, check == JF_JSON_TEXT_TOO_DEEP ? JF_LOAD_ERROR_LIMIT : JF_LOAD_ERROR_FORMAT,
                "%s: %s", path, why);
    g_free(why);
    g_free(text);
    return NULL;
  }
  JsonParser *p = json_parser_new_immutable();
  if (!json_parser_load_from_data(p, text, (gssize)len, &e)) {
    /* json-glib may quote a string cut in the middle of a UTF-8 sequence */
    char *why = g_utf8_make_valid(e->message, -1);
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: not valid JSON: %s", path, why);
    g_free(why);
    g_error_free(e);
    g_object_unref(p);
    g_free(text);
    return NULL;
  }
  g_free(text);
  JsonNode *root = json_parser_get_root(p);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: the top level is not a JSON object", path);
    g_object_unref(p);
    return NULL;
  }
  return p;
}

static JsonObject *root_object(JsonParser *p) { return json_node_get_object(json_parser_get_root(p)); }

/* --------------------------------------------------------------------------------------------
 * Typed getters. Each reports the first problem into c->error and makes later calls no-ops, so a
 * loader can read every key and check c->failed once. */

typedef struct {
  const char *file;  /* path used in messages */
  GError **error;
  gboolean failed;
} Ctx;

static void ctx_fail(Ctx *c, JfLoadError code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void ctx_fail(Ctx *c, JfLoadError code, const char *fmt, ...) {
  if (c->failed) return;
  c->failed = TRUE;
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(c->error, JF_LOAD_ERROR, code, "%s: %s", c->file, msg);
  g_free(msg);
}

/* The member, or NULL if absent or JSON null. `required` reports absence as an error. */
static JsonNode *member(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean required) {
  if (c->failed) return NULL;
  JsonNode *n = o ? json_object_get_member(o, key) : NULL;
  if (n && JSON_NODE_HOLDS_NULL(n)) n = NULL;
  if (!n && required) ctx_fail(c, JF_LOAD_ERROR_MISSING, "%s%s missing", prefix, key);
  return n;
}

static gboolean node_is_int(JsonNode *n) {
  return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

static gboolean node_is_number(JsonNode *n) {
  return JSON_NODE_HOLDS_VALUE(n) &&
         (json_node_get_value_type(n) == G_TYPE_INT64 || json_node_get_value_type(n) == G_TYPE_DOUBLE);
}

static double node_number(JsonNode *n) {
  return json_node_get_value_type(n) == G_TYPE_INT64 ? (double)json_node_get_int(n) : json_node_get_double(n);
}

static int get_int(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean required, int def, int lo,
                   int hi) {
  JsonNode *n = member(c, o, prefix, key, required);
  if (!n) return def;
  if (!node_is_int(n)) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be an integer", prefix, key);
    return def;
  }
  gint64 v = json_node_get_int(n);
  if (v < lo || v > hi) {
    ctx_fail(c, v > hi ? JF_LOAD_ERROR_LIMIT : JF_LOAD_ERROR_FORMAT, "%s%s = %" G_GINT64_FORMAT " is outside [%d, %d]",
             prefix, key, v, lo, hi);
    return def;
  }
  return (int)v;
}

static double get_double(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean required, double def,
                         double lo, double hi) {
  JsonNode *n = member(c, o, prefix, key, required);
  if (!n) return def;
  if (!node_is_number(n)) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be a number", prefix, key);
    return def;
  }
  double v = node_number(n);
  if (!(v >= lo && v <= hi)) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s = %g is outside [%g, %g]", prefix, key, v, lo, hi);
    return def;
  }
  return v;
}

static gboolean get_bool(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean def) {
  JsonNode *n = member(c, o, prefix, key, FALSE);
  if (!n) return def;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be true or false", prefix, key);
    return def;
  }
  return json_node_get_boolean(n);
}

/* Borrowed string, or def. */
static const char *get_string(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean required,
                              const char *def) {
  JsonNode *n = member(c, o, prefix, key, required);
  if (!n) return def;
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be a string", prefix, key);
    return def;
  }
  return json_node_get_string(n);
}

static JsonObject *get_object(Ctx *c, JsonObject *o, const char *prefix, const char *key, gboolean required) {
  JsonNode *n = member(c, o, prefix, key, required);
  if (!n) return NULL;
  if (!JSON_NODE_HOLDS_OBJECT(n)) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be an object", prefix, key);
    return NULL;
  }
  return json_node_get_object(n);
}

/* Exactly three numbers; returns FALSE (without error) if absent. */
static gboolean get_float3(Ctx *c, JsonObject *o, const char *prefix, const char *key, double out[3]) {
  JsonNode *n = member(c, o, prefix, key, FALSE);
  if (!n) return FALSE;
  JsonArray *a = JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
  if (!a || json_array_get_length(a) != 3) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be a list of 3 numbers", prefix, key);
    return FALSE;
  }
  for (guint i = 0; i < 3; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!node_is_number(e) || !isfinite(node_number(e))) {
      ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must be a list of 3 numbers", prefix, key);
      return FALSE;
    }
    out[i] = node_number(e);
  }
  return TRUE;
}

/* A list of 1..max positive integers; returns its length (0 if absent, with def copied). */
static int get_int_list(Ctx *c, JsonObject *o, const char *prefix, const char *key, int *out, int max,
                        const int *def, int n_def) {
  JsonNode *n = member(c, o, prefix, key, FALSE);
  if (!n) {
    memcpy(out, def, sizeof(int) * (size_t)n_def);
    return n_def;
  }
  JsonArray *a = JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
  guint len = a ? json_array_get_length(a) : 0;
  if (!a || len == 0 || len > (guint)max) {
    ctx_fail(c, a && len > (guint)max ? JF_LOAD_ERROR_LIMIT : JF_LOAD_ERROR_FORMAT,
             "%s%s must be a list of 1 to %d integers", prefix, key, max);
    return 0;
  }
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!node_is_int(e) || json_node_get_int(e) < 1 || json_node_get_int(e) > CONFIG_MAX_DIM) {
      ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s%s must hold integers in [1, %d]", prefix, key, CONFIG_MAX_DIM);
      return 0;
    }
    out[i] = (int)json_node_get_int(e);
  }
  return (int)len;
}

/* --------------------------------------------------------------------------------------------
 * config.json sections */

/* Section `name` of config.json (required), whose "cls" must name `cls_want`; *params: its
 * "params" object (NULL if absent). FALSE (error reported) if the section is missing. */
static gboolean open_section(Ctx *c, JsonObject *root, const char *name, const char *cls_want, JsonObject **params) {
  JsonObject *vc = get_object(c, root, "", name, TRUE);
  if (!vc) return FALSE;
  char *prefix = g_strconcat(name, ".", NULL);
  const char *cls = get_string(c, vc, prefix, "cls", TRUE, "");
  if (!c->failed && !strstr(cls, cls_want))
    ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "%scls is '%s', expected %s", prefix, cls, cls_want);
  *params = get_object(c, vc, prefix, "params", FALSE);
  g_free(prefix);
  return TRUE;
}

static void read_llm(Ctx *c, JsonObject *root, JfLlmConfig *l) {
  const char *P = "language_config.";
  JsonObject *o = get_object(c, root, "", "language_config", TRUE);
  if (!o) return;
  const char *mt = get_string(c, o, P, "model_type", FALSE, "llama");
  if (!c->failed && strcmp(mt, "llama") != 0)
    ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "language_config.model_type is '%s'; only 'llama' is supported", mt);
  l->hidden = get_int(c, o, P, "hidden_size", TRUE, 0, 1, CONFIG_MAX_DIM);
  l->n_layers = get_int(c, o, P, "num_hidden_layers", TRUE, 0, 1, CONFIG_MAX_LAYERS);
  l->n_heads = get_int(c, o, P, "num_attention_heads", TRUE, 0, 1, CONFIG_MAX_LAYERS);
  l->n_kv_heads = get_int(c, o, P, "num_key_value_heads", FALSE, l->n_heads, 1, CONFIG_MAX_LAYERS);
  l->intermediate = get_int(c, o, P, "intermediate_size", TRUE, 0, 1, CONFIG_MAX_DIM);
  l->vocab = get_int(c, o, P, "vocab_size", TRUE, 0, 1, CONFIG_MAX_DIM * 4);
  l->max_pos = get_int(c, o, P, "max_position_embeddings", FALSE, 2048, 1, 1 << 24);
  l->rms_eps = (float)get_double(c, o, P, "rms_norm_eps", FALSE, 1e-6, 0.0, 1.0);
  l->rope_theta = (float)get_double(c, o, P, "rope_theta", FALSE, 10000.0, 1.0, 1e12);
  if (c->failed) return;
  if (l->hidden % l->n_heads != 0) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.hidden_size %d is not divisible by num_attention_heads %d",
             l->hidden, l->n_heads);
    return;
  }
  l->head_dim = get_int(c, o, P, "head_dim", FALSE, l->hidden / l->n_heads, 2, CONFIG_MAX_DIM);
  if (c->failed) return;
  if (l->head_dim * l->n_heads != l->hidden)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.head_dim %d x %d heads != hidden_size %d", l->head_dim,
             l->n_heads, l->hidden);
  else if (l->head_dim % 2 != 0)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config: head_dim %d is odd (RoPE needs pairs)", l->head_dim);
  else if (l->n_kv_heads > l->n_heads || l->n_heads % l->n_kv_heads != 0)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.num_key_value_heads %d does not divide num_attention_heads %d",
             l->n_kv_heads, l->n_heads);
  const char *act = get_string(c, o, P, "hidden_act", FALSE, "silu");
  if (!c->failed && strcmp(act, "silu") != 0)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.hidden_act '%s' is not supported (only silu)", act);
  if (member(c, o, P, "rope_scaling", FALSE))
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.rope_scaling is not supported");
  l->attention_bias = get_bool(c, o, P, "attention_bias", FALSE);
  if (get_bool(c, o, P, "mlp_bias", FALSE))
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.mlp_bias is not supported");
  if (get_bool(c, o, P, "tie_word_embeddings", FALSE))
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "language_config.tie_word_embeddings is not supported (JanusFlow has a separate lm_head)");
}

/* The presets of the official siglip_vit.py (image size there is unused: CLIPVisionTower passes
 * its own image_size). */
static const struct {
  const char *name;
  int patch, width, layers, heads;
  double mlp_ratio;
} siglip_presets[] = {
  {"siglip_so400m_patch14_384", 14, 1152, 27, 16, 3.7362},
  {"siglip_so400m_patch14_224", 14, 1152, 27, 16, 3.7362},
  {"siglip_large_patch16_384", 16, 1024, 24, 16, 4.0},
  {"siglip_large_patch16_256", 16, 1024, 24, 16, 4.0},
};

static void read_siglip(Ctx *c, JsonObject *root, JfSiglipConfig *s) {
  const char *PP = "vision_und_enc_config.params.";
  JsonObject *p;
  if (!open_section(c, root, "vision_und_enc_config", "CLIPVisionTower", &p)) return;
  const char *name = get_string(c, p, PP, "model_name", FALSE, "siglip_large_patch16_384");
  if (c->failed) return;
  if (strncmp(name, "siglip", 6) != 0) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%smodel_name '%s' is not a SigLIP tower", PP, name);
    return;
  }
  /* siglip_vit.py defaults, then the named preset, then explicit keys (tiny test towers). */
  int patch = 14, width = 1152, layers = 27, heads = 16;
  double ratio = 3.7362;
  gboolean preset = FALSE;
  for (size_t i = 0; i < G_N_ELEMENTS(siglip_presets); i++)
    if (strcmp(name, siglip_presets[i].name) == 0) {
      patch = siglip_presets[i].patch;
      width = siglip_presets[i].width;
      layers = siglip_presets[i].layers;
      heads = siglip_presets[i].heads;
      ratio = siglip_presets[i].mlp_ratio;
      preset = TRUE;
    }
  if (!preset) {
    static const char *geom[] = {"width", "layers", "heads", "patch_size", "mlp_ratio"};
    for (size_t i = 0; i < G_N_ELEMENTS(geom); i++)
      if (!member(c, p, PP, geom[i], FALSE)) {
        ctx_fail(c, JF_LOAD_ERROR_MISSING,
                 "%smodel_name '%s' is not a known preset, so %s%s (and width/layers/heads/patch_size/mlp_ratio) must be given",
                 PP, name, PP, geom[i]);
        return;
      }
  }
  width = get_int(c, p, PP, "width", FALSE, width, 1, CONFIG_MAX_DIM);
  layers = get_int(c, p, PP, "layers", FALSE, layers, 1, CONFIG_MAX_LAYERS);
  heads = get_int(c, p, PP, "heads", FALSE, heads, 1, CONFIG_MAX_LAYERS);
  patch = get_int(c, p, PP, "patch_size", FALSE, patch, 1, 4096);
  ratio = get_double(c, p, PP, "mlp_ratio", FALSE, ratio, 1e-3, 1e3);
  /* CLIPVisionTower's own defaults: image_size 336, select_layer -2. */
  s->image_size = get_int(c, p, PP, "image_size", FALSE, 336, 1, 1 << 14);
  int select = get_int(c, p, PP, "select_layer", FALSE, -2, -CONFIG_MAX_LAYERS, CONFIG_MAX_LAYERS);
  if (get_bool(c, p, PP, "class_token", FALSE))
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%sclass_token is not supported", PP);
  const char *feat = get_string(c, p, PP, "select_feature", FALSE, "same");
  (void)feat;  /* forced to "same" for SigLIP towers by the official builder */
  if (c->failed) return;
  s->patch = patch;
  s->width = width;
  s->heads = heads;
  s->mlp_dim = (int)(width * ratio);  /* timm: int(dim * mlp_ratio) */
  s->layers = select <= 0 ? MIN(layers, layers + select + 1) : MIN(layers, select);
  s->ln_eps = 1e-6f;
  if (s->layers < 1)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%sselect_layer %d leaves no block of the %d", PP, select, layers);
  else if (width % heads != 0)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%swidth %d is not divisible by heads %d", PP, width, heads);
  else if (s->image_size < patch)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%simage_size %d is smaller than patch_size %d", PP, s->image_size, patch);
  else if (s->mlp_dim < 1)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%smlp_ratio gives an empty MLP", PP);
  double mean[3], std[3];
  gboolean hm = get_float3(c, p, PP, "pixel_mean", mean), hs = get_float3(c, p, PP, "pixel_std", std);
  /* The tower normalises only when both are given. */
  s->pixel_norm = hm && hs;
  for (int i = 0; i < 3; i++) {
    s->pixel_mean[i] = s->pixel_norm ? (float)mean[i] : 0.0f;
    s->pixel_std[i] = s->pixel_norm ? (float)std[i] : 1.0f;
    if (s->pixel_norm && std[i] == 0.0) ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%spixel_std has a zero", PP);
  }
}

/* The keys the ShallowUViT encoder and decoder share, read after their own keys (a bad
 * block_out_channels or upsamples is the one reported), then the ShallowUViT options. */
static void read_uvit_common(Ctx *c, JsonObject *p, const char *PP, int *layers_in_middle, int *hidden,
                             float *norm_eps, bool *use_bias) {
  *layers_in_middle = get_int(c, p, PP, "layers_in_middle", FALSE, 2, 0, CONFIG_MAX_LAYERS);
  *hidden = get_int(c, p, PP, "hidden_size", FALSE, 2048, 1, CONFIG_MAX_DIM);
  *norm_eps = (float)get_double(c, p, PP, "norm_eps", FALSE, 1e-6, 0.0, 1.0);
  /* without the mid block the features go straight through: the same as a block of 0 layers */
  if (!get_bool(c, p, PP, "use_mid_block", TRUE))
    *layers_in_middle = 0;
  /* elementwise_affine is read for its type only: the official ShallowUViT passes it to blocks
   * whose RMSNorm (transformers' LlamaRMSNorm) always has a weight, so it changes nothing */
  (void)get_bool(c, p, PP, "elementwise_affine", TRUE);
  *use_bias = get_bool(c, p, PP, "use_bias", TRUE);
}

static void read_gen_enc(Ctx *c, JsonObject *root, JfGenEncConfig *g) {
  const char *PP = "vision_gen_enc_config.params.";
  JsonObject *p;
  if (!open_section(c, root, "vision_gen_enc_config", "ShallowUViTEncoder", &p)) return;
  g->in_channels = get_int(c, p, PP, "input_channels", FALSE, 3, 1, 1024);
  g->stride = get_int(c, p, PP, "stride", FALSE, 4, 1, 64);
  g->kernel = get_int(c, p, PP, "kernel_size", FALSE, 7, 1, 64);
  static const int def_boc[] = {768};
  int boc[8] = {0};
  int nb = get_int_list(c, p, PP, "block_out_channels", boc, 8, def_boc, 1);
  read_uvit_common(c, p, PP, &g->layers_in_middle, &g->hidden, &g->norm_eps, &g->use_bias);
  if (c->failed) return;
  g->channels = boc[nb - 1];
  /* in_conv produces block_out_channels[0] and feeds the mid block built for [-1] directly. */
  if (boc[0] != boc[nb - 1])
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%sblock_out_channels first and last differ (%d, %d)", PP, boc[0], boc[nb - 1]);
  else if (g->kernel < g->stride)
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%skernel_size %d < stride %d is not supported", PP, g->kernel, g->stride);
  /* padding defaults to ceil(kernel - stride) (the official ShallowUViTEncoder) */
  g->padding = get_int(c, p, PP, "padding", FALSE, g->kernel - g->stride, 0, 64);
}

static void read_gen_dec(Ctx *c, JsonObject *root, JfGenDecConfig *g) {
  const char *PP = "vision_gen_dec_config.params.";
  JsonObject *p;
  if (!open_section(c, root, "vision_gen_dec_config", "ShallowUViTDecoder", &p)) return;
  g->in_channels = get_int(c, p, PP, "in_channels", FALSE, 768, 1, CONFIG_MAX_DIM);
  g->out_channels = get_int(c, p, PP, "out_channels", FALSE, 3, 1, 1024);
  static const int def_boc[] = {768};
  int boc[8] = {0};
  int nb = get_int_list(c, p, PP, "block_out_channels", boc, 8, def_boc, 1);
  g->upsamples = get_int(c, p, PP, "upsamples", FALSE, 2, 1, 8);
  read_uvit_common(c, p, PP, &g->layers_in_middle, &g->hidden, &g->norm_eps, &g->use_bias);
  if (!c->failed) g->channels = boc[nb - 1];
}

/* --------------------------------------------------------------------------------------------
 * Processor files */

static void read_preprocessor(const char *dir, JfProcessorConfig *pc, GError **error, gboolean *failed) {
  char *path = g_build_filename(dir, "preprocessor_config.json", NULL);
  JsonParser *jp = load_json(path, FALSE, NULL, error);
  if (!jp) {
    *failed = TRUE;
    g_free(path);
    return;
  }
  Ctx c = {path, error, FALSE};
  JsonObject *o = root_object(jp);
  pc->image_size = get_int(&c, o, "", "image_size", TRUE, 0, 1, 1 << 14);
  pc->min_size = get_int(&c, o, "", "min_size", FALSE, 14, 1, 1 << 14);
  pc->rescale = (float)get_double(&c, o, "", "rescale_factor", FALSE, 1.0 / 255.0, 1e-12, 1e12);
  pc->do_normalize = get_bool(&c, o, "", "do_normalize", TRUE);
  /* VLMImageProcessor defaults are the CLIP statistics. */
  double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
  get_float3(&c, o, "", "image_mean", mean);
  get_float3(&c, o, "", "image_std", std);
  for (int i = 0; i < 3; i++) {
    pc->image_mean[i] = (float)mean[i];
    pc->image_std[i] = (float)std[i];
    /* The processor overwrites background_color with int(mean * 255), computed in double. */
    double bg = mean[i] * 255.0;
    pc->background[i] = bg < 0 ? 0 : bg > 255 ? 255 : (int)bg;
    if (pc->do_normalize && std[i] == 0.0) ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "image_std has a zero");
  }
  *failed = c.failed;
  g_object_unref(jp);
  g_free(path);
}

static void read_processor(const char *dir, JfProcessorConfig *pc, GError **error, gboolean *failed) {
  char *path = g_build_filename(dir, "processor_config.json", NULL);
  gboolean absent;
  JsonParser *jp = load_json(path, TRUE, &absent, error);
  if (!jp && !absent) {
    *failed = TRUE;
    g_free(path);
    return;
  }
  Ctx c = {path, error, FALSE};
  JsonObject *o = jp ? root_object(jp) : NULL;
  /* VLChatProcessor defaults when the file or a key is absent. */
  pc->image_tag = g_strdup(get_string(&c, o, "", "image_tag", FALSE, "<image_placeholder>"));
  pc->image_start_tag = g_strdup(get_string(&c, o, "", "image_start_tag", FALSE, "<begin_of_image>"));
  pc->image_end_tag = g_strdup(get_string(&c, o, "", "image_end_tag", FALSE, "<end_of_image>"));
  pc->image_gen_tag =
      g_strdup(get_string(&c, o, "", "image_gen_tag", FALSE, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81generation\xef\xbd\x9c>"));
  pc->sft_format = g_strdup(get_string(&c, o, "", "sft_format", FALSE, "deepseek"));
  pc->num_image_tokens = get_int(&c, o, "", "num_image_tokens", FALSE, 576, 1, CONFIG_MAX_DIM);
  pc->add_special_token = get_bool(&c, o, "", "add_special_token", FALSE);
  const char *tags[] = {pc->image_tag, pc->image_start_tag, pc->image_end_tag, pc->image_gen_tag};
  for (size_t i = 0; i < G_N_ELEMENTS(tags) && !c.failed; i++)
    if (!tags[i] || !tags[i][0]) ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "an image tag is empty");
  *failed = c.failed;
  if (jp) g_object_unref(jp);
  g_free(path);
}

/* A token entry is either "text" or {"content": "text", ...} (AddedToken). Returns a copy, or NULL
 * when absent / null. */
static char *token_string(Ctx *c, JsonObject *o, const char *key) {
  JsonNode *n = member(c, o, "", key, FALSE);
  if (!n) return NULL;
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) return g_strdup(json_node_get_string(n));
  if (JSON_NODE_HOLDS_OBJECT(n)) {
    char *prefix = g_strconcat(key, ".", NULL);
    const char *s = get_string(c, json_node_get_object(n), prefix, "content", TRUE, NULL);
    g_free(prefix);
    return s ? g_strdup(s) : NULL;
  }
  ctx_fail(c, JF_LOAD_ERROR_FORMAT, "%s must be a string or a token object", key);
  return NULL;
}

static void read_special_tokens(const char *dir, JfProcessorConfig *pc, GError **error, gboolean *failed) {
  const char *files[] = {"special_tokens_map.json", "tokenizer_config.json"};
  char **slots[] = {&pc->bos_token, &pc->eos_token, &pc->pad_token};
  const char *keys[] = {"bos_token", "eos_token", "pad_token"};
  gboolean any_file = FALSE;
  for (size_t f = 0; f < G_N_ELEMENTS(files); f++) {
    char *path = g_build_filename(dir, files[f], NULL);
    gboolean absent;
    JsonParser *jp = load_json(path, TRUE, &absent, error);
    if (!jp) {
      g_free(path);
      if (absent) continue;
      *failed = TRUE;
      return;
    }
    any_file = TRUE;
    Ctx c = {path, error, FALSE};
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++)
      if (!*slots[k]) *slots[k] = token_string(&c, root_object(jp), keys[k]);
    g_object_unref(jp);
    g_free(path);
    if (c.failed) {
      *failed = TRUE;
      return;
    }
  }
  for (int k = 0; k < 2; k++)
    if (!*slots[k]) {
      char *path = g_build_filename(dir, files[0], NULL);
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: %s %s", path, keys[k],
                  any_file ? "missing (also from tokenizer_config.json)" : "not found (nor tokenizer_config.json)");
      g_free(path);
      *failed = TRUE;
      return;
    }
}

/* --------------------------------------------------------------------------------------------
 * Public */

void config_free_model(JfModelConfig *c) {
  if (!c) return;
  JfProcessorConfig *p = &c->proc;
  g_free(p->image_tag);
  g_free(p->image_start_tag);
  g_free(p->image_end_tag);
  g_free(p->image_gen_tag);
  g_free(p->sft_format);
  g_free(p->bos_token);
  g_free(p->eos_token);
  g_free(p->pad_token);
  g_free(c);
}

/* Says what a folder holds when it is not JanusFlow. */
static gboolean check_model_kind(Ctx *c, JsonObject *root) {
  JsonNode *mt = json_object_get_member(root, "model_type");
  if (mt && JSON_NODE_HOLDS_VALUE(mt) && json_node_get_value_type(mt) == G_TYPE_STRING) {
    const char *t = json_node_get_string(mt);
    if (strcmp(t, "multi_modality") != 0) {
      ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "holds a '%s' model, not JanusFlow (model_type 'multi_modality')", t);
      return FALSE;
    }
  } else if (mt && !JSON_NODE_HOLDS_NULL(mt)) {
    ctx_fail(c, JF_LOAD_ERROR_FORMAT, "model_type must be a string");
    return FALSE;
  } else if (json_object_has_member(root, "_class_name")) {
    ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "holds a diffusers '%s', not JanusFlow (is this the VAE folder?)",
             get_string(c, root, "", "_class_name", FALSE, "?"));
    return FALSE;
  } else {
    ctx_fail(c, JF_LOAD_ERROR_MISSING, "model_type missing (expected 'multi_modality')");
    return FALSE;
  }
  /* Janus (VQ) and DeepSeek-VL share model_type "multi_modality" but not these sections. */
  if (!json_object_has_member(root, "vision_gen_enc_config") && json_object_has_member(root, "gen_vision_config")) {
    ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "holds a Janus (VQ image generation) model, not JanusFlow");
    return FALSE;
  }
  if (!json_object_has_member(root, "vision_und_enc_config") && json_object_has_member(root, "vision_config")) {
    ctx_fail(c, JF_LOAD_ERROR_MISMATCH, "holds a DeepSeek-VL / Janus model, not JanusFlow");
    return FALSE;
  }
  return TRUE;
}

/* dir/config.json, parsed; *path (the caller frees it) names it in messages. NULL with an error
 * when the folder or the file is missing (`kind` completes "is this ...?") or unreadable. */
static JsonParser *load_folder_config(const char *dir, const char *kind, char **path, GError **error) {
  *path = g_build_filename(dir, "config.json", NULL);
  if (!g_file_test(*path, G_FILE_TEST_EXISTS)) {
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: no such folder", dir);
    else
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: not found \xe2\x80\x94 is this %s?", *path, kind);
    return NULL;
  }
  return load_json(*path, FALSE, NULL, error);
}

JfModelConfig *config_load_model(const char *dir, GError **error) {
  g_return_val_if_fail(dir != NULL, NULL);
  char *path = NULL;
  JsonParser *jp = load_folder_config(dir, "a JanusFlow model folder", &path, error);
  if (!jp) {
    g_free(path);
    return NULL;
  }
  JfModelConfig *m = g_new0(JfModelConfig, 1);
  Ctx c = {path, error, FALSE};
  JsonObject *root = root_object(jp);
  if (check_model_kind(&c, root)) {
    read_llm(&c, root, &m->llm);
    read_siglip(&c, root, &m->siglip);
    read_gen_enc(&c, root, &m->gen_enc);
    read_gen_dec(&c, root, &m->gen_dec);
  }
  if (!c.failed) {
    int D = m->llm.hidden;
    if (m->gen_enc.hidden != D)
      ctx_fail(&c, JF_LOAD_ERROR_MISMATCH, "vision_gen_enc_config.params.hidden_size %d != language_config.hidden_size %d",
               m->gen_enc.hidden, D);
    else if (m->gen_dec.hidden != D)
      ctx_fail(&c, JF_LOAD_ERROR_MISMATCH, "vision_gen_dec_config.params.hidden_size %d != language_config.hidden_size %d",
               m->gen_dec.hidden, D);
    else if (m->gen_enc.channels != m->gen_dec.channels)
      ctx_fail(&c, JF_LOAD_ERROR_MISMATCH,
               "the gen encoder's channels (%d) differ from the decoder's block_out_channels (%d)", m->gen_enc.channels,
               m->gen_dec.channels);
    else if (m->gen_enc.in_channels != m->gen_dec.out_channels)
      ctx_fail(&c, JF_LOAD_ERROR_MISMATCH, "gen encoder input_channels %d != decoder out_channels %d",
               m->gen_enc.in_channels, m->gen_dec.out_channels);
    else if (m->gen_enc.stride != (1 << m->gen_dec.upsamples))
      ctx_fail(&c, JF_LOAD_ERROR_MISMATCH,
               "vision_gen_enc_config.params.stride %d does not match vision_gen_dec_config.params.upsamples %d "
               "(each out_conv upsamples 2x: the stride must be %d)",
               m->gen_enc.stride, m->gen_dec.upsamples, 1 << m->gen_dec.upsamples);
  }
  g_object_unref(jp);
  gboolean failed = c.failed;
  if (!failed) read_preprocessor(dir, &m->proc, error, &failed);
  if (!failed) read_processor(dir, &m->proc, error, &failed);
  if (!failed) read_special_tokens(dir, &m->proc, error, &failed);
  if (!failed) {
    /* Both feed the same tower: the processor's square size and token count must match it. */
    int side = m->siglip.image_size / m->siglip.patch;
    char *pp = g_build_filename(dir, "preprocessor_config.json", NULL);
    char *pr = g_build_filename(dir, "processor_config.json", NULL);
    if (m->proc.image_size != m->siglip.image_size) {
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "%s: image_size %d != the vision tower's %d (config.json)",
                  pp, m->proc.image_size, m->siglip.image_size);
      failed = TRUE;
    } else if (m->proc.num_image_tokens != side * side) {
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                  "%s: num_image_tokens %d != the vision tower's (%d/%d)^2 = %d", pr, m->proc.num_image_tokens,
                  m->siglip.image_size, m->siglip.patch, side * side);
      failed = TRUE;
    }
    g_free(pp);
    g_free(pr);
  }
  g_free(path);
  if (failed) {
    config_free_model(m);
    return NULL;
  }
  return m;
}

void config_free_vae(JfVaeConfig *c) { g_free(c); }

JfVaeConfig *config_load_vae(const char *dir, GError **error) {
  g_return_val_if_fail(dir != NULL, NULL);
  char *path = NULL;
  JsonParser *jp = load_folder_config(dir, "a diffusers VAE folder (e.g. stabilityai/sdxl-vae)", &path, error);
  if (!jp) {
    g_free(path);
    return NULL;
  }
  JfVaeConfig *v = g_new0(JfVaeConfig, 1);
  Ctx c = {path, error, FALSE};
  JsonObject *o = root_object(jp);
  const char *cls = get_string(&c, o, "", "_class_name", FALSE, NULL);
  if (!c.failed && cls && strcmp(cls, "AutoencoderKL") != 0)
    ctx_fail(&c, JF_LOAD_ERROR_MISMATCH, "holds a '%s', not an AutoencoderKL VAE", cls);
  if (!c.failed && !cls && json_object_has_member(o, "model_type"))
    ctx_fail(&c, JF_LOAD_ERROR_MISMATCH, "holds a '%s' model, not an AutoencoderKL VAE",
             get_string(&c, o, "", "model_type", FALSE, "?"));
  static const int def_boc[] = {64};
  v->n_blocks = get_int_list(&c, o, "", "block_out_channels", v->block_out_channels, JF_VAE_MAX_BLOCKS, def_boc, 1);
  v->layers_per_block = get_int(&c, o, "", "layers_per_block", FALSE, 1, 1, 64);
  v->norm_groups = get_int(&c, o, "", "norm_num_groups", FALSE, 32, 1, CONFIG_MAX_DIM);
  v->latent_channels = get_int(&c, o, "", "latent_channels", FALSE, 4, 1, 1024);
  v->out_channels = get_int(&c, o, "", "out_channels", FALSE, 3, 1, 1024);
  v->scaling_factor = (float)get_double(&c, o, "", "scaling_factor", FALSE, 0.18215, 1e-12, 1e12);
  /* shift_factor (SD3/Flux configs) is not read: JanusFlow decodes z / scaling_factor only, as
   * diffusers' AutoencoderKL.decode itself never shifts */
  const char *act = get_string(&c, o, "", "act_fn", FALSE, "silu");
  if (!c.failed && strcmp(act, "silu") != 0) ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "act_fn '%s' is not supported (only silu)", act);
  v->post_quant_conv = get_bool(&c, o, "", "use_post_quant_conv", TRUE);
  v->mid_attention = get_bool(&c, o, "", "mid_block_add_attention", TRUE);
  JsonNode *ut = member(&c, o, "", "up_block_types", FALSE);
  if (ut) {
    JsonArray *a = JSON_NODE_HOLDS_ARRAY(ut) ? json_node_get_array(ut) : NULL;
    if (!a || (int)json_array_get_length(a) != v->n_blocks) {
      ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "up_block_types must list one type per block_out_channels entry");
    } else {
      for (guint i = 0; i < json_array_get_length(a) && !c.failed; i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING ||
            strcmp(json_node_get_string(e), "UpDecoderBlock2D") != 0)
          ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "up_block_types[%u] is not UpDecoderBlock2D", i);
      }
    }
  }
  for (int i = 0; i < v->n_blocks && !c.failed; i++)
    if (v->block_out_channels[i] % v->norm_groups != 0)
      ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "block_out_channels[%d] = %d is not divisible by norm_num_groups %d", i,
               v->block_out_channels[i], v->norm_groups);
  if (!c.failed && v->out_channels > 1024) ctx_fail(&c, JF_LOAD_ERROR_FORMAT, "out_channels too large");
  g_object_unref(jp);
  g_free(path);
  if (c.failed) {
    config_free_vae(v);
    return NULL;
  }
  return v;
}
