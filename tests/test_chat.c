/* The chat session on the tiny fixture: multi-turn with images, KV reuse between turns, images
 * given in memory, errors that leave the conversation usable, past turns replayed into a new
 * conversation (a saved chat continued). */
#include <glib.h>
#include <string.h>
#include <glib/gstdio.h>
#include "chat.h"
#include "image.h"
#include "npy.h"
#include "test_util.h"

static VkrtContext *ctx;
static JfModel *model;

static JfSampling greedy(int n)
{
  JfSampling s = sampler_defaults();
  s.temperature = 0;
  s.max_new_tokens = n;
  return s;
}

static JfImage *load_fixture_image(void)
{
  char *p = test_data_path("tiny/inputs/chat.png");
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

/* Runs turn 1 of a conversation with its ids dumped; returns the answer and the ids sampled for
 * it without the EOS that ended it (what chat_replay_turn re-creates from the text). */
static char *send_dumped(JfChat *chat, const char *q, const JfImage *const *imgs, int n, const JfSampling *s,
                         GArray **sampled)
{
  GError *err = NULL;
  char *dir = test_tmp_dir_new("jf-test-chat-XXXXXX");
  chat_set_dump_dir(chat, dir);
  char *answer = NULL;
  g_assert_true(chat_send(chat, q, imgs, n, s, NULL, NULL, NULL, &answer, &err));
  g_assert_no_error(err);
  chat_set_dump_dir(chat, NULL);
  const char *files[] = { "prompt_ids.npy", "image_embeds.npy", "logits_0.npy", "output_ids.npy" };
  char *out = g_build_filename(dir, "output_ids.npy", NULL);
  NpyArray *a = npy_read(out, &err);
  g_assert_no_error(err);
  g_assert_cmpint(a->dtype, ==, NPY_I32);
  *sampled = g_array_new(FALSE, FALSE, sizeof(int32_t));
  g_array_append_vals(*sampled, a->data, (guint)a->n_elements);
  if ((*sampled)->len && g_array_index(*sampled, int32_t, (*sampled)->len - 1) == model->ids.eos)
    g_array_set_size(*sampled, (*sampled)->len - 1);
  npy_array_free(a);
  g_free(out);
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    char *f = g_build_filename(dir, files[i], NULL);
    g_unlink(f);
    g_free(f);
  }
  g_rmdir(dir);
  g_free(dir);
  return answer;
}

static gboolean same_ids(GArray *a, GArray *b)
{
  return a->len == b->len && memcmp(a->data, b->data, a->len * sizeof(int32_t)) == 0;
}

/* Conversation A answers q1 then q2; conversation B gets q1 and A's answer replayed, then q2:
 * B must be where A was (same size) and answer q2 as A did. That holds when the answer's text
 * encodes back to the ids sampled for it (else the two differ by design, see chat.h), so the
 * first of the candidate questions q1s whose answer does is used. */
