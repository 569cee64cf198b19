/* safetensors: a read-only, mmap-backed view of one .safetensors file. Every header field is
 * checked (size bounds, JSON shape, dtype, shape x dtype == byte range, offsets in range, no
 * overlaps, no duplicates, overflow-checked arithmetic); errors name the file and the tensor. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define JF_LOAD_ERROR (jf_load_error_quark())
GQuark jf_load_error_quark(void);
typedef enum {
  JF_LOAD_ERROR_IO,        /* cannot open / read / map */
  JF_LOAD_ERROR_FORMAT,    /* malformed file */
  JF_LOAD_ERROR_MISSING,   /* a required file, key or tensor is absent */
  JF_LOAD_ERROR_MISMATCH,  /* shapes / dtypes / ids disagree with the config */
  JF_LOAD_ERROR_LIMIT,     /* a documented size bound is exceeded (docs/LIMITS.md) */
} JfLoadError;

typedef enum { ST_DTYPE_BF16, ST_DTYPE_F16, ST_DTYPE_F32, ST_DTYPE_I32, ST_DTYPE_I64, ST_DTYPE_U8 } StDtype;

#define ST_MAX_DIMS 8
typedef struct {
  const char *name;
  StDtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  uint64_t n_elements;
  uint64_t n_bytes;
  const void *data;        /* points into the mapping */
} StTensor;

typedef struct StFile StFile;

StFile *safetensors_open(const char *path, GError **error);
void safetensors_close(StFile *f);
const char *safetensors_path(const StFile *f);
guint safetensors_n_tensors(const StFile *f);
const StTensor *safetensors_tensor(const StFile *f, guint i);
/* NULL if absent. */
const StTensor *safetensors_find(const StFile *f, const char *name);
/* Like find, but an error naming the file if absent, or if ndim/shape differ from the expected
 * ones (pass ndim = -1 to skip the shape check; a shape entry of -1 matches any size). */
const StTensor *safetensors_require(const StFile *f, const char *name, int ndim, const int64_t *shape,
                                    GError **error);
/* Converts n elements of any float dtype to bf16 bit patterns (round to nearest even). */
void safetensors_to_bf16(const StTensor *t, uint16_t *out);
/* Converts to fp32. */
void safetensors_to_f32(const StTensor *t, float *out);
const char *safetensors_dtype_name(StDtype d);

G_END_DECLS
