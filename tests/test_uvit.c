/* The generation-side UViT modules (app/uvit.h) against the tiny fixture's float32 reference
 * dumps: t_emb, encoder tokens, decoder input, v_cond / v_uncond, the CFG velocity and the Euler
 * update, at step 0 (t = 0) and step 2 (t = 666.67, large sinusoid arguments; tests/data/gen).
 * Also the strided LLM-facing layout and a batch of two images with different t. */
#include "uvit.h"
#include "config.h"
#include "npy.h"
#include "ops_gen.h"
#include "test_util.h"
#include <math.h>

static VkrtContext *ctx;
static JfModelConfig *cfg;
static StFile *st;
static JfUvit *uv;
static char *data_dir;

/* Tolerance: the reference is float32 and our weights are its weights exactly, so only fp32
 * rounding-order differences remain (~1e-6); the fixture's own grading tolerance is 2e-2. */
#define TOL 1e-3

static void expect(const char *what, const float *got, const float *want, size_t n)
{
  double e = test_rel_l2(got, want, n, NULL);
  g_test_message("%s: rel-L2 %.3g", what, e);
  g_assert_cmpfloat(e, <, TOL);
}

static float *load(const char *rel, size_t n_expected)
{
  return test_npy_load_floats(data_dir, rel, n_expected);
}

static VkrtBuffer *buf(const float *data, uint64_t floats)
{
  GError *err = NULL;
  VkrtBuffer *b = vkrt_buffer_new(ctx, floats * 4, &err);
  g_assert_no_error(err);
  if (data)
    g_assert_true(vkrt_buffer_write(b, 0, data, floats * 4, &err));
  else
    g_assert_true(vkrt_buffer_fill(b, 0, floats * 4, 0, &err));
  g_assert_no_error(err);
  return b;
}

static float *read_back(VkrtTensor t, uint64_t floats)
{
  GError *err = NULL;
  float *d = g_new(float, floats);
  g_assert_true(vkrt_buffer_read(t.buf, t.offset, d, floats * 4, &err));
  g_assert_no_error(err);
  return d;
}

static void submit(VkrtSeq *seq)
{
  GError *err = NULL;
  gboolean ok = vkrt_seq_submit(seq, &err);
  g_assert_no_error(err);
  g_assert_true(ok);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* [rows, hw, c] channel-last -> [rows, c, hw] */
static float *to_nchw(const float *x, uint32_t rows, uint32_t hw, uint32_t c)
{
  float *y = g_new(float, (size_t)rows * hw * c);
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t p = 0; p < hw; p++)
      for (uint32_t k = 0; k < c; k++)
        y[((size_t)r * c + k) * hw + p] = x[((size_t)r * hw + p) * c + k];
  return y;
}

typedef struct {
  const char *z, *hidden, *t_emb, *z_emb, *dec_input, *v_cond, *v_uncond, *velocity, *z_next;
  float t;       /* 0..1000 */
  int z_next_index;  /* index into latents.npy, or -1: z_next is a whole file */
} StepCase;

/* One Euler step of gen_cfg2 through the UViT (the LLM hidden states come from the dump).
 * strided: lay tokens and hidden states out as the LLM does ([t_emb | tokens] rows, hidden
 * states at the end of longer rows). */
