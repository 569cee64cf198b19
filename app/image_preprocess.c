/* image_preprocess: the understanding model's VLMImageProcessor, reproduced bit for bit.
 * The resize is Pillow's 8-bit bicubic (src/libImaging/Resample.c, see MODEL.md §5.1.2): Keys
 * cubic a = -0.5 widened by the downscale factor (antialiasing), coefficients normalised in double
 * then rounded to 22-bit fixed point, horizontal pass first into an 8-bit intermediate. Every
 * rounding step is kept because the model sees the result through a bf16 cast where a one-level
 * difference in a pixel is visible. */
#include "image.h"
#include "image_internal.h"
#include <math.h>
#include <string.h>

#define PRECISION_BITS 22   /* 32 - 8 - 2: room for the sum of 8-bit pixels times weights */

typedef struct {
  int ksize;       /* coefficients stored per output sample */
  int *bounds;     /* [out][2]: first input index, count */
  int32_t *k;      /* [out][ksize] fixed-point weights */
} Coeffs;

static double bicubic(double x)
{
  /* written in the same evaluation order as Pillow's filter so that the doubles agree */
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static gboolean coeffs_compute(Coeffs *c, int in_size, int out_size)
{
  const double support_1 = 2.0;   /* bicubic support at scale 1 */
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_1 * filterscale;
  c->ksize = (int)ceil(support) * 2 + 1;
  c->bounds = g_try_new(int, (gsize)out_size * 2);
  c->k = g_try_new0(int32_t, (gsize)out_size * c->ksize);
  double *w = g_try_new(double, c->ksize);
  if (!c->bounds || !c->k || !w) {
    g_free(w);
    return FALSE;
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale, sum = 0.0;
    /* C truncation, then clamping: identical to floor for every value that survives the clamp */
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      sum += w[x];
    }
    int32_t *k = c->k + (gsize)xx * c->ksize;
    for (int x = 0; x < xmax; x++) {
      double v = sum != 0.0 ? w[x] / sum : w[x];
      /* round half away from zero, as Pillow's normalize_coeffs_8bpc */
      k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
  g_free(w);
  return TRUE;
}

static void coeffs_clear(Coeffs *c)
{
  g_free(c->bounds);
  g_free(c->k);
}

static inline uint8_t clip8(int32_t v)
{
  if (v >= (1 << PRECISION_BITS << 8))
    return 255;
  if (v <= 0)
    return 0;
  return (uint8_t)(v >> PRECISION_BITS);
}

/* Rows of `bpp`-byte pixels in (the first three bytes are R, G, B), RGB rows out: `rows` output
 * rows from the input rows starting at `first_row`. */
static void resample_horizontal(const uint8_t *in, int bpp, int in_w, int first_row, uint8_t *out, int out_w,
                                int rows, const Coeffs *c)
{
  for (int y = 0; y < rows; y++) {
    const uint8_t *src = in + (gsize)(y + first_row) * in_w * bpp;
    uint8_t *dst = out + (gsize)y * out_w * 3;
    for (int xx = 0; xx < out_w; xx++) {
      int xmin = c->bounds[xx * 2], n = c->bounds[xx * 2 + 1];
      const int32_t *k = c->k + (gsize)xx * c->ksize;
      int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < n; x++) {
        const uint8_t *p = src + (gsize)(x + xmin) * bpp;
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      dst[xx * 3] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
}

/* Rows of `bpp`-byte pixels in, RGB rows out. `row_shift` is subtracted from the coefficients'
 * input rows (the intermediate image only holds the rows the vertical pass needs). */
static void resample_vertical(const uint8_t *in, int bpp, int w, int row_shift, uint8_t *out, int out_h,
                              const Coeffs *c, int32_t *acc)
{
  const int n3 = w * 3;
  for (int yy = 0; yy < out_h; yy++) {
    int ymin = c->bounds[yy * 2] - row_shift, n = c->bounds[yy * 2 + 1];
    const int32_t *k = c->k + (gsize)yy * c->ksize;
    uint8_t *dst = out + (gsize)yy * n3;
    /* row by row into an accumulator (integer sums: the order does not change the result) */
    for (int i = 0; i < n3; i++)
      acc[i] = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < n; y++) {
      const uint8_t *src = in + (gsize)(y + ymin) * w * bpp;
      const int32_t ky = k[y];
      if (bpp == 3) {
        for (int i = 0; i < n3; i++)
          acc[i] += src[i] * ky;
      } else {
        for (int x = 0; x < w; x++) {
          acc[x * 3] += src[x * bpp] * ky;
          acc[x * 3 + 1] += src[x * bpp + 1] * ky;
          acc[x * 3 + 2] += src[x * bpp + 2] * ky;
        }
      }
    }
    for (int i = 0; i < n3; i++)
      dst[i] = clip8(acc[i]);
  }
}

/* Pillow Image.resize((out_w, out_h), BICUBIC) of the RGB channels of an 8-bit RGBA image, as
 * packed RGB. NULL when out of memory. */
static uint8_t *resize_bicubic(const uint8_t *rgba, int in_w, int in_h, int out_w, int out_h)
{
  gboolean need_h = out_w != in_w, need_v = out_h != in_h;
  Coeffs ch = {0}, cv = {0};
  uint8_t *tmp = NULL, *out = NULL;
  int32_t *acc = NULL;
  if (!coeffs_compute(&ch, in_w, out_w) || !coeffs_compute(&cv, in_h, out_h))
    goto done;
  if (!need_h && !need_v) {
    out = g_try_malloc((gsize)in_w * in_h * 3);
    if (out)
      for (gsize i = 0, n = (gsize)in_w * in_h; i < n; i++)
        memcpy(out + i * 3, rgba + i * 4, 3);
    goto done;
  }
  const uint8_t *cur = rgba;
  int bpp = 4, first = 0;
  if (need_h) {
    /* only the input rows the vertical pass will read */
    int row_first = 0, row_last = in_h;
    if (need_v) {
      row_first = cv.bounds[0];
      row_last = cv.bounds[(out_h - 1) * 2] + cv.bounds[(out_h - 1) * 2 + 1];
    }
    tmp = g_try_malloc((gsize)out_w * (row_last - row_first) * 3);
    if (!tmp)
      goto done;
    resample_horizontal(rgba, 4, in_w, row_first, tmp, out_w, row_last - row_first, &ch);
    if (!need_v) {
      out = g_steal_pointer(&tmp);
      goto done;
    }
    cur = tmp;
    bpp = 3;
    first = row_first;
  }
  out = g_try_malloc((gsize)out_w * out_h * 3);
  acc = g_try_new(int32_t, (gsize)out_w * 3);
  if (out && acc)
    resample_vertical(cur, bpp, out_w, first, out, out_h, &cv, acc);
  else
    g_clear_pointer(&out, g_free);
done:
  g_free(acc);
  g_free(tmp);
  coeffs_clear(&ch);
  coeffs_clear(&cv);
  return out;
}

float *image_preprocess(const JfImage *img, const JfProcessorConfig *pc)
{
  g_return_val_if_fail(img && img->rgba && img->width > 0 && img->height > 0, NULL);
  g_return_val_if_fail(pc && pc->image_size > 0, NULL);
  const int S = pc->image_size, W = img->width, H = img->height;
  /* The processor takes convert("RGB"), which for RGBA/LA/P+transparency in Pillow drops the
   * alpha channel (no compositing onto any background): the stored colour of a transparent
   * pixel is what the model sees. The resampler simply never reads the alpha bytes. */

  /* int() of the double ratio truncates; the long side becomes exactly S. A min_size above S
   * (only in nonsensical configs) would make the canvas larger than S, so it is capped. */
  int min_size = MIN(pc->min_size, S);
  double M = MAX(W, H);
  int th = MAX((int)((double)H / M * S), min_size);
  int tw = MAX((int)((double)W / M * S), min_size);
  th = MAX(th, 1);
  tw = MAX(tw, 1);
  uint8_t *rs = resize_bicubic(img->rgba, W, H, tw, th);
  if (!rs)
    return NULL;

  /* expand2square: centred with floor offsets on a background canvas */
  int ox = tw < th ? (th - tw) / 2 : 0;
  int oy = th < tw ? (tw - th) / 2 : 0;

  /* rescale is stored as float in the config; the processor multiplies by the JSON double
   * (1/255 for every known checkpoint), in double, then casts to float32. */
  double rescale = pc->rescale;
  if (pc->rescale == (float)(1.0 / 255.0))
    rescale = 1.0 / 255.0;
  float lut[3][256];
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++) {
      float x = (float)((double)v * rescale);
      if (pc->do_normalize) {
        /* float32 arithmetic, like numpy on float32 arrays */
        x = (x - pc->image_mean[c]) / pc->image_std[c];
      }
      lut[c][v] = x;
    }

  float *out = g_try_new(float, (gsize)3 * S * S);
  if (!out) {
    g_free(rs);
    return NULL;
  }
  for (int c = 0; c < 3; c++) {
    int bg = CLAMP(pc->background[c], 0, 255);
    float *plane = out + (gsize)c * S * S;
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) {
        int sx = x - ox, sy = y - oy;
        int v = (sx >= 0 && sx < tw && sy >= 0 && sy < th) ? rs[((gsize)sy * tw + sx) * 3 + c] : bg;
        plane[(gsize)y * S + x] = lut[c][v];
      }
  }
  g_free(rs);
  return out;
}
