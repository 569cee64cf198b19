/* safetensors_open on arbitrary bytes (header length, JSON header, tensor table), then every
 * accessor on whatever opened: a file that opens must be safe to read in full. */
#include "fuzz_common.h"
#include "safetensors.h"

static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  fuzz_file_init(&file, "fuzz.safetensors");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_file_set(&file, data, size);
  GError *error = NULL;
  StFile *f = safetensors_open(file.path, &error);
  if (!f) {
    /* every failure is an error value naming the file */
    FUZZ_CHECK(error && error->message && strstr(error->message, file.path));
    g_error_free(error);
    return 0;
  }
  for (guint i = 0; i < safetensors_n_tensors(f); i++) {
    const StTensor *t = safetensors_tensor(f, i);
    FUZZ_CHECK(safetensors_find(f, t->name) == t);
    GError *e = NULL;
    int64_t shape[ST_MAX_DIMS];
    for (int d = 0; d < ST_MAX_DIMS; d++)
      shape[d] = d < t->ndim ? t->shape[d] : -1;
    FUZZ_CHECK(safetensors_require(f, t->name, t->ndim, shape, &e) == t);
    FUZZ_CHECK(!safetensors_require(f, t->name, t->ndim + 1, NULL, &e));
    g_clear_error(&e);
    /* touch the data: conversions read every element */
    if (t->n_elements <= (1u << 16)) {
      float *f32 = g_new(float, t->n_elements + 1);
      uint16_t *bf = g_new(uint16_t, t->n_elements + 1);
      safetensors_to_f32(t, f32);
      safetensors_to_bf16(t, bf);
      g_free(f32);
      g_free(bf);
    }
  }
  GError *e = NULL;
  FUZZ_CHECK(!safetensors_require(f, "no such tensor", -1, NULL, &e));
  g_clear_error(&e);
  safetensors_close(f);
  return 0;
}
