/* Small helpers shared by the test programs (tests/test_util.c, compiled into each test that
 * uses them). They assert instead of returning errors: a failing helper fails its test.
 *
 * The helpers over the engine (npy files) and the Vulkan runtime exist only in tests that link
 * those libraries: each executable compiles its own copy of test_util.c with its own include
 * paths, and a library's part is compiled where its header can be found. */
#pragma once

#include <glib.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf16.h"

G_BEGIN_DECLS

/* $JF_TEST_DATA/rel (tests/data/rel when JF_TEST_DATA is unset); free with g_free. */
char *test_data_path(const char *rel);

/* A new private directory in the system's temporary folder (`tmpl` as for g_dir_make_tmp);
 * free with g_free after test_rm_rf. */
char *test_tmp_dir_new(const char *tmpl);

/* Removes path and, for a directory, all it holds. Symbolic links are removed, never followed,
 * so that a test's link to a folder outside cannot empty it. Errors are ignored (cleanup). */
void test_rm_rf(const char *path);

/* ||got - want|| / ||want|| over n values (||got - want|| when want is all zero); *max_abs (if
 * not NULL): the largest |got - want|, NaN if any difference is NaN. Inline so that tests which
 * do not link libm can still use the rest of test_util.c. */
static inline double test_rel_l2(const float *got, const float *want, size_t n, double *max_abs)
{
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
    mx = MAX(mx, fabs(d));
  }
  if (max_abs)
    *max_abs = mx;
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Asserts that e is NULL, printing its message to stderr first. */
void test_check_no_error(GError *e);

/* n floats drawn uniformly from [lo, hi) by rng (tests pass their own seeded GRand, so that a
 * failure repeats); never NULL, even for n = 0. Free with g_free. */
float *test_rand_f32(GRand *rng, size_t n, double lo, double hi);

/* The same draws rounded to bf16 bit patterns (bf16_from_f32). Free with g_free. */
uint16_t *test_rand_bf16(GRand *rng, size_t n, double lo, double hi);

#if __has_include("npy.h")
#include "npy.h"

/* dir/name, which must be a float32 .npy file; free with npy_array_free. */
NpyArray *test_npy_read_f32(const char *dir, const char *name);

/* The n_expected floats of the float32 .npy file dir/rel (it must hold exactly that many);
 * free with g_free. */
float *test_npy_load_floats(const char *dir, const char *rel, size_t n_expected);
#endif

#if __has_include("vkrt.h")
#include "vkrt.h"

/* A context on the default device; the validation layer is on when `validate` or when
 * JANUSFLOW_VALIDATE is set (the test environment sets it). NULL if there is none, after
 * printing why: callers decide whether that fails or skips their program. */
VkrtContext *test_context_new(bool validate);

/* A context whose binding range is lowered to `max_binding` bytes (JANUSFLOW_MAX_BINDING while
 * it is created), so that ops go through their binding windows. Asserts that it exists. */
VkrtContext *test_context_new_max_binding(const char *max_binding);

/* A buffer of off + bytes + tail bytes holding `data` (left out when NULL) at byte offset `off`
 * and NaN (0x7fc00000) in every other whole word, so that an op reading outside its tensor
 * gives NaN where a reference would not. A tail of 0 makes the tensor end at the buffer's end,
 * so that a binding reaching past it would be caught. */
VkrtBuffer *test_upload_span(VkrtContext *ctx, const void *data, size_t bytes, uint64_t off, uint64_t tail);

/* test_upload_span with a 64-byte tail of NaN after the data. */
VkrtBuffer *test_upload_at(VkrtContext *ctx, const void *data, size_t bytes, uint64_t off);

/* Reads `bytes` at byte offset `off` of b into data. */
void test_download(VkrtBuffer *b, uint64_t off, void *data, size_t bytes);

/* A new sequence on ctx, already begun; free with vkrt_seq_free. */
VkrtSeq *test_seq_begin(VkrtContext *ctx);

/* Submits seq and waits for it, asserting success; seq can then be begun again. */
void test_seq_run(VkrtSeq *seq);

/* test_seq_run, then frees seq and asserts that its context has had no validation message. */
void test_seq_run_free(VkrtSeq *seq);
#endif

#if __has_include(<json-glib/json-glib.h>)
#include <json-glib/json-glib.h>

/* The command of a golden fixture's case (fixture/expected/manifest.json, "cases"[name].argv)
 * with {FIXTURE}, {DUMP} and {OUT} replaced: exe first, then the case's arguments, then n_extra
 * NULL slots for the caller to fill, then the terminating NULL. *case_out is the case's object
 * and lives as long as *parser_out (g_object_unref). Free the result with g_strfreev. */
char **test_fixture_case_argv(const char *fixture, const char *case_name, const char *exe, const char *dump,
                              const char *out, guint n_extra, JsonObject **case_out, JsonParser **parser_out);
#endif

G_END_DECLS
