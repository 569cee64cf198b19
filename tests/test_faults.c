/* GPU faults, as the GUI meets them through the engine: the Nth device allocation fails, or a
 * submit reports device-lost. The engine returns an error value, frees what it made, and works
 * again (a new context after device-lost). Run under ASan/LSan in CI for the "no leak" part. The
 * CLI side: the same switches through the environment give exit status 1 and one clear line. */
#include <glib.h>
#include <string.h>
#include <sys/wait.h>
#include "chat.h"
#include "generate.h"
#include "npy.h"
#include "test_util.h"

static VkrtContext *new_ctx(void)
{
  GError *err = NULL;
  VkrtOptions opt = { .validate = true };
  VkrtContext *ctx = vkrt_context_new(&opt, &err);
  g_assert_no_error(err);
  return ctx;
}

static JfModel *load(VkrtContext *ctx, GError **err)
{
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae");
  JfModel *m = model_load(ctx, dir, vae, JF_LOAD_ALL, NULL, NULL, err);
  g_free(dir);
  g_free(vae);
  return m;
}

static gboolean chat_once(JfModel *m, char **answer, GError **err)
{
  JfChat *chat = chat_new(m, NULL, 0, err);
  if (!chat)
    return FALSE;
  JfSampling s = sampler_defaults();
  s.temperature = 0;
  s.max_new_tokens = 3;
  gboolean ok = chat_send(chat, "Hello", NULL, 0, &s, NULL, NULL, NULL, answer, err);
  chat_free(chat);
  return ok;
}

static void test_alloc_failures(void)
{
  VkrtContext *ctx = new_ctx();
  GError *err = NULL;
  /* fail each of the first allocations in turn: loading must fail cleanly every time */
  for (uint32_t n = 1; n <= 40; n += 3) {
    vkrt_context_fail_alloc_after(ctx, n);
    JfModel *m = load(ctx, &err);
    if (m) {
      /* fewer allocations than n: the failure lands later, in the chat */
      char *a = NULL;
      gboolean ok = chat_once(m, &a, &err);
      g_free(a);
      model_free(m);
      if (ok)
        continue;
    }
    g_assert_error(err, VKRT_ERROR, VKRT_ERROR_OOM);
    g_clear_error(&err);
    g_assert_cmpuint(vkrt_context_allocated(ctx), ==, 0);  /* everything released */
  }
  vkrt_context_fail_alloc_after(ctx, 0);
  JfModel *m = load(ctx, &err);
  g_assert_no_error(err);
  char *a = NULL;
  g_assert_true(chat_once(m, &a, &err));
  g_assert_no_error(err);
  g_free(a);
  model_free(m);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
}

static void test_device_lost(void)
{
  GError *err = NULL;
  char *ref = NULL, *a = NULL;
  {
    VkrtContext *ctx = new_ctx();
    JfModel *m = load(ctx, &err);
    g_assert_no_error(err);
    g_assert_true(chat_once(m, &ref, &err));
    g_assert_no_error(err);

    vkrt_context_fail_submit_after(ctx, 2);
    g_assert_false(chat_once(m, &a, &err));
    g_assert_error(err, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST);
    g_clear_error(&err);

    /* generation on the lost device fails too, without crashing */
    char *np = test_data_path("tiny/inputs/noise.npy");
    NpyArray *noise = npy_read(np, &err);
    g_assert_no_error(err);
    g_free(np);
    JfGen *gen = gen_new(m, 1, &err);
    if (gen) {
      JfGenParams p = gen_params_defaults();
      p.prompt = "a cube";
      p.steps = 2;
      p.noise = noise->data;
      JfImage **imgs = NULL;
      g_assert_false(gen_run(gen, &p, NULL, NULL, NULL, NULL, &imgs, &err));
      gen_free(gen);
    }
    g_assert_error(err, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST);
    g_clear_error(&err);
    npy_array_free(noise);
    model_free(m);
    vkrt_context_free(ctx);
  }
  /* what the GUI does after device-lost: a new context and model, same answers */
  VkrtContext *ctx = new_ctx();
  JfModel *m = load(ctx, &err);
  g_assert_no_error(err);
  g_assert_true(chat_once(m, &a, &err));
  g_assert_no_error(err);
  g_assert_cmpstr(a, ==, ref);
  g_free(a);
  g_free(ref);
  model_free(m);
  vkrt_context_free(ctx);
}

static void run_cli(const char *var, const char *value, const char *expect)
{
  char *model = test_data_path("tiny/janusflow");
  char *argv[] = { (char *)g_getenv("JF_JANUSFLOW"), "chat", "--model", model, "--prompt", "Hello",
                   "--max-new-tokens", "3", "--temperature", "0", NULL };
  char **env = g_environ_setenv(g_get_environ(), var, value, TRUE);
  int status = 0;
  char *out = NULL, *err_text = NULL;
  GError *err = NULL;
  g_spawn_sync(NULL, argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err_text, &status, &err);
  g_assert_no_error(err);
  g_test_message("%s=%s: status %d, stderr: %s", var, value, status, err_text);
  g_assert_true(WIFEXITED(status));
  g_assert_cmpint(WEXITSTATUS(status), ==, 1);
  g_assert_true(g_str_has_prefix(err_text, "janusflow: "));
  g_assert_nonnull(strstr(err_text, expect));
  g_assert_cmpint(strchr(err_text, '\n') - err_text, ==, (int)strlen(err_text) - 1);  /* one line */
  g_strfreev(env);
  g_free(out);
  g_free(err_text);
  g_free(model);
}

static void test_cli(void)
{
  run_cli("JANUSFLOW_FAIL_ALLOC", "5", "out of");
  run_cli("JANUSFLOW_FAIL_SUBMIT", "1", "device was lost");
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/faults/alloc", test_alloc_failures);
  g_test_add_func("/faults/device-lost", test_device_lost);
  g_test_add_func("/faults/cli", test_cli);
  return g_test_run();
}
