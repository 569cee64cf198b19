/* The GPU kernels, forced on whatever device runs the tests (lavapipe in CI, which has no GPU):
 * the shared-memory GEMM at several specialization-constant tiles, at sizes that are not
 * multiples of any tile; its fp16-emulating variant; flash attention against the C reference
 * with causal / mask / q_start / n_kv cases and several block shapes; the per-device choices;
 * and the cooperative-matrix selection: reported unavailable on Debian 12's lavapipe, the fp32
 * path used, and its self-check and fallback driven through test stand-ins; the real kernel
 * where the device has it (Mesa 26's lavapipe: tools/mesa-next). Ends with no validation message. */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ref_ops.h"
#include "attn_case.h"
#include "test_util.h"

static VkrtContext *ctx;
static GRand *rng;

/* Runs one matmul; returns its nmse against the reference (or -1 with *code set on an error). */
static double run_matmul(uint32_t M, uint32_t N, uint32_t K, uint32_t flags, bool bias, float xscale, int *code)
{
  float *x = test_rand_f32(rng, (size_t)M * K, -xscale, xscale);
  uint16_t *w = test_rand_bf16(rng, (size_t)N * K, -1.0f, 1.0f);
  uint16_t *bv = bias ? test_rand_bf16(rng, N, -1.0f, 1.0f) : NULL;
  float *y0 = test_rand_f32(rng, (size_t)M * N, -1.0f, 1.0f);
  float *want = g_memdup2(y0, sizeof(float) * M * N), *got = g_new(float, (size_t)M * N);
  ref_matmul(want, x, w, bv, M, N, K, flags);
  VkrtBuffer *bx = test_upload_at(ctx, x, 4ull * M * K, 0), *bw = test_upload_at(ctx, w, 2ull * N * K, 0);
  VkrtBuffer *by = test_upload_at(ctx, y0, 4ull * M * N, 0);
  VkrtBuffer *bb = bias ? test_upload_at(ctx, bv, 2ull * N, 0) : NULL;
  GError *e = NULL;
  VkrtSeq *s = test_seq_begin(ctx);
  vkrt_op_matmul(s, vkrt_tensor(by), vkrt_tensor_sub(vkrt_tensor(bx), 0, 4ull * M * K),
                 vkrt_tensor_sub(vkrt_tensor(bw), 0, 2ull * N * K),
                 bias ? vkrt_tensor_sub(vkrt_tensor(bb), 0, 2ull * N) : vkrt_tensor_none(), M, N, K, flags);
  double r = -1;
  if (vkrt_seq_submit(s, &e)) {
    test_download(by, 0, got, 4ull * M * N);
    r = ref_nmse(got, want, (size_t)M * N);
    if (code) *code = -1;
  } else {
    g_assert_nonnull(e);
    if (code) *code = e->code;
    g_error_free(e);
  }
  vkrt_seq_free(s);
  vkrt_buffer_free(bx); vkrt_buffer_free(bw); vkrt_buffer_free(by);
  if (bb) vkrt_buffer_free(bb);
  g_free(x); g_free(w); g_free(bv); g_free(y0); g_free(want); g_free(got);
  return r;
}

static void check_matmul(uint32_t M, uint32_t N, uint32_t K, uint32_t flags, bool bias, double max_nmse)
{
  int code = 0;
  double r = run_matmul(M, N, K, flags, bias, 1.0f, &code);
  if (!(r >= 0 && r <= max_nmse))
    g_printerr("matmul M=%u N=%u K=%u flags=%u bias=%d: nmse %g (limit %g), error code %d\n", M, N, K, flags, bias,
               r, max_nmse, code);
  g_assert_cmpfloat(r, >=, 0);
  g_assert_cmpfloat(r, <=, max_nmse);
}

/* --- shared-memory GEMM ---------------------------------------------------------------------- */

