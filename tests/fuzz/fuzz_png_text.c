/* image_read_png_text on arbitrary bytes: chunk walking, tEXt/zTXt/iTXt through libpng, the
 * Latin-1/UTF-8 handling. Every key and value handed back must be valid UTF-8. */
#include "fuzz_common.h"
#include "image.h"

static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  fuzz_file_init(&file, "fuzz.png");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_file_set(&file, data, size);
  GError *error = NULL;
  GHashTable *t = image_read_png_text(file.path, &error);
  if (!t) {
    FUZZ_CHECK(error);
    g_error_free(error);
    return 0;
  }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, t);
  while (g_hash_table_iter_next(&it, &k, &v))
    FUZZ_CHECK(g_utf8_validate(k, -1, NULL) && g_utf8_validate(v, -1, NULL));
  g_hash_table_unref(t);
  return 0;
}