static void run_step(const StepCase *c, gboolean strided)
{
  const uint32_t T = uvit_n_tokens(uv), H = uvit_hidden(uv), LC = uvit_latent_channels(uv);
  const uint32_t hw = 64, per = LC * hw;
  g_assert_cmpuint(T, ==, 16);
  g_assert_cmpuint(H, ==, 64);
  float *z = load(c->z, per), *hid = load(c->hidden, 2 * T * H);
  float *t_emb_w = load(c->t_emb, 2 * H), *z_emb_w = load(c->z_emb, 2 * T * H);
  float *v_c = load(c->v_cond, per), *v_u = load(c->v_uncond, per), *vel_w = load(c->velocity, per);
  float *z_next;
  if (c->z_next_index >= 0) {
    float *all = load(c->z_next, 3 * per);
    z_next = g_memdup2(all + (size_t)c->z_next_index * per, per * 4);
    g_free(all);
  } else {
    z_next = load(c->z_next, per);
  }
  /* t_emb and the encoder output are the same for both CFG rows */
  g_assert_cmpfloat(test_rel_l2(t_emb_w, t_emb_w + H, H, NULL), ==, 0.0);

  /* LLM-like layout: input rows [t_emb | T tokens] (stride T+1 rows of H), hidden rows of T+3 */
  uint64_t tok_stride = strided ? (uint64_t)(T + 1) * H : 0, hid_stride = strided ? (uint64_t)(T + 3) * H : 0;
  float *hid_in = hid;
  if (strided) {
    hid_in = g_new0(float, 2 * (T + 3) * H);
    for (int r = 0; r < 2; r++)
      memcpy(hid_in + (size_t)r * (T + 3) * H + 3 * H, hid + (size_t)r * T * H, (size_t)T * H * 4);
  }
  VkrtBuffer *bz = buf(z, per), *bt = buf(NULL, 2 * H), *btok = buf(NULL, (T + 1) * H);
  VkrtBuffer *bh = buf(hid_in, strided ? 2 * (T + 3) * H : 2 * T * H), *bv = buf(NULL, 2 * per);
  VkrtBuffer *bx0 = buf(NULL, per), *bvo = buf(NULL, per);
  VkrtTensor tok = strided ? vkrt_tensor_sub(vkrt_tensor(btok), H * 4, (uint64_t)T * H * 4) : vkrt_tensor(btok);
  VkrtTensor hidden = strided ? vkrt_tensor_sub(vkrt_tensor(bh), 3 * H * 4, vkrt_buffer_size(bh) - 3 * H * 4)
                              : vkrt_tensor(bh);

  GError *err = NULL;
  float t = c->t;
  g_assert_true(uvit_set_time(uv, &t, 1, &err));
  g_assert_no_error(err);
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  vkrt_seq_begin(seq);
  uvit_record_time_embed(uv, seq, 1, vkrt_tensor(bt));
  uvit_record_encode(uv, seq, 1, vkrt_tensor(bz), vkrt_tensor(bt), tok, tok_stride);
  uvit_record_decode(uv, seq, 2, hidden, hid_stride, vkrt_tensor(bt), 1, vkrt_tensor(bv));
  float prm[3] = { 2.0f, 1.0f / 3.0f, t / 1000.0f };  /* cfg, dt, t (read from memory by the op) */
  VkrtBuffer *bp = buf(prm, 3);
  vkrt_op_cfg_euler(seq, vkrt_tensor(bz), vkrt_tensor(bv), vkrt_tensor(bp), 1, per,
                    &(VkrtCfgEulerOut){ .x0 = vkrt_tensor(bx0), .v_out = vkrt_tensor(bvo) });
  submit(seq);
  vkrt_buffer_free(bp);
  vkrt_seq_free(seq);

  char *pre = g_strdup_printf("t=%g%s", t, strided ? " strided" : "");
  char *w;
  float *got = read_back(vkrt_tensor(bt), H);
  expect((w = g_strdup_printf("%s t_emb", pre)), got, t_emb_w, H);
  g_free(w); g_free(got);
  got = read_back(tok, (uint64_t)T * H);
  expect((w = g_strdup_printf("%s encoder tokens (z_emb)", pre)), got, z_emb_w, (size_t)T * H);
  g_free(w); g_free(got);
  uint32_t cd = 0;
  VkrtTensor di = uvit_dec_input(uv, &cd);
  float *dnhwc = read_back(di, 2ull * T * cd), *dnchw = to_nchw(dnhwc, 2, T, cd);
  float *dec_w = load(c->dec_input, 2 * T * cd);
  expect((w = g_strdup_printf("%s dec_input", pre)), dnchw, dec_w, 2ull * T * cd);
  g_free(w); g_free(dnhwc); g_free(dnchw); g_free(dec_w);
  got = read_back(vkrt_tensor(bv), 2 * per);
  expect((w = g_strdup_printf("%s v_cond", pre)), got, v_c, per);
  g_free(w);
  expect((w = g_strdup_printf("%s v_uncond", pre)), got + per, v_u, per);
  g_free(w); g_free(got);
  got = read_back(vkrt_tensor(bvo), per);
  expect((w = g_strdup_printf("%s CFG velocity", pre)), got, vel_w, per);
  g_free(w); g_free(got);
  got = read_back(vkrt_tensor(bz), per);
  expect((w = g_strdup_printf("%s z after the step", pre)), got, z_next, per);
  g_free(w); g_free(got);
  /* x0 = z + (1 - t) v from the z before the step */
  got = read_back(vkrt_tensor(bx0), per);
  float *x0w = g_new(float, per);
  for (uint32_t i = 0; i < per; i++)
    x0w[i] = z[i] + (1.0f - t / 1000.0f) * vel_w[i];
  expect((w = g_strdup_printf("%s x0 estimate", pre)), got, x0w, per);
  g_free(w); g_free(got); g_free(x0w);
  g_free(pre);

  vkrt_buffer_free(bz); vkrt_buffer_free(bt); vkrt_buffer_free(btok); vkrt_buffer_free(bh);
  vkrt_buffer_free(bv); vkrt_buffer_free(bx0); vkrt_buffer_free(bvo);
  if (strided)
    g_free(hid_in);
  g_free(z); g_free(hid); g_free(t_emb_w); g_free(z_emb_w); g_free(v_c); g_free(v_u); g_free(vel_w); g_free(z_next);
}

