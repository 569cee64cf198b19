/* npy_read on arbitrary bytes (magic, version, header dict, shape against the file size), then
 * the int32 conversion on what was read. */
#include "fuzz_common.h"
#include "npy.h"

static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  fuzz_file_init(&file, "fuzz.npy");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_file_set(&file, data, size);
  GError *error = NULL;
  NpyArray *a = npy_read(file.path, &error);
  if (!a) {
    FUZZ_CHECK(error && strstr(error->message, file.path));
    g_error_free(error);
    return 0;
  }
  /* the data must be as long as the shape says */
  volatile uint8_t sink = 0;
  static const unsigned es[] = {[NPY_F32] = 4, [NPY_I32] = 4, [NPY_I64] = 8, [NPY_U8] = 1};
  uint64_t bytes = a->n_elements * es[a->dtype];
  for (uint64_t i = 0; i < bytes; i += 1 + bytes / 64)
    sink ^= ((const uint8_t *)a->data)[i];
  (void)sink;
  if (!npy_array_to_i32(a, &error))
    g_clear_error(&error);
  npy_array_free(a);
  return 0;
}
