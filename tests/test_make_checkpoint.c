/* jf-make-checkpoint --preset tiny: the folders load with config_load_model / config_load_vae /
 * safetensors_open, the tensor names and shapes equal the tiny fixture's (VAE: its decoder side),
 * the weights are deterministic per seed, and a tokenizer too large for the vocab is refused.
 * The tool's path comes as the first argument (meson) or from $JF_BUILD_DIR/tools. */
#include <math.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "safetensors.h"
#include "test_util.h"

static char *tool, *tmp_root;

/* Runs the tool with extra arguments (NULL-terminated); returns its exit status. */
static int run_tool(const char *first, ...) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, tool);
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *)) g_ptr_array_add(argv, (gpointer)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  char *out = NULL, *err = NULL;
  int status = -1;
  GError *e = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &e));
  g_assert_no_error(e);
  g_test_message("stdout: %s\nstderr: %s", out, err);
  g_free(out);
  g_free(err);
  g_ptr_array_free(argv, TRUE);
  return g_spawn_check_wait_status(status, NULL) ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Every tensor of `a` (restricted to names starting with one of `prefixes`, if given) is in `b`
 * with the same shape; and the counts match. */
static void same_tensors(const StFile *a, const StFile *b, const char *const *prefixes) {
  guint n = 0;
  for (guint i = 0; i < safetensors_n_tensors(a); i++) {
    const StTensor *t = safetensors_tensor(a, i);
    gboolean keep = prefixes == NULL;
    for (const char *const *p = prefixes; p && *p; p++) keep |= g_str_has_prefix(t->name, *p);
    if (!keep) continue;
    n++;
    const StTensor *u = safetensors_find(b, t->name);
    if (!u) g_error("%s missing from %s", t->name, safetensors_path(b));
    g_assert_cmpint(u->ndim, ==, t->ndim);
    for (int d = 0; d < t->ndim; d++) g_assert_cmpint(u->shape[d], ==, t->shape[d]);
  }
  g_assert_cmpuint(n, ==, safetensors_n_tensors(b));
}

static void test_tiny(void) {
  char *model = g_build_filename(tmp_root, "m1", NULL), *vae = g_build_filename(tmp_root, "v1", NULL);
  g_assert_cmpint(run_tool("--preset", "tiny", "--out", model, "--vae-out", vae, "--seed", "7", NULL), ==, 0);

  GError *e = NULL;
  JfModelConfig *c = config_load_model(model, &e);
  g_assert_no_error(e);
  char *fx = test_data_path("tiny/janusflow");
  JfModelConfig *f = config_load_model(fx, &e);
  g_assert_no_error(e);
  g_assert_cmpmem(&c->llm, sizeof c->llm, &f->llm, sizeof f->llm);
  g_assert_cmpmem(&c->siglip, sizeof c->siglip, &f->siglip, sizeof f->siglip);
  g_assert_cmpmem(&c->gen_enc, sizeof c->gen_enc, &f->gen_enc, sizeof f->gen_enc);
  g_assert_cmpmem(&c->gen_dec, sizeof c->gen_dec, &f->gen_dec, sizeof f->gen_dec);
  g_assert_cmpint(c->proc.num_image_tokens, ==, f->proc.num_image_tokens);
  g_assert_cmpstr(c->proc.image_start_tag, ==, f->proc.image_start_tag);
  g_assert_cmpstr(c->proc.bos_token, ==, f->proc.bos_token);
  config_free_model(c);
  config_free_model(f);

  JfVaeConfig *vc = config_load_vae(vae, &e);
  g_assert_no_error(e);
  char *fxv = test_data_path("tiny/vae");
  JfVaeConfig *fv = config_load_vae(fxv, &e);
  g_assert_no_error(e);
  g_assert_cmpmem(vc, sizeof *vc, fv, sizeof *fv);
  config_free_vae(vc);
  config_free_vae(fv);

  char *p = g_build_filename(model, "model.safetensors", NULL), *fp = g_build_filename(fx, "model.safetensors", NULL);
  StFile *st = safetensors_open(p, &e);
  g_assert_no_error(e);
  StFile *fst = safetensors_open(fp, &e);
  g_assert_no_error(e);
  same_tensors(fst, st, NULL);
  /* bf16, finite, norm weights near 1, matrices centred near 0 */
  for (guint i = 0; i < safetensors_n_tensors(st); i++) {
    const StTensor *t = safetensors_tensor(st, i);
    g_assert_true(t->dtype == ST_DTYPE_BF16);
    float *x = g_new(float, t->n_elements);
    safetensors_to_f32(t, x);
    double sum = 0;
    for (uint64_t k = 0; k < t->n_elements; k++) {
      g_assert_true(isfinite(x[k]));
      sum += x[k];
    }
    double mean = sum / (double)t->n_elements;
    if (g_str_has_suffix(t->name, "layernorm.weight") || g_str_has_suffix(t->name, "norm1.weight"))
      g_assert_cmpfloat(fabs(mean - 1.0), <, 0.05);
    if (g_str_has_suffix(t->name, "q_proj.weight")) g_assert_cmpfloat(fabs(mean), <, 0.05);
    g_free(x);
  }
  safetensors_close(fst);
  g_free(fp);

  char *vp = g_build_filename(vae, "diffusion_pytorch_model.safetensors", NULL);
  char *fvp = g_build_filename(fxv, "diffusion_pytorch_model.safetensors", NULL);
  StFile *vst = safetensors_open(vp, &e);
  g_assert_no_error(e);
  StFile *fvst = safetensors_open(fvp, &e);
  g_assert_no_error(e);
  static const char *const dec[] = {"decoder.", "post_quant_conv.", NULL};
  same_tensors(fvst, vst, dec);
  for (guint i = 0; i < safetensors_n_tensors(vst); i++) {
    const StTensor *t = safetensors_tensor(vst, i);
    g_assert_true(t->dtype == ST_DTYPE_F32);
    /* F32 values are bf16-representable: a bf16 upload is exact */
    float *x = g_new(float, t->n_elements);
    uint16_t *h = g_new(uint16_t, t->n_elements);
    safetensors_to_f32(t, x);
    safetensors_to_bf16(t, h);
    for (uint64_t k = 0; k < t->n_elements; k++) {
      uint32_t u;
      memcpy(&u, &x[k], 4);
      g_assert_cmphex(u, ==, (uint32_t)h[k] << 16);
    }
    g_free(x);
    g_free(h);
  }
  safetensors_close(vst);
  safetensors_close(fvst);

  /* the byte-level tokenizer is valid JSON with 256 byte tokens */
  char *tok = g_build_filename(model, "tokenizer.json", NULL);
  g_assert_true(g_file_test(tok, G_FILE_TEST_IS_REGULAR));
  g_free(tok);

  /* same seed -> same bytes, other seed -> other bytes */
  char *model2 = g_build_filename(tmp_root, "m2", NULL), *model3 = g_build_filename(tmp_root, "m3", NULL);
  g_assert_cmpint(run_tool("--preset", "tiny", "--out", model2, "--seed", "7", NULL), ==, 0);
  g_assert_cmpint(run_tool("--preset", "tiny", "--out", model3, "--seed", "8", NULL), ==, 0);
  char *p2 = g_build_filename(model2, "model.safetensors", NULL), *p3 = g_build_filename(model3, "model.safetensors", NULL);
  char *b1, *b2, *b3;
  gsize l1, l2, l3;
  g_assert_true(g_file_get_contents(p, &b1, &l1, NULL));
  g_assert_true(g_file_get_contents(p2, &b2, &l2, NULL));
  g_assert_true(g_file_get_contents(p3, &b3, &l3, NULL));
  g_assert_cmpmem(b1, l1, b2, l2);
  g_assert_cmpuint(l1, ==, l3);
  g_assert_true(memcmp(b1, b3, l1) != 0);
  g_free(b1), g_free(b2), g_free(b3);
  safetensors_close(st);
  g_free(p), g_free(p2), g_free(p3), g_free(vp), g_free(fvp);
  g_free(model), g_free(model2), g_free(model3), g_free(vae), g_free(fx), g_free(fxv);
}