static const StepCase step0 = {
  "tiny/inputs/noise.npy", "tiny/expected/gen_cfg2/debug/llm_last_hidden_0.npy",
  "tiny/expected/gen_cfg2/debug/t_emb_0.npy", "tiny/expected/gen_cfg2/debug/z_emb_0.npy",
  "tiny/expected/gen_cfg2/debug/dec_input_0.npy", "tiny/expected/gen_cfg2/debug/v_cond_0.npy",
  "tiny/expected/gen_cfg2/debug/v_uncond_0.npy", "tiny/expected/gen_cfg2/velocity_0.npy",
  "tiny/expected/gen_cfg2/debug/latents.npy", 0.0f, 0,
};
static const StepCase step2 = {
  "gen/step2_z.npy", "gen/step2_llm_last_hidden.npy", "gen/step2_t_emb.npy", "gen/step2_z_emb.npy",
  "gen/step2_dec_input.npy", "gen/step2_v_cond.npy", "gen/step2_v_uncond.npy", "gen/step2_velocity.npy",
  "tiny/expected/gen_cfg2/debug/latents.npy", 2000.0f / 3.0f, 2,
};

static void test_step0(void) { run_step(&step0, FALSE); }
static void test_step2(void) { run_step(&step2, FALSE); }
static void test_step0_strided(void) { run_step(&step0, TRUE); }

