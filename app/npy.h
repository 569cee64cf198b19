/* npy: reading and writing NumPy .npy arrays (v1.0/2.0 headers, little-endian, C order). */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum { NPY_F32, NPY_I32, NPY_I64, NPY_U8 } NpyDtype;

typedef struct {
  NpyDtype dtype;
  int ndim;
  int64_t shape[8];
  uint64_t n_elements;
  void *data;   /* g_malloc'd */
} NpyArray;

gboolean npy_write(const char *path, NpyDtype dtype, int ndim, const int64_t *shape, const void *data,
                   GError **error);
/* Reads f4/i4/i8/u1 (and converts i8 -> i32 when want_i32_from_i64). Errors name the file. */
NpyArray *npy_read(const char *path, GError **error);
void npy_array_free(NpyArray *a);
/* Converts an I64 or U8 array to I32 in place (golden ids are often saved as int64); an error if a
 * value does not fit or the array holds floats. */
gboolean npy_array_to_i32(NpyArray *a, GError **error);

G_END_DECLS