static void test_tokenizer(void) {
  /* the fixture's tokenizer fits the tiny vocab and is copied as is */
  char *model = g_build_filename(tmp_root, "m4", NULL);
  char *src = test_data_path("tiny/janusflow/tokenizer.json");
  g_assert_cmpint(run_tool("--preset", "tiny", "--out", model, "--tokenizer", src, NULL), ==, 0);
  char *dst = g_build_filename(model, "tokenizer.json", NULL);
  char *a, *b;
  gsize la, lb;
  g_assert_true(g_file_get_contents(src, &a, &la, NULL));
  g_assert_true(g_file_get_contents(dst, &b, &lb, NULL));
  g_assert_cmpmem(a, la, b, lb);
  g_free(a), g_free(b), g_free(dst), g_free(src), g_free(model);

  /* ids beyond the vocab are refused */
  char *big = g_build_filename(tmp_root, "big-tokenizer.json", NULL);
  g_assert_true(g_file_set_contents(big, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 5000}}}", -1, NULL));
  model = g_build_filename(tmp_root, "m5", NULL);
  g_assert_cmpint(run_tool("--preset", "tiny", "--out", model, "--tokenizer", big, NULL), !=, 0);
  g_free(model);
  g_free(big);
}

static void test_usage(void) {
  g_assert_cmpint(run_tool("--preset", "huge", "--out", tmp_root, NULL), ==, 2);
  g_assert_cmpint(run_tool("--preset", "tiny", NULL), ==, 2);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  if (argc > 1) tool = g_strdup(argv[1]);
  else if (g_getenv("JF_BUILD_DIR")) tool = g_build_filename(g_getenv("JF_BUILD_DIR"), "tools", "jf-make-checkpoint", NULL);
  if (!tool || !g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr("jf-make-checkpoint not found (pass its path or set JF_BUILD_DIR)\n");
    return 1;
  }
  tmp_root = test_tmp_dir_new("jf-test-mkckpt-XXXXXX");
  g_test_add_func("/make-checkpoint/tiny", test_tiny);
  g_test_add_func("/make-checkpoint/tokenizer", test_tokenizer);
  g_test_add_func("/make-checkpoint/usage", test_usage);
  int rc = g_test_run();
  test_rm_rf(tmp_root);
  g_free(tmp_root);
  g_free(tool);
  return rc;
}