/* Two images in one batch, at different t: rows [cond 0, cond 1, uncond 0, uncond 1]. */
static void test_batch2(void)
{
  const uint32_t T = 16, H = 64, per = 256;
  const StepCase *c[2] = { &step0, &step2 };
  float *z = g_new(float, 2 * per), *hid = g_new(float, 4 * T * H);
  for (int i = 0; i < 2; i++) {
    float *zi = load(c[i]->z, per), *hi = load(c[i]->hidden, 2 * T * H);
    memcpy(z + i * per, zi, per * 4);
    memcpy(hid + (size_t)i * T * H, hi, (size_t)T * H * 4);                /* cond row i */
    memcpy(hid + (size_t)(2 + i) * T * H, hi + (size_t)T * H, (size_t)T * H * 4);  /* uncond row i */
    g_free(zi); g_free(hi);
  }
  VkrtBuffer *bz = buf(z, 2 * per), *bt = buf(NULL, 2 * H), *btok = buf(NULL, 2 * T * H), *bh = buf(hid, 4 * T * H);
  VkrtBuffer *bv = buf(NULL, 4 * per);
  float t[2] = { step0.t, step2.t };
  GError *err = NULL;
  g_assert_true(uvit_set_time(uv, t, 2, &err));
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  vkrt_seq_begin(seq);
  uvit_record_time_embed(uv, seq, 2, vkrt_tensor(bt));
  uvit_record_encode(uv, seq, 2, vkrt_tensor(bz), vkrt_tensor(bt), vkrt_tensor(btok), 0);
  uvit_record_decode(uv, seq, 4, vkrt_tensor(bh), 0, vkrt_tensor(bt), 2, vkrt_tensor(bv));
  submit(seq);
  float *tok = read_back(vkrt_tensor(btok), 2 * T * H), *v = read_back(vkrt_tensor(bv), 4 * per);
  for (int i = 0; i < 2; i++) {
    float *zw = load(c[i]->z_emb, 2 * T * H), *vc = load(c[i]->v_cond, per), *vu = load(c[i]->v_uncond, per);
    char *w = g_strdup_printf("batch image %d tokens", i);
    expect(w, tok + (size_t)i * T * H, zw, (size_t)T * H);
    g_free(w);
    w = g_strdup_printf("batch image %d v_cond", i);
    expect(w, v + i * per, vc, per);
    g_free(w);
    w = g_strdup_printf("batch image %d v_uncond", i);
    expect(w, v + (2 + i) * per, vu, per);
    g_free(w);
    g_free(zw); g_free(vc); g_free(vu);
  }
  /* replay with the times swapped between the images: the recording reads the new t */
  float t2[2] = { step2.t, step0.t };
  float zs[512];
  memcpy(zs, z + per, per * 4);
  memcpy(zs + per, z, per * 4);
  g_assert_true(vkrt_buffer_write(bz, 0, zs, 2 * per * 4, &err));
  float *hs = g_new(float, 4 * T * H);
  for (int r = 0; r < 4; r++)
    memcpy(hs + (size_t)r * T * H, hid + (size_t)(r ^ 1) * T * H, (size_t)T * H * 4);
  g_assert_true(vkrt_buffer_write(bh, 0, hs, 4 * T * H * 4, &err));
  g_assert_true(uvit_set_time(uv, t2, 2, &err));
  g_assert_true(vkrt_seq_replay(seq, &err));
  g_assert_no_error(err);
  float *v2 = read_back(vkrt_tensor(bv), 4 * per);
  expect("replay, swapped images: v_cond of image 1 (step 0)", v2 + per, v, per);
  expect("replay, swapped images: v_uncond of image 0 (step 2)", v2 + 2 * per, v + 3 * per, per);
  vkrt_seq_free(seq);
  g_free(tok); g_free(v); g_free(v2); g_free(hs);
  vkrt_buffer_free(bz); vkrt_buffer_free(bt); vkrt_buffer_free(btok); vkrt_buffer_free(bh); vkrt_buffer_free(bv);
  g_free(z); g_free(hid);
}

static void test_bad_args(void)
{
  GError *err = NULL;
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  VkrtBuffer *b = buf(NULL, 1024);
  vkrt_seq_begin(seq);
  /* decoding 3 rows of 2 images, and more images than max_batch */
  uvit_record_decode(uv, seq, 3, vkrt_tensor(b), 0, vkrt_tensor(b), 2, vkrt_tensor(b));
  g_assert_true(vkrt_seq_has_error(seq));
  vkrt_seq_begin(seq);
  uvit_record_encode(uv, seq, 3, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), 0);
  g_assert_true(vkrt_seq_has_error(seq));
  vkrt_seq_free(seq);
  vkrt_buffer_free(b);
  float t = 0;
  g_assert_false(uvit_set_time(uv, &t, 5, &err));
  g_assert_nonnull(err);
  g_clear_error(&err);
  /* a latent size the token grid cannot reproduce */
  g_assert_null(uvit_new(ctx, st, cfg, 1, 7, 8, &err));
  g_assert_nonnull(err);
  g_test_message("expected error: %s", err->message);
  g_clear_error(&err);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  const char *td = g_getenv("JF_TEST_DATA");
  data_dir = g_strdup(td ? td : "tests/data");
  GError *err = NULL;
  ctx = test_context_new(false);
  if (!ctx)
    return 77;
  char *dir = g_build_filename(data_dir, "tiny", "janusflow", NULL);
  char *path = g_build_filename(dir, "model.safetensors", NULL);
  cfg = config_load_model(dir, &err);
  g_assert_no_error(err);
  st = safetensors_open(path, &err);
  g_assert_no_error(err);
  uv = uvit_new(ctx, st, cfg, 2, 8, 8, &err);
  g_assert_no_error(err);
  g_test_add_func("/uvit/step0", test_step0);
  g_test_add_func("/uvit/step2", test_step2);
  g_test_add_func("/uvit/step0-strided", test_step0_strided);
  g_test_add_func("/uvit/batch2", test_batch2);
  g_test_add_func("/uvit/bad-args", test_bad_args);
  int r = g_test_run();
  uvit_free(uv);
  safetensors_close(st);
  config_free_model(cfg);
  vkrt_context_free(ctx);
  g_free(dir);
  g_free(path);
  g_free(data_dir);
  return r;
}