static void test_gemm_tiles(void)
{
  /* BM, BN, BK, TM, TN: 16..256 threads, square and not, 1 or 2 k-texels per step and row */
  static const VkrtGemmTile tiles[] = {
    { 16, 16, 8, 4, 4 }, { 32, 32, 16, 4, 4 }, { 64, 32, 16, 8, 4 }, { 32, 64, 8, 4, 8 }, { 64, 64, 16, 4, 4 },
  };
  vkrt_ops_force_gemm(VKRT_GEMM_SHARED);
  for (size_t t = 0; t < G_N_ELEMENTS(tiles); t++) {
    vkrt_ops_force_gemm_tile(&tiles[t]);
    gint64 t0 = g_get_monotonic_time();
    check_matmul(37, 70, 64, 0, false, 1e-10);                      /* edges in M and N */
    check_matmul(70, 45, 136, VKRT_MM_ACCUMULATE, true, 1e-10);     /* K % BK != 0 */
    check_matmul(5, 33, 8, VKRT_MM_GELU, true, 1e-10);              /* one k step, activation */
    g_test_message("tile %ux%u BK %u %ux%u: %.2f s", tiles[t].bm, tiles[t].bn, tiles[t].bk, tiles[t].tm, tiles[t].tn,
                   (g_get_monotonic_time() - t0) / 1e6);
  }
  /* the GPU default for big outputs on NVIDIA/AMD: 128 x 128, 8 x 8 per thread, 256 threads,
   * exactly 32 KiB of shared memory (lavapipe's limit) */
  vkrt_ops_force_gemm_tile(&(VkrtGemmTile){ 128, 128, 16, 8, 8 });
  check_matmul(130, 141, 72, VKRT_MM_SILU, true, 1e-10);
  /* a tile the device cannot run fails cleanly */
  vkrt_ops_force_gemm_tile(&(VkrtGemmTile){ 128, 128, 32, 8, 8 });
  int code = 0;
  g_assert_cmpfloat(run_matmul(20, 20, 64, 0, false, 1.0f, &code), <, 0);
  g_assert_cmpint(code, ==, VKRT_ERROR_UNSUPPORTED);
  vkrt_ops_force_gemm_tile(&(VkrtGemmTile){ 64, 64, 12, 4, 4 });
  g_assert_cmpfloat(run_matmul(20, 20, 64, 0, false, 1.0f, &code), <, 0);
  g_assert_cmpint(code, ==, VKRT_ERROR_UNSUPPORTED);
  vkrt_ops_force_gemm_tile(NULL);
  /* the per-device tile on this device */
  check_matmul(77, 130, 136, VKRT_MM_ACCUMULATE, false, 1e-10);
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

static void test_gemm_tile_choice(void)
{
  VkrtDeviceInfo nv = { .type = VKRT_DEVICE_DISCRETE, .vendor_id = 0x10de, .subgroup_size = 32,
                        .max_shared_bytes = 49152, .max_wg_invocations = 1024 };
  VkrtGemmTile t;
  vkrt_ops_gemm_tile(&nv, 4096, 4096, &t);
  g_assert_true(t.bm == 128 && t.bn == 128 && t.tm == 8 && t.tn == 8 && t.bk == 16);
  vkrt_ops_gemm_tile(&nv, 600, 2048, &t);  /* 80 big tiles would leave SMs idle */
  g_assert_true(t.bm == 64 && t.bn == 64 && t.tm == 4 && t.tn == 4);
  VkrtDeviceInfo amd = nv;
  amd.vendor_id = 0x1002;
  amd.subgroup_size = 64;
  amd.max_shared_bytes = 65536;
  vkrt_ops_gemm_tile(&amd, 4096, 4096, &t);
  g_assert_cmpuint(t.bm, ==, 128);
  VkrtDeviceInfo igpu = { .type = VKRT_DEVICE_INTEGRATED, .vendor_id = 0x8086, .subgroup_size = 16,
                          .max_shared_bytes = 65536, .max_wg_invocations = 1024 };
  vkrt_ops_gemm_tile(&igpu, 4096, 4096, &t);
  g_assert_true(t.bm == 64 && t.bn == 64 && t.bk == 16);
  VkrtDeviceInfo tight = igpu;
  tight.max_shared_bytes = 16384;  /* the smallest Vulkan allows: BK halves */
  vkrt_ops_gemm_tile(&tight, 4096, 4096, &t);
  g_assert_true(t.bm == 64 && t.bk == 8);
  tight.max_wg_invocations = 128;
  vkrt_ops_gemm_tile(&tight, 4096, 4096, &t);
  g_assert_true(t.bm == 32 && t.bn == 32);
  vkrt_ops_gemm_tile(vkrt_context_info(ctx), 4096, 4096, &t);
  g_test_message("tile on this device: %ux%u BK %u, %ux%u per thread", t.bm, t.bn, t.bk, t.tm, t.tn);
}

/* fp16 operands after per-row power-of-two scaling (the coopmat kernel's numerics) */
static void test_gemm_f16emu(void)
{
  vkrt_ops_force_gemm(VKRT_GEMM_SHARED_F16EMU);
  vkrt_ops_force_gemm_tile(&(VkrtGemmTile){ 32, 32, 16, 4, 4 });
  int code = 0;
  double r = run_matmul(37, 70, 64, VKRT_MM_ACCUMULATE, true, 1.0f, &code);
  g_test_message("fp16-emulating GEMM, |x| <= 1: nmse %.3g", r);
  g_assert_cmpfloat(r, >, 1e-12);  /* it does round */
  g_assert_cmpfloat(r, <, 1e-6);
  /* activations far beyond fp16's range (65504) stay finite and as accurate */
  r = run_matmul(37, 70, 64, 0, false, 1e6f, &code);
  g_test_message("fp16-emulating GEMM, |x| <= 1e6: nmse %.3g", r);
  g_assert_cmpfloat(r, <, 1e-6);
  r = run_matmul(20, 20, 64, 0, false, 1e-6f, &code);  /* and far below its normal range */
  g_assert_cmpfloat(r, <, 1e-6);
  vkrt_ops_force_gemm_tile(NULL);
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* --- flash attention ------------------------------------------------------------------------- */

/* HK K/V heads (grouped-query attention when < H) */
static void check_attention_gqa(uint32_t B, uint32_t nq, uint32_t H, uint32_t HK, uint32_t D, uint32_t q_start,
                                uint32_t n_kv, uint32_t cap, bool causal, bool use_mask)
{
  AttnCase c = { B, nq, H, HK, D, q_start, n_kv, cap, causal, use_mask, 0, 0, 0, 0 };
  attn_case_check(ctx, rng, &c, NULL, "flash");
}

static void check_attention(uint32_t B, uint32_t nq, uint32_t H, uint32_t D, uint32_t q_start, uint32_t n_kv,
                            uint32_t cap, bool causal, bool use_mask)
{
  check_attention_gqa(B, nq, H, H, D, q_start, n_kv, cap, causal, use_mask);
}

/* all: every case; else those with head_dim <= 32 (lavapipe takes 2-15 s to JIT the kernel for
 * each head_dim >= 64 and block shape, from a cold shader cache) */
static void attention_cases(bool all)
{
  if (all) {
    check_attention(1, 17, 2, 64, 0, 17, 20, true, false);   /* prefill */
    check_attention(1, 1, 3, 128, 40, 41, 41, true, false);  /* a decode step, the LLM's head_dim */
    check_attention(1, 20, 1, 256, 0, 45, 45, true, false);  /* head_dim 256 */
  }
  check_attention(1, 40, 2, 32, 0, 40, 40, true, false);     /* several query blocks and key tiles */
  check_attention(2, 5, 2, 32, 7, 12, 16, true, true);       /* CFG pair, masked, continuing */
  check_attention(2, 9, 1, 16, 0, 9, 9, false, true);        /* bidirectional with mask */
  check_attention(3, 4, 4, 8, 0, 30, 33, false, false);      /* n_kv not a multiple of the tile */
  check_attention(3, 6, 4, 32, 90, 96, 100, true, true);     /* keys before the first query */
  check_attention(1, 37, 1, 4, 3, 30, 40, true, false);      /* head_dim 4; late queries see all keys */
  check_attention_gqa(2, 11, 6, 2, 8, 2, 13, 16, true, true); /* grouped-query attention */
}

static void test_flash_attention(void)
{
  vkrt_ops_force_attention_flash(1);
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 1, 1, 64), ==, "flash");
  gint64 t0 = g_get_monotonic_time();
  attention_cases(true);                                     /* blocks chosen for this device */
  g_test_message("flash attention, device blocks: %.2f s", (g_get_monotonic_time() - t0) / 1e6);
  /* other block shapes: BR x BC with the workgroup smaller than, equal to, larger than BR * D/4 */
  static const uint32_t blocks[][3] = { { 8, 8, 32 }, { 4, 16, 64 }, { 16, 4, 128 }, { 32, 16, 128 } };
  for (size_t i = 0; i < G_N_ELEMENTS(blocks); i++) {
    vkrt_ops_force_flash_blocks(blocks[i][0], blocks[i][1], blocks[i][2]);
    t0 = g_get_monotonic_time();
    attention_cases(false);
    g_test_message("flash attention, blocks %ux%u, %u threads: %.2f s", blocks[i][0], blocks[i][1], blocks[i][2],
                   (g_get_monotonic_time() - t0) / 1e6);
  }
  vkrt_ops_force_flash_blocks(0, 0, 0);
  vkrt_ops_force_attention_flash(-1);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* --- selection ------------------------------------------------------------------------------- */

static void test_paths(void)
{
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  bool gpu = di->type != VKRT_DEVICE_CPU;
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), ==, gpu ? (di->coopmat_m ? vkrt_ops_gemm_path(ctx, 100, 64) : "shared")
                                                            : "register");
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 63), ==, "generic");
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 600, 16, 128), ==, gpu ? "flash" : "gemm");
  /* (over a 4096-key context, given the scratch the context asks for) */
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 1, 16, 128), ==, gpu && di->has_subgroup_arith ? "splitk" : "online");
  vkrt_ops_force_gemm(VKRT_GEMM_SHARED);
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), ==, "shared");
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  vkrt_ops_force_attention_flash(0);
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 600, 16, 128), ==, gpu ? "online" : "gemm");
  vkrt_ops_force_attention_gemm(0);
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 600, 16, 128), ==, "online");
  vkrt_ops_force_attention_gemm(1);
  g_assert_cmpstr(vkrt_ops_attention_path(ctx, 600, 16, 128), ==, "gemm");
  vkrt_ops_force_attention_gemm(-1);
  vkrt_ops_force_attention_flash(-1);
}

