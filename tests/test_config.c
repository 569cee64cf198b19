/* config: the tiny fixture's values, the documented defaults, and errors that name file and key. */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "test_util.h"

static char *tmp_root;

static void test_fixture_model(void) {
  char *dir = test_data_path("tiny/janusflow");
  GError *e = NULL;
  JfModelConfig *c = config_load_model(dir, &e);
  g_assert_no_error(e);
  const JfLlmConfig *l = &c->llm;
  g_assert_cmpint(l->hidden, ==, 64);
  g_assert_cmpint(l->n_layers, ==, 2);
  g_assert_cmpint(l->n_heads, ==, 4);
  g_assert_cmpint(l->n_kv_heads, ==, 4);
  g_assert_cmpint(l->head_dim, ==, 16);
  g_assert_cmpint(l->intermediate, ==, 160);
  g_assert_cmpint(l->vocab, ==, 640);
  g_assert_cmpint(l->max_pos, ==, 512);
  g_assert_cmpfloat(l->rms_eps, ==, 1e-6f);
  g_assert_cmpfloat(l->rope_theta, ==, 10000.0f);
  const JfSiglipConfig *s = &c->siglip;
  g_assert_cmpint(s->image_size, ==, 64);
  g_assert_cmpint(s->patch, ==, 16);
  g_assert_cmpint(s->width, ==, 32);
  g_assert_cmpint(s->layers, ==, 2);
  g_assert_cmpint(s->heads, ==, 2);
  g_assert_cmpint(s->mlp_dim, ==, 128);
  g_assert_cmpfloat(s->ln_eps, ==, 1e-6f);
  g_assert_false(s->pixel_norm);
  const JfGenEncConfig *ge = &c->gen_enc;
  g_assert_cmpint(ge->in_channels, ==, 4);
  g_assert_cmpint(ge->channels, ==, 32);
  g_assert_cmpint(ge->kernel, ==, 2);
  g_assert_cmpint(ge->stride, ==, 2);
  g_assert_cmpint(ge->layers_in_middle, ==, 2);
  g_assert_cmpint(ge->hidden, ==, 64);
  g_assert_cmpfloat(ge->norm_eps, ==, 1e-6f);
  const JfGenDecConfig *gd = &c->gen_dec;
  g_assert_cmpint(gd->in_channels, ==, 32);
  g_assert_cmpint(gd->channels, ==, 32);
  g_assert_cmpint(gd->out_channels, ==, 4);
  g_assert_cmpint(gd->upsamples, ==, 1);
  g_assert_cmpint(gd->layers_in_middle, ==, 2);
  g_assert_cmpint(gd->hidden, ==, 64);
  const JfProcessorConfig *p = &c->proc;
  g_assert_cmpint(p->image_size, ==, 64);
  g_assert_cmpint(p->min_size, ==, 14);
  for (int i = 0; i < 3; i++) {
    g_assert_cmpfloat(p->image_mean[i], ==, 0.5f);
    g_assert_cmpfloat(p->image_std[i], ==, 0.5f);
    g_assert_cmpint(p->background[i], ==, 127);
  }
  g_assert_cmpfloat_with_epsilon(p->rescale, 1.0 / 255.0, 1e-9);
  g_assert_true(p->do_normalize);
  g_assert_cmpstr(p->image_tag, ==, "<image_placeholder>");
  g_assert_cmpstr(p->image_start_tag, ==, "<image_beg>");
  g_assert_cmpstr(p->image_end_tag, ==, "<image_end>");
  g_assert_cmpstr(p->image_gen_tag, ==, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81generation\xef\xbd\x9c>");
  g_assert_cmpstr(p->sft_format, ==, "deepseek_old");
  g_assert_cmpint(p->num_image_tokens, ==, 16);
  g_assert_false(p->add_special_token);
  g_assert_cmpstr(p->bos_token, ==, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  g_assert_cmpstr(p->eos_token, ==, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  g_assert_null(p->pad_token);
  config_free_model(c);
  g_free(dir);
}

static void test_fixture_vae(void) {
  char *dir = test_data_path("tiny/vae");
  GError *e = NULL;
  JfVaeConfig *v = config_load_vae(dir, &e);
  g_assert_no_error(e);
  g_assert_cmpint(v->n_blocks, ==, 4);
  const int boc[] = {32, 32, 64, 64};
  for (int i = 0; i < 4; i++) g_assert_cmpint(v->block_out_channels[i], ==, boc[i]);
  g_assert_cmpint(v->layers_per_block, ==, 1);
  g_assert_cmpint(v->norm_groups, ==, 8);
  g_assert_cmpint(v->latent_channels, ==, 4);
  g_assert_cmpint(v->out_channels, ==, 3);
  g_assert_cmpfloat(v->scaling_factor, ==, 0.13025f);
  g_assert_true(v->post_quant_conv);
  g_assert_true(v->mid_attention);
  config_free_vae(v);
  g_free(dir);
}

/* ---------------------------------------------------------------------------------------------
 * Modified copies of the fixture folder */

typedef void (*Edit)(JsonObject *root);

static JsonObject *obj(JsonObject *o, const char *path) {
  char **parts = g_strsplit(path, ".", -1);
  for (char **p = parts; *p; p++) o = json_object_get_object_member(o, *p);
  g_strfreev(parts);
  return o;
}

static void copy_file(const char *from, const char *to) {
  char *text;
  gsize len;
  g_assert_true(g_file_get_contents(from, &text, &len, NULL));
  g_assert_true(g_file_set_contents(to, text, (gssize)len, NULL));
  g_free(text);
}

static void edit_json(const char *path, Edit edit) {
  JsonParser *jp = json_parser_new();
  g_assert_true(json_parser_load_from_file(jp, path, NULL));
  edit(json_node_get_object(json_parser_get_root(jp)));
  JsonGenerator *g = json_generator_new();
  json_generator_set_root(g, json_parser_get_root(jp));
  g_assert_true(json_generator_to_file(g, path, NULL));
  g_object_unref(g);
  g_object_unref(jp);
}

/* A fresh copy of tiny/janusflow (json files only) with `edit` applied to `file`. */
static char *model_copy(const char *file, Edit edit) {
  static int n;
  char *dir = g_strdup_printf("%s/model-%d", tmp_root, n++);
  g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
  const char *files[] = {"config.json", "preprocessor_config.json", "processor_config.json", "special_tokens_map.json",
                         "tokenizer_config.json"};
  char *src = test_data_path("tiny/janusflow");
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    char *a = g_build_filename(src, files[i], NULL), *b = g_build_filename(dir, files[i], NULL);
    copy_file(a, b);
    if (edit && strcmp(files[i], file) == 0) edit_json(b, edit);
    g_free(a);
    g_free(b);
  }
  g_free(src);
  return dir;
}

static char *vae_copy(Edit edit) {
  static int n;
  char *dir = g_strdup_printf("%s/vae-%d", tmp_root, n++);
  g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
  char *a = test_data_path("tiny/vae/config.json"), *b = g_build_filename(dir, "config.json", NULL);
  copy_file(a, b);
  if (edit) edit_json(b, edit);
  g_free(a);
  g_free(b);
  return dir;
}

/* Loads and expects failure with `code`, the file name and every fragment in the message. */
static void expect_model_error(const char *dir, const char *file, JfLoadError code, const char *fragment) {
  GError *e = NULL;
  JfModelConfig *c = config_load_model(dir, &e);
  if (c) g_error("%s: loaded, expected '%s'", dir, fragment);
  if (!g_error_matches(e, JF_LOAD_ERROR, code)) g_error("code %d '%s', expected %d", e->code, e->message, code);
  if (file) {
    char *path = g_build_filename(dir, file, NULL);
    if (!strstr(e->message, path)) g_error("message '%s' does not name %s", e->message, path);
    g_free(path);
  }
  if (fragment && !strstr(e->message, fragment)) g_error("message '%s' lacks '%s'", e->message, fragment);
  g_test_message("%s", e->message);
  g_error_free(e);
}

static void expect_vae_error(const char *dir, JfLoadError code, const char *fragment) {
  GError *e = NULL;
  JfVaeConfig *v = config_load_vae(dir, &e);
  if (v) g_error("%s: loaded, expected '%s'", dir, fragment);
  if (!g_error_matches(e, JF_LOAD_ERROR, code)) g_error("code %d '%s', expected %d", e->code, e->message, code);
  g_assert_nonnull(strstr(e->message, dir));
  if (fragment && !strstr(e->message, fragment)) g_error("message '%s' lacks '%s'", e->message, fragment);
  g_test_message("%s", e->message);
  g_error_free(e);
}

static void rm_hidden(JsonObject *r) { json_object_remove_member(obj(r, "language_config"), "hidden_size"); }
static void str_layers(JsonObject *r) { json_object_set_string_member(obj(r, "language_config"), "num_hidden_layers", "2"); }
static void float_heads(JsonObject *r) { json_object_set_double_member(obj(r, "language_config"), "num_attention_heads", 4.0); }
static void other_type(JsonObject *r) { json_object_set_string_member(r, "model_type", "llama"); }
static void no_type(JsonObject *r) { json_object_remove_member(r, "model_type"); }
static void janus_vq(JsonObject *r) {
  json_object_remove_member(r, "vision_gen_enc_config");
  json_object_set_object_member(r, "gen_vision_config", json_object_new());
}
static void bad_heads(JsonObject *r) { json_object_set_int_member(obj(r, "language_config"), "num_attention_heads", 5); }
static void bad_kv(JsonObject *r) { json_object_set_int_member(obj(r, "language_config"), "num_key_value_heads", 3); }
static void huge_vocab(JsonObject *r) { json_object_set_int_member(obj(r, "language_config"), "vocab_size", (gint64)1 << 40); }
static void neg_layers(JsonObject *r) { json_object_set_int_member(obj(r, "language_config"), "num_hidden_layers", -2); }
static void rope_scaling(JsonObject *r) {
  json_object_set_object_member(obj(r, "language_config"), "rope_scaling", json_object_new());
}
static void llm_defaults(JsonObject *r) {
  JsonObject *l = obj(r, "language_config");
  json_object_remove_member(l, "num_key_value_heads");
  json_object_remove_member(l, "max_position_embeddings");
  json_object_set_double_member(l, "rms_norm_eps", 1e-5);
  json_object_set_int_member(l, "rope_theta", 500000);
}
static void no_lang(JsonObject *r) { json_object_remove_member(r, "language_config"); }
static void lang_array(JsonObject *r) { json_object_set_array_member(r, "language_config", json_array_new()); }
static void siglip_large(JsonObject *r) {
  JsonObject *p = obj(r, "vision_und_enc_config.params");
  const char *k[] = {"width", "layers", "heads", "patch_size", "mlp_ratio"};
  for (int i = 0; i < 5; i++) json_object_remove_member(p, k[i]);
  json_object_set_string_member(p, "model_name", "siglip_large_patch16_384");
  json_object_set_int_member(p, "image_size", 384);
}
static void siglip_select(JsonObject *r) { json_object_set_int_member(obj(r, "vision_und_enc_config.params"), "select_layer", -2); }
static void siglip_select0(JsonObject *r) { json_object_set_int_member(obj(r, "vision_und_enc_config.params"), "select_layer", -3); }
static void siglip_unknown(JsonObject *r) { json_object_remove_member(obj(r, "vision_und_enc_config.params"), "heads"); }
static void siglip_pixnorm(JsonObject *r) {
  JsonObject *p = obj(r, "vision_und_enc_config.params");
  JsonArray *m = json_array_new(), *s = json_array_new();
  for (int i = 0; i < 3; i++) json_array_add_double_element(m, 0.5), json_array_add_double_element(s, 0.25);
  json_object_set_array_member(p, "pixel_mean", m);
  json_object_set_array_member(p, "pixel_std", s);
}
static void siglip_badmean(JsonObject *r) {
  JsonArray *m = json_array_new();
  json_array_add_double_element(m, 0.5);
  json_object_set_array_member(obj(r, "vision_und_enc_config.params"), "pixel_mean", m);
}
static void enc_hidden(JsonObject *r) { json_object_set_int_member(obj(r, "vision_gen_enc_config.params"), "hidden_size", 32); }
static void enc_cls(JsonObject *r) { json_object_set_string_member(obj(r, "vision_gen_enc_config"), "cls", "VQ-16"); }
static void enc_padding(JsonObject *r) { json_object_set_int_member(obj(r, "vision_gen_enc_config.params"), "padding", 1); }
static void enc_boc(JsonObject *r) {
  json_object_set_array_member(obj(r, "vision_gen_enc_config.params"), "block_out_channels", json_array_new());
}
static void dec_upsamples(JsonObject *r) { json_object_set_int_member(obj(r, "vision_gen_dec_config.params"), "upsamples", 2); }
static void dec_no_mid(JsonObject *r) {
  json_object_set_boolean_member(obj(r, "vision_gen_dec_config.params"), "use_mid_block", FALSE);
  json_object_set_boolean_member(obj(r, "vision_gen_dec_config.params"), "use_bias", FALSE);
  json_object_set_boolean_member(obj(r, "vision_gen_dec_config.params"), "elementwise_affine", FALSE);
}

static void pre_size(JsonObject *r) { json_object_set_int_member(r, "image_size", 96); }
static void pre_defaults(JsonObject *r) {
  json_object_remove_member(r, "image_mean");
  json_object_remove_member(r, "image_std");
  json_object_remove_member(r, "min_size");
}
static void pre_mean_str(JsonObject *r) { json_object_set_string_member(r, "image_mean", "0.5"); }
static void proc_tokens(JsonObject *r) { json_object_set_int_member(r, "num_image_tokens", 576); }
static void proc_defaults(JsonObject *r) {
  json_object_remove_member(r, "image_start_tag");
  json_object_remove_member(r, "image_end_tag");
  json_object_remove_member(r, "sft_format");
}
static void stm_no_bos(JsonObject *r) { json_object_remove_member(r, "bos_token"); }
static void stm_bad_eos(JsonObject *r) { json_object_set_int_member(r, "eos_token", 5); }

static void test_errors(void) {
  char *d;
  const JfLoadError MISS = JF_LOAD_ERROR_MISSING, FMT = JF_LOAD_ERROR_FORMAT, MM = JF_LOAD_ERROR_MISMATCH,
                    LIM = JF_LOAD_ERROR_LIMIT;
  struct {
    const char *file;
    Edit edit;
    JfLoadError code;
    const char *fragment;
  } cases[] = {
    {"config.json", rm_hidden, MISS, "config.json: language_config.hidden_size missing"},
    {"config.json", str_layers, FMT, "language_config.num_hidden_layers must be an integer"},
    {"config.json", float_heads, FMT, "language_config.num_attention_heads must be an integer"},
    {"config.json", other_type, MM, "holds a 'llama' model, not JanusFlow"},
    {"config.json", no_type, MISS, "model_type"},
    {"config.json", janus_vq, MM, "Janus"},
    {"config.json", bad_heads, FMT, "divisible"},
    {"config.json", bad_kv, FMT, "num_key_value_heads"},
    {"config.json", huge_vocab, LIM, "language_config.vocab_size"},
    {"config.json", neg_layers, FMT, "language_config.num_hidden_layers"},
    {"config.json", rope_scaling, FMT, "rope_scaling"},
    {"config.json", no_lang, MISS, "language_config missing"},
    {"config.json", lang_array, FMT, "language_config must be an object"},
    {"config.json", siglip_select0, FMT, "select_layer"},
    {"config.json", siglip_unknown, MISS, "vision_und_enc_config.params.heads"},
    {"config.json", siglip_badmean, FMT, "pixel_mean"},
    {"config.json", enc_hidden, MM, "hidden_size"},
    {"config.json", enc_cls, MM, "ShallowUViTEncoder"},
    {"config.json", enc_boc, FMT, "block_out_channels"},
    {"config.json", dec_upsamples, MM, "upsample"},
    {"preprocessor_config.json", pre_size, MM, "image_size"},
    {"preprocessor_config.json", pre_mean_str, FMT, "image_mean"},
    {"processor_config.json", proc_tokens, MM, "num_image_tokens"},
    {"special_tokens_map.json", stm_bad_eos, FMT, "eos_token"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    d = model_copy(cases[i].file, cases[i].edit);
    expect_model_error(d, cases[i].file, cases[i].code, cases[i].fragment);
    g_free(d);
  }

  /* missing files / folders, garbage */
  d = model_copy(NULL, NULL);
  char *p = g_build_filename(d, "config.json", NULL);
  g_unlink(p);
  expect_model_error(d, "config.json", MISS, "is this a JanusFlow model folder?");
  g_assert_true(g_file_set_contents(p, "{\"model_type\": ", -1, NULL));
  expect_model_error(d, "config.json", FMT, "not valid JSON");
  g_assert_true(g_file_set_contents(p, "[1]", -1, NULL));
  expect_model_error(d, "config.json", FMT, "not a JSON object");
  g_assert_true(g_file_set_contents(p, "{\"a\": \"\xff\"}", -1, NULL));
  expect_model_error(d, "config.json", FMT, "UTF-8");
  GString *deep = g_string_new(NULL);
  for (int i = 0; i < 200000; i++) g_string_append_c(deep, '[');
  g_assert_true(g_file_set_contents(p, deep->str, (gssize)deep->len, NULL));
  g_string_free(deep, TRUE);
  expect_model_error(d, "config.json", LIM, "nests");
  g_free(p);
  g_free(d);

  d = model_copy(NULL, NULL);
  p = g_build_filename(d, "preprocessor_config.json", NULL);
  g_unlink(p);
  expect_model_error(d, "preprocessor_config.json", MISS, NULL);
  g_free(p);
  g_free(d);

  d = g_build_filename(tmp_root, "no-such-folder", NULL);
  expect_model_error(d, NULL, MISS, d);
  g_free(d);

  /* the VAE folder given as the model */
  d = vae_copy(NULL);
  expect_model_error(d, "config.json", MM, "diffusers");
  g_free(d);

  /* bos from tokenizer_config.json when special_tokens_map.json lacks it; both absent -> error */
  d = model_copy("special_tokens_map.json", stm_no_bos);
  GError *e = NULL;
  JfModelConfig *c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(c->proc.bos_token, ==, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  config_free_model(c);
  p = g_build_filename(d, "tokenizer_config.json", NULL);
  g_unlink(p);
  g_free(p);
  expect_model_error(d, "special_tokens_map.json", MISS, "bos_token");
  g_free(d);
}

static void test_defaults(void) {
  GError *e = NULL;
  char *d = model_copy("config.json", llm_defaults);
  JfModelConfig *c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->llm.n_kv_heads, ==, 4);
  g_assert_cmpint(c->llm.max_pos, ==, 2048);
  g_assert_cmpfloat(c->llm.rms_eps, ==, 1e-5f);
  g_assert_cmpfloat(c->llm.rope_theta, ==, 500000.0f);
  config_free_model(c);
  g_free(d);

  /* a preset tower whose size disagrees with the processor files */
  d = model_copy("config.json", siglip_large);
  expect_model_error(d, "preprocessor_config.json", JF_LOAD_ERROR_MISMATCH, "384");
  g_free(d);

  d = model_copy("config.json", siglip_select);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->siglip.layers, ==, 1);
  config_free_model(c);
  g_free(d);

  d = model_copy("config.json", siglip_pixnorm);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_true(c->siglip.pixel_norm);
  g_assert_cmpfloat(c->siglip.pixel_std[2], ==, 0.25f);
  config_free_model(c);
  g_free(d);

  /* ShallowUViT options the reference takes: an explicit padding, no mid block (0 layers), no
   * biases, elementwise_affine false (no effect: the official norms always have a weight); the
   * encoder keeps its defaults */
  d = model_copy("config.json", enc_padding);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->gen_enc.padding, ==, 1);
  g_assert_true(c->gen_enc.use_bias);
  config_free_model(c);
  g_free(d);
  d = model_copy("config.json", dec_no_mid);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->gen_dec.layers_in_middle, ==, 0);
  g_assert_false(c->gen_dec.use_bias);
  g_assert_cmpint(c->gen_enc.layers_in_middle, ==, 2);
  g_assert_cmpint(c->gen_enc.padding, ==, 0);
  config_free_model(c);
  g_free(d);

  /* VLMImageProcessor defaults: CLIP mean/std, background int(mean*255) */
  d = model_copy("preprocessor_config.json", pre_defaults);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->proc.background[0], ==, 122);
  g_assert_cmpint(c->proc.background[1], ==, 116);
  g_assert_cmpint(c->proc.background[2], ==, 104);
  g_assert_cmpfloat(c->proc.image_std[0], ==, 0.26862954f);
  g_assert_cmpint(c->proc.min_size, ==, 14);
  config_free_model(c);
  g_free(d);

  /* VLChatProcessor defaults */
  d = model_copy("processor_config.json", proc_defaults);
  c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(c->proc.image_start_tag, ==, "<begin_of_image>");
  g_assert_cmpstr(c->proc.image_end_tag, ==, "<end_of_image>");
  g_assert_cmpstr(c->proc.sft_format, ==, "deepseek");
  config_free_model(c);
  g_free(d);
}

