/* The chat session on the tiny fixture: multi-turn with images, KV reuse between turns, images
 * given in memory, errors that leave the conversation usable. */
#include <glib.h>
#include <string.h>
#include "chat.h"
#include "image.h"

static VkrtContext *ctx;
static JfModel *model;

static char *data_path(const char *rel)
{
  return g_build_filename(g_getenv("JF_TEST_DATA"), rel, NULL);
}

static JfSampling greedy(int n)
{
  JfSampling s = sampler_defaults();
  s.temperature = 0;
  s.max_new_tokens = n;
  return s;
}

static JfImage *load_fixture_image(void)
{
  char *p = data_path("tiny/inputs/chat.png");
  GError *err = NULL;
  JfImage *img = image_load(p, &err);
  g_assert_no_error(err);
  g_free(p);
  return img;
}

static gboolean count_pieces(const char *piece, void *user)
{
  (void)piece;
  (*(int *)user)++;
  return TRUE;
}

static void test_multi_turn(void)
{
  GError *err = NULL;
  JfChat *chat = chat_new(model, NULL, 0, &err);
  g_assert_no_error(err);
  JfImage *img = load_fixture_image();
  /* a second image made in memory, as the GUI hands over a generated picture */
  JfImage *made = image_new(40, 70);
  for (int i = 0; i < 40 * 70; i++) {
    made->rgba[i * 4] = (uint8_t)(i * 7);
    made->rgba[i * 4 + 1] = (uint8_t)(i * 3);
    made->rgba[i * 4 + 2] = 200;
    made->rgba[i * 4 + 3] = 255;
  }
  JfSampling s = greedy(6);
  const JfImage *first[] = { img };
  char *a1 = NULL, *a2 = NULL, *b1 = NULL, *b2 = NULL;
  int pieces = 0;
  vkrt_context_reset_flops(ctx);
  g_assert_true(chat_send(chat, "What is this?", first, 1, &s, count_pieces, &pieces, NULL, &a1, &err));
  g_assert_no_error(err);
  uint64_t flops1 = vkrt_context_flops(ctx);
  uint32_t n1 = chat_n_tokens(chat);
  g_assert_cmpuint(n1, >, 16);
  g_assert_cmpint(pieces, >, 0);

  const JfImage *second[] = { made };
  vkrt_context_reset_flops(ctx);
  g_assert_true(chat_send(chat, "And this one, compared with the first?", second, 1, &s, NULL, NULL, NULL, &a2, &err));
  g_assert_no_error(err);
  uint64_t flops2 = vkrt_context_flops(ctx);
  uint32_t n2 = chat_n_tokens(chat);
  g_assert_cmpuint(n2, >, n1);
  /* the second turn feeds only its own tokens: recomputing the first turn would cost more than
   * the whole first turn did */
  g_test_message("turn 1: %u tokens, %" G_GUINT64_FORMAT " FLOP; turn 2: %u tokens, %" G_GUINT64_FORMAT " FLOP",
                 n1, flops1, n2 - n1, flops2);
  g_assert_cmpuint(flops2, <, flops1 * (uint64_t)(n2 - n1) / n1 * 2 + flops1 / 2);

  /* the same conversation again from scratch gives the same answers (greedy, deterministic) */
  chat_reset(chat);
  g_assert_cmpuint(chat_n_tokens(chat), ==, 0);
  g_assert_true(chat_send(chat, "What is this?", first, 1, &s, NULL, NULL, NULL, &b1, &err));
  g_assert_true(chat_send(chat, "And this one, compared with the first?", second, 1, &s, NULL, NULL, NULL, &b2, &err));
  g_assert_no_error(err);
  g_assert_cmpstr(a1, ==, b1);
  g_assert_cmpstr(a2, ==, b2);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);

  g_free(a1); g_free(a2); g_free(b1); g_free(b2);
  image_free(img);
  image_free(made);
  chat_free(chat);
}

static void test_errors_keep_conversation(void)
{
  GError *err = NULL;
  JfChat *chat = chat_new(model, NULL, 128, &err);  /* small: the text takes ~70 tokens, one image 18 */
  g_assert_no_error(err);
  JfSampling s = greedy(3);
  char *a = NULL;
  g_assert_false(chat_send(chat, "   ", NULL, 0, &s, NULL, NULL, NULL, &a, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error(&err);

  JfImage *img = load_fixture_image();
  const JfImage *many[] = { img, img, img, img, img };
  g_assert_false(chat_send(chat, "Compare them", many, 5, &s, NULL, NULL, NULL, &a, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "image(s) fit"));
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(chat), ==, 0);

  /* the session goes on after the errors */
  GCancellable *cancel = g_cancellable_new();
  g_cancellable_cancel(cancel);
  g_assert_false(chat_send(chat, "Hi", NULL, 0, &s, NULL, NULL, cancel, &a, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&err);
  g_object_unref(cancel);
  g_assert_true(chat_send(chat, "Hi", NULL, 0, &s, NULL, NULL, NULL, &a, &err));
  g_assert_no_error(err);
  g_free(a);
  image_free(img);
  chat_free(chat);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  GError *err = NULL;
  VkrtOptions opt = { .validate = true };
  ctx = vkrt_context_new(&opt, &err);
  g_assert_no_error(err);
  char *dir = data_path("tiny/janusflow");
  model = model_load(ctx, dir, NULL, JF_LOAD_LLM | JF_LOAD_VISION, NULL, NULL, &err);
  g_assert_no_error(err);
  g_free(dir);
  g_test_add_func("/chat/multi-turn", test_multi_turn);
  g_test_add_func("/chat/errors", test_errors_keep_conversation);
  int rc = g_test_run();
  model_free(model);
  vkrt_context_free(ctx);
  return rc;
}