/* Split-K decode on described devices: GPUs with a scratch and a long context, else as before. */
static void test_splitk_paths(void)
{
  const uint64_t sk = VKRT_ATTN_SPLITK_SCRATCH_BYTES, cpu_scratch = VKRT_ATTN_SCRATCH_BYTES;
  VkrtDeviceInfo nv = { .type = VKRT_DEVICE_DISCRETE, .vendor_id = 0x10de, .subgroup_size = 32,
                        .max_shared_bytes = 49152, .max_wg_invocations = 1024, .has_subgroup_arith = true };
  VkrtDeviceInfo cpu = nv;
  cpu.type = VKRT_DEVICE_CPU;
  cpu.subgroup_size = 8;
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, sk), ==, "splitk");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 4, 32, 128, 600, sk), ==, "splitk");  /* 4 queries, CFG pair */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 513, sk), ==, "splitk");  /* 3 chunks */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 512, sk), ==, "split");   /* 2: not worth it */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, 0), ==, "split");   /* no scratch */
  /* a scratch for 2 chunks per query still splits; for 1, not */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, 16 * 130 * 4 * 2), ==, "splitk");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, 16 * 130 * 4 * 2 - 1), ==, "split");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 16, 16, 128, 4096, sk), ==, "flash");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 15, 40, 128, 4096, sk), ==, "online");  /* 600 items */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 10, 4096, sk), ==, "scalar");
  nv.has_subgroup_arith = false;
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, sk), ==, "online");
  nv.has_subgroup_arith = true;
  /* CPU devices: unchanged unless forced */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&cpu, 1, 16, 128, 4096, cpu_scratch), ==, "online");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&cpu, 600, 16, 128, 4096, cpu_scratch), ==, "gemm");
  vkrt_ops_force_attention_splitk(1);
  g_assert_cmpstr(vkrt_ops_attention_path_for(&cpu, 1, 16, 128, 4096, cpu_scratch), ==, "splitk");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&cpu, 1, 16, 128, 100, cpu_scratch), ==, "splitk");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&cpu, 1, 16, 128, 100, 0), ==, "online");
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 100, sk), ==, "splitk");
  vkrt_ops_force_attention_splitk(0);
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, sk), ==, "split");
  vkrt_ops_force_attention_splitk(-1);
  vkrt_ops_force_attention_split(0);  /* no subgroup-split decode at all */
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 4096, sk), ==, "online");
  vkrt_ops_force_attention_split(-1);
  /* the chunk: a smaller one makes short contexts split too */
  vkrt_ops_force_splitk_chunk(32);
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 100, sk), ==, "splitk");
  vkrt_ops_force_splitk_chunk(0);
  g_assert_cmpstr(vkrt_ops_attention_path_for(&nv, 1, 16, 128, 100, sk), ==, "split");
  /* this context: scratch only where a form uses it */
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  bool dev_gpu = di->type != VKRT_DEVICE_CPU;
  g_assert_cmpuint(vkrt_ops_attention_scratch_bytes(ctx), ==,
                   !dev_gpu ? cpu_scratch : di->has_subgroup_arith ? sk : 0);
}