/* siglip_large_patch16_384 without explicit geometry: the preset's 1024 / 24 / 16 / 16 / 4. */
static void pre_384(JsonObject *r) { json_object_set_int_member(r, "image_size", 384); }
static void proc_576(JsonObject *r) { json_object_set_int_member(r, "num_image_tokens", 576); }

static void test_siglip_preset(void) {
  char *d = model_copy("config.json", siglip_large);
  char *pp = g_build_filename(d, "preprocessor_config.json", NULL), *pr = g_build_filename(d, "processor_config.json", NULL);
  edit_json(pp, pre_384);
  edit_json(pr, proc_576);
  GError *e = NULL;
  JfModelConfig *c = config_load_model(d, &e);
  g_assert_no_error(e);
  g_assert_cmpint(c->siglip.image_size, ==, 384);
  g_assert_cmpint(c->siglip.patch, ==, 16);
  g_assert_cmpint(c->siglip.width, ==, 1024);
  g_assert_cmpint(c->siglip.layers, ==, 24);
  g_assert_cmpint(c->siglip.heads, ==, 16);
  g_assert_cmpint(c->siglip.mlp_dim, ==, 4096);
  config_free_model(c);
  g_free(pp);
  g_free(pr);
  g_free(d);
}

static void vae_cls(JsonObject *r) { json_object_set_string_member(r, "_class_name", "UNet2DConditionModel"); }
static void vae_groups(JsonObject *r) { json_object_set_int_member(r, "norm_num_groups", 7); }
static void vae_boc_str(JsonObject *r) { json_object_set_string_member(r, "block_out_channels", "32"); }
static void vae_too_many(JsonObject *r) {
  JsonArray *a = json_array_new();
  for (int i = 0; i < 9; i++) json_array_add_int_element(a, 32);
  json_object_set_array_member(r, "block_out_channels", a);
}
static void vae_up_types(JsonObject *r) {
  JsonArray *a = json_array_new();
  json_array_add_string_element(a, "UpDecoderBlock2D");
  json_object_set_array_member(r, "up_block_types", a);
}
/* defaults, a shift_factor (ignored: JanusFlow decodes z / scaling_factor) and the two parts off */
static void vae_shift(JsonObject *r) {
  json_object_set_double_member(r, "shift_factor", 0.0609);
  json_object_set_boolean_member(r, "use_post_quant_conv", FALSE);
  json_object_set_boolean_member(r, "mid_block_add_attention", FALSE);
  json_object_remove_member(r, "scaling_factor");
  json_object_remove_member(r, "norm_num_groups");
  json_object_remove_member(r, "layers_per_block");
  JsonArray *a = json_array_new();
  json_array_add_int_element(a, 64);
  json_array_add_int_element(a, 64);
  json_object_set_array_member(r, "block_out_channels", a);
  json_object_remove_member(r, "up_block_types");
}
static void vae_act(JsonObject *r) { json_object_set_string_member(r, "act_fn", "relu"); }

