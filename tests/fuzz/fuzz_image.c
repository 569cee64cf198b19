/* image_load_bytes on arbitrary bytes: PNG through libpng (size checked from IHDR first), every
 * other format through gdk-pixbuf with the size-prepared guard and the GIF first-frame cut. A
 * decoded image must respect the documented bounds and be fully readable; the preprocessor runs
 * on it too (it reads every pixel). */
#include "fuzz_common.h"
#include "image.h"

static JfProcessorConfig pc;

/* gdk-pixbuf 2.42's GIF loader composites a frame taller or wider than the logical screen with
 * an out-of-range gdk_pixbuf_copy_area, whose precondition check refuses it with a g_critical
 * (no copy happens) and the image still decodes. It is inside the system loader, not ours. */
static const char *const gif_loader_criticals[] = {"gdk_pixbuf_copy_area: assertion", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  fuzz_tolerated_criticals = gif_loader_criticals;
  pc.image_size = 32;
  pc.min_size = 14;
  pc.rescale = 1.0f / 255.0f;
  pc.do_normalize = TRUE;
  for (int i = 0; i < 3; i++) {
    pc.image_mean[i] = 0.5f;
    pc.image_std[i] = 0.5f;
    pc.background[i] = 127;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GError *error = NULL;
  JfImage *img = image_load_bytes(data, size, "fuzz-input", &error);
  if (!img) {
    FUZZ_CHECK(error && strstr(error->message, "fuzz-input"));
    g_error_free(error);
    return 0;
  }
  FUZZ_CHECK(img->width >= 1 && img->height >= 1);
  FUZZ_CHECK(img->width <= JF_IMAGE_MAX_SIDE && img->height <= JF_IMAGE_MAX_SIDE);
  FUZZ_CHECK((guint64)img->width * (guint64)img->height <= JF_IMAGE_MAX_PIXELS);
  volatile uint8_t sink = img->rgba[(gsize)img->width * img->height * 4 - 1];
  (void)sink;
  if ((guint64)img->width * (guint64)img->height <= 1u << 20)
    g_free(image_preprocess(img, &pc));
  image_free(img);
  return 0;
}