/* On a device without cooperative matrices (lavapipe): reported unavailable, never selected,
 * even when forced, and the results are those of the fp32 kernels. */
static void test_coopmat_unavailable(void)
{
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  if (di->coopmat_m) {
    g_test_skip("this device has cooperative matrices");
    return;
  }
  const char *note = NULL;
  g_assert_false(vkrt_ops_coopmat_usable(ctx, &note));
  g_assert_nonnull(note);
  g_test_message("coopmat: %s", note);
  g_assert_cmpint(vkrt_context_coopmat_state(ctx, NULL), ==, -1);
  vkrt_ops_force_gemm(VKRT_GEMM_COOPMAT);
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), !=, "coopmat");
  check_matmul(70, 45, 64, VKRT_MM_ACCUMULATE, true, 1e-10);  /* fp32-exact: not the fp16 path */
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
}

/* The self-check and fallback with stand-ins for the coopmat kernel. */
static void test_coopmat_selfcheck(void)
{
  const char *note = NULL;
  vkrt_ops_force_gemm(VKRT_GEMM_COOPMAT);

  /* a kernel that works: selected after its self-check; results carry fp16 rounding */
  vkrt_ops_coopmat_test_mode(VKRT_COOPMAT_TEST_EMULATE);
  g_assert_true(vkrt_ops_coopmat_usable(ctx, &note));
  g_test_message("emulated: %s", note);
  g_assert_nonnull(strstr(note, "passed"));
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), ==, "coopmat");
  int code = 0;
  double r = run_matmul(70, 45, 64, VKRT_MM_ACCUMULATE, true, 1.0f, &code);
  g_assert_cmpfloat(r, >, 1e-12);
  g_assert_cmpfloat(r, <, 1e-6);

  /* a kernel whose pipeline cannot be built: off, said why, the fp32 path gives the results,
   * and the caller's sequence saw no error */
  vkrt_ops_coopmat_test_mode(VKRT_COOPMAT_TEST_BROKEN);
  g_assert_false(vkrt_ops_coopmat_usable(ctx, &note));
  g_test_message("broken: %s", note);
  g_assert_nonnull(strstr(note, "self-check failed"));
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), !=, "coopmat");
  check_matmul(70, 45, 64, VKRT_MM_ACCUMULATE, true, 1e-10);

  /* a kernel whose results differ: off */
  vkrt_ops_coopmat_test_mode(VKRT_COOPMAT_TEST_MISMATCH);
  check_matmul(70, 45, 64, 0, false, 1e-10);  /* the self-check runs at the first selection */
  g_assert_false(vkrt_ops_coopmat_usable(ctx, &note));
  g_test_message("mismatch: %s", note);
  g_assert_nonnull(strstr(note, "nmse"));

  vkrt_ops_coopmat_test_mode(VKRT_COOPMAT_TEST_OFF);
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* The cooperative-matrix kernel itself, where the device and the build have it: Mesa 26's
 * lavapipe (VK_KHR_cooperative_matrix) with a glslc that knows GL_KHR_cooperative_matrix, in
 * tools/mesa-next's run (a CI stage), which sets JF_REQUIRE_COOPMAT=1 so that there a missing
 * kernel fails instead of skipping. Sizes that are no multiple of the 64 x 64 tile or of its
 * 32-deep k step, bias and accumulation, activations far outside fp16's range. */