static void check_replay(const char *const *q1s, const JfImage *const *imgs, int n_images, const char *q2)
{
  GError *err = NULL;
  JfSampling s = greedy(8);
  JfChat *a = chat_new(model, NULL, 0, &err), *b = chat_new(model, NULL, 0, &err);
  g_assert_no_error(err);
  const char *q1 = NULL;
  char *a1 = NULL;
  for (int i = 0; q1s[i] && !q1; i++) {
    GArray *sampled = NULL, *again = g_array_new(FALSE, FALSE, sizeof(int32_t));
    chat_reset(a);
    a1 = send_dumped(a, q1s[i], imgs, n_images, &s, &sampled);
    g_assert_true(tokenizer_encode(model->tok, a1, -1, FALSE, again, &err));
    gboolean same = same_ids(sampled, again);
    g_test_message("\"%s\" -> \"%s\": %u ids, %s", q1s[i], a1, sampled->len,
                   same ? "the text encodes back to them" : "the text encodes to other ids");
    if (same)
      q1 = q1s[i];
    else
      g_clear_pointer(&a1, g_free);
    g_array_unref(sampled);
    g_array_unref(again);
  }
  g_assert_nonnull(q1);
  uint32_t n1 = chat_n_tokens(a);
  char *a2 = NULL;
  g_assert_true(chat_send(a, q2, NULL, 0, &s, NULL, NULL, NULL, &a2, &err));
  g_assert_no_error(err);
  uint32_t n2 = chat_n_tokens(a);

  uint32_t measured = 0;
  g_assert_true(chat_measure_turn(b, q1, n_images, a1, TRUE, &measured, &err));
  g_assert_no_error(err);
  g_assert_true(chat_replay_turn(b, q1, imgs, n_images, a1, NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpuint(chat_n_tokens(b), ==, n1);
  g_assert_cmpuint(measured, ==, n1);
  char *b2 = NULL;
  g_assert_true(chat_send(b, q2, NULL, 0, &s, NULL, NULL, NULL, &b2, &err));
  g_assert_no_error(err);
  g_test_message("answer 2: \"%s\" / after the replay: \"%s\"", a2, b2);
  g_assert_cmpstr(b2, ==, a2);
  g_assert_cmpuint(chat_n_tokens(b), ==, n2);

  /* a later turn measures as what it adds: replaying q2 after q1 grows B by exactly that */
  chat_reset(b);
  g_assert_true(chat_replay_turn(b, q1, imgs, n_images, a1, NULL, &err));
  uint32_t before = chat_n_tokens(b), later = 0;
  g_assert_true(chat_measure_turn(b, q2, 0, a2, FALSE, &later, &err));
  g_assert_true(chat_replay_turn(b, q2, NULL, 0, a2, NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpuint(chat_n_tokens(b), ==, before + later);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);

  g_free(a1); g_free(a2); g_free(b2);
  chat_free(a);
  chat_free(b);
}

static const char *const candidates[] = {
  "Hello, who are you?", "What is in this picture?", "Describe it.", "What do you see?", "Hi!",
  "What colour is it?", "Tell me about this.", "Is this a cat?", "Where was this taken?", "Explain.",
  "What is this?", "Look closely.", NULL,
};

static void test_replay_text(void)
{
  check_replay(candidates, NULL, 0, "Tell me more.");
}

static void test_replay_image(void)
{
  JfImage *img = load_fixture_image();
  const JfImage *imgs[] = { img };
  check_replay(candidates, imgs, 1, "And what colour is it?");
  image_free(img);
}

/* A replay that does not fit says how much it needed and leaves the conversation untouched: the
 * next answer is the one a conversation without the failed replay gives. */
static void test_replay_no_space(void)
{
  GError *err = NULL;
  JfSampling s = greedy(4);
  JfChat *chat = chat_new(model, NULL, 160, &err), *plain = chat_new(model, NULL, 160, &err);
  g_assert_no_error(err);
  char *a = NULL, *p = NULL;
  g_assert_true(chat_replay_turn(chat, "Hi", NULL, 0, "Hello there.", NULL, &err));
  g_assert_true(chat_replay_turn(plain, "Hi", NULL, 0, "Hello there.", NULL, &err));
  g_assert_no_error(err);
  uint32_t n0 = chat_n_tokens(chat);
  GString *longer = g_string_new(NULL);
  for (int i = 0; i < 40; i++)
    g_string_append(longer, "and then the story went on a little more, ");
  g_assert_false(chat_replay_turn(chat, "Tell me a story", NULL, 0, longer->str, NULL, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "context of 160 tokens"));
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(chat), ==, n0);
  /* also as the first turn of an empty conversation */
  JfChat *empty = chat_new(model, NULL, 160, &err);
  g_assert_false(chat_replay_turn(empty, "Tell me a story", NULL, 0, longer->str, NULL, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(empty), ==, 0);
  chat_free(empty);

  g_assert_true(chat_send(chat, "Go on", NULL, 0, &s, NULL, NULL, NULL, &a, &err));
  g_assert_true(chat_send(plain, "Go on", NULL, 0, &s, NULL, NULL, NULL, &p, &err));
  g_assert_no_error(err);
  g_assert_cmpstr(a, ==, p);
  g_assert_cmpuint(chat_n_tokens(chat), ==, chat_n_tokens(plain));

  /* bad input is refused as chat_send refuses it */
  g_assert_false(chat_replay_turn(chat, "  ", NULL, 0, "x", NULL, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error(&err);
  g_assert_false(chat_replay_turn(chat, "look <image_placeholder>", NULL, 0, "x", NULL, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(chat), ==, chat_n_tokens(plain));

  g_string_free(longer, TRUE);
  g_free(a);
  g_free(p);
  chat_free(chat);
  chat_free(plain);
}

static void test_replay_cancel(void)
{
  GError *err = NULL;
  JfChat *chat = chat_new(model, NULL, 0, &err);
  g_assert_no_error(err);
  GCancellable *cancel = g_cancellable_new();
  g_cancellable_cancel(cancel);
  JfImage *img = load_fixture_image();
  const JfImage *imgs[] = { img };
  /* cancelled before the image is encoded, and (as a later turn) before the prefill */
  g_assert_false(chat_replay_turn(chat, "What is this?", imgs, 1, "A picture.", cancel, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(chat), ==, 0);
  g_assert_true(chat_replay_turn(chat, "What is this?", imgs, 1, "A picture.", NULL, &err));
  g_assert_no_error(err);
  uint32_t n = chat_n_tokens(chat);
  g_assert_false(chat_replay_turn(chat, "And now?", NULL, 0, "Still a picture.", cancel, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&err);
  g_assert_cmpuint(chat_n_tokens(chat), ==, n);
  /* still usable */
  g_assert_true(chat_replay_turn(chat, "And now?", NULL, 0, "Still a picture.", NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpuint(chat_n_tokens(chat), >, n);
  g_object_unref(cancel);
  image_free(img);
  chat_free(chat);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* A decode token costs one queue submit, with greedy and with top-k sampling, whether device
 * memory is mapped or not (JANUSFLOW_HOST_MAPPED=0 runs this file the way discrete GPUs without
 * ReBAR work): the ids, positions and samples the host touches every token live in host-visible
 * buffers, so no transfer submits add to it. */
static void test_submits_per_token(void)
{
  GError *err = NULL;
  for (int sampled = 0; sampled < 2; sampled++) {
    uint64_t per_turn[2];
    uint32_t held[2];
    const int n_new[2] = { 1, 6 };
    char *answers[2];
    for (int k = 0; k < 2; k++) {
      JfChat *chat = chat_new(model, NULL, 0, &err);
      g_assert_no_error(err);
      JfSampling s = greedy(n_new[k]);
      if (sampled) {
        s.temperature = 1.0f;
        s.top_k = 8;
        s.top_p = 1.0f;
        s.seed = 3;
      }
      uint64_t n0 = vkrt_context_submits(ctx);
      g_assert_true(chat_send(chat, "Count to ten.", NULL, 0, &s, NULL, NULL, NULL, &answers[k], &err));
      g_assert_no_error(err);
      per_turn[k] = vkrt_context_submits(ctx) - n0;
      held[k] = chat_n_tokens(chat);
      chat_free(chat);
    }
    g_test_message("%s: %" G_GUINT64_FORMAT " submits for 1 token, %" G_GUINT64_FORMAT " for 6 (memory %s)",
                   sampled ? "top-k" : "greedy", per_turn[0], per_turn[1],
                   vkrt_context_host_mapped(ctx) ? "mapped" : "through staging");
    /* the longer answer's extra decode steps: the extra tokens it left in the conversation, one
     * more if it ended with its own EOS (which is not fed again) */
    uint64_t steps = held[1] - held[0], extra = per_turn[1] - per_turn[0];
    g_assert_true(extra == steps || extra == steps + 1);
    g_assert_cmpuint(extra, <=, 5);
    g_free(answers[0]);
    g_free(answers[1]);
  }
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  GError *err = NULL;
  ctx = test_context_new(true);
  g_assert_nonnull(ctx);
  char *dir = test_data_path("tiny/janusflow");
  model = model_load(ctx, dir, NULL, JF_LOAD_LLM | JF_LOAD_VISION, NULL, NULL, &err);
  g_assert_no_error(err);
  g_free(dir);
  g_test_add_func("/chat/multi-turn", test_multi_turn);
  g_test_add_func("/chat/submits-per-token", test_submits_per_token);
  g_test_add_func("/chat/errors", test_errors_keep_conversation);
  g_test_add_func("/chat/replay-text", test_replay_text);
  g_test_add_func("/chat/replay-image", test_replay_image);
  g_test_add_func("/chat/replay-no-space", test_replay_no_space);
  g_test_add_func("/chat/replay-cancel", test_replay_cancel);
  int rc = g_test_run();
  model_free(model);
  vkrt_context_free(ctx);
  return rc;
}