static void test_vae(void) {
  char *d;
  d = vae_copy(vae_cls), expect_vae_error(d, JF_LOAD_ERROR_MISMATCH, "UNet2DConditionModel"), g_free(d);
  d = vae_copy(vae_groups), expect_vae_error(d, JF_LOAD_ERROR_FORMAT, "norm_num_groups"), g_free(d);
  d = vae_copy(vae_boc_str), expect_vae_error(d, JF_LOAD_ERROR_FORMAT, "block_out_channels"), g_free(d);
  d = vae_copy(vae_too_many), expect_vae_error(d, JF_LOAD_ERROR_LIMIT, "block_out_channels"), g_free(d);
  d = vae_copy(vae_up_types), expect_vae_error(d, JF_LOAD_ERROR_FORMAT, "up_block_types"), g_free(d);
  d = vae_copy(vae_act), expect_vae_error(d, JF_LOAD_ERROR_FORMAT, "act_fn"), g_free(d);
  d = vae_copy(vae_shift);
  GError *e = NULL;
  JfVaeConfig *v = config_load_vae(d, &e);
  g_assert_no_error(e);
  g_assert_false(v->post_quant_conv);
  g_assert_false(v->mid_attention);
  g_assert_cmpfloat(v->scaling_factor, ==, 0.18215f);
  g_assert_cmpint(v->norm_groups, ==, 32);
  g_assert_cmpint(v->layers_per_block, ==, 1);
  g_assert_cmpint(v->n_blocks, ==, 2);
  config_free_vae(v);
  char *p = g_build_filename(d, "config.json", NULL);
  g_unlink(p);
  expect_vae_error(d, JF_LOAD_ERROR_MISSING, "config.json: not found");
  g_free(p);
  g_free(d);
  /* the model folder given as the VAE */
  d = test_data_path("tiny/janusflow");
  expect_vae_error(d, JF_LOAD_ERROR_MISMATCH, "multi_modality");
  g_free(d);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  tmp_root = test_tmp_dir_new("jf-test-config-XXXXXX");
  g_test_add_func("/config/fixture-model", test_fixture_model);
  g_test_add_func("/config/fixture-vae", test_fixture_vae);
  g_test_add_func("/config/errors", test_errors);
  g_test_add_func("/config/defaults", test_defaults);
  g_test_add_func("/config/siglip-preset", test_siglip_preset);
  g_test_add_func("/config/vae", test_vae);
  int rc = g_test_run();
  test_rm_rf(tmp_root);
  g_free(tmp_root);
  return rc;
}