static void test_coopmat_real(void)
{
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);
  if (!di->coopmat_m) {
    const char *why = NULL;
    (void)vkrt_context_coopmat_state(ctx, &why);
    if (g_getenv("JF_REQUIRE_COOPMAT"))
      g_error("JF_REQUIRE_COOPMAT is set, but %s has no usable cooperative-matrix kernel: %s", di->name, why);
    g_test_skip("no cooperative-matrix kernel on this device and build (tools/mesa-next runs this test)");
    return;
  }
  const char *note = NULL;
  g_assert_true(vkrt_ops_coopmat_usable(ctx, &note));
  g_test_message("%s %ux%ux%u: %s", di->coopmat_khr ? "KHR" : "NV", di->coopmat_m, di->coopmat_n, di->coopmat_k, note);
  vkrt_ops_force_gemm(VKRT_GEMM_COOPMAT);
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), ==, "coopmat");
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 5, 64), ==, "coopmat");  /* forced: any row count above GEMV's */
  /* fp16 operands: ~1e-7 against the fp32 reference; above 1e-5 would be a broken kernel, and
   * it must round (> 1e-12), or this would not be the fp16 kernel */
  static const uint32_t shapes[][4] = {
    { 64, 64, 32, 0 }, { 37, 70, 64, VKRT_MM_ACCUMULATE }, { 130, 141, 72, VKRT_MM_ACCUMULATE },
    { 5, 33, 8, VKRT_MM_GELU }, { 200, 96, 264, VKRT_MM_SILU },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
    int code = 0;
    double r = run_matmul(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], i % 2 == 1, 1.0f, &code);
    g_test_message("coopmat %ux%ux%u flags %u: nmse %.3g", shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], r);
    g_assert_cmpfloat(r, >, 1e-12);
    g_assert_cmpfloat(r, <, 1e-5);
  }
  int code = 0;
  double r = run_matmul(70, 45, 64, 0, false, 1e6f, &code);  /* beyond fp16's 65504: scaled per row */
  g_assert_cmpfloat(r, <, 1e-5);
  r = run_matmul(70, 45, 64, 0, false, 1e-6f, &code);        /* below its normal range */
  g_assert_cmpfloat(r, <, 1e-5);
  vkrt_ops_force_gemm(VKRT_GEMM_AUTO);
  /* the automatic choice on this device: GPUs take it from 64 rows, CPU devices never */
  g_assert_cmpstr(vkrt_ops_gemm_path(ctx, 100, 64), ==, di->type != VKRT_DEVICE_CPU ? "coopmat" : "register");
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ctx = test_context_new(false);
  if (!ctx)
    return 1;
  rng = g_rand_new_with_seed(4321);
  g_test_message("device %s", vkrt_context_info(ctx)->name);
  g_test_add_func("/gpu/gemm/tiles", test_gemm_tiles);
  g_test_add_func("/gpu/gemm/tile-choice", test_gemm_tile_choice);
  g_test_add_func("/gpu/gemm/f16emu", test_gemm_f16emu);
  g_test_add_func("/gpu/attention/flash", test_flash_attention);
  g_test_add_func("/gpu/paths", test_paths);
  g_test_add_func("/gpu/paths/splitk", test_splitk_paths);
  g_test_add_func("/gpu/coopmat/unavailable", test_coopmat_unavailable);
  g_test_add_func("/gpu/coopmat/selfcheck", test_coopmat_selfcheck);
  g_test_add_func("/gpu/coopmat/real", test_coopmat_real);
  int rc = g_test_run();
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
  g_rand_free(rng);
  return rc;
}
