/* app/image*.c: decoding (PNG variants through libpng, other formats through gdk-pixbuf), error
 * reporting on broken and hostile files, the understanding preprocessor against the reference
 * processor's exact output, and PNG writing / text reading. Data: tests/data/image (regenerate
 * with make_expected.py there) and the tiny fixture. */
#include "image.h"
#include "npy.h"
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *data_dir;   /* $JF_TEST_DATA */

static char *data_path(const char *sub, const char *name)
{
  return g_build_filename(data_dir, sub, name, NULL);
}

static JfImage *load_ok(const char *sub, const char *name)
{
  GError *err = NULL;
  char *p = data_path(sub, name);
  JfImage *img = image_load(p, &err);
  if (err)
    g_printerr("%s: %s\n", p, err->message);
  g_assert_no_error(err);
  g_assert_nonnull(img);
  g_free(p);
  return img;
}

/* .rgba files: width, height (little-endian u32), then the RGBA bytes */
static JfImage *read_rgba(const char *name)
{
  char *p = data_path("image", name), *buf = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(p, &buf, &len, NULL));
  g_assert_cmpuint(len, >=, 8);
  guint32 w = GUINT32_FROM_LE(((guint32 *)buf)[0]), h = GUINT32_FROM_LE(((guint32 *)buf)[1]);
  g_assert_cmpuint(len, ==, 8 + (gsize)w * h * 4);
  JfImage *img = image_new((int)w, (int)h);
  memcpy(img->rgba, buf + 8, (gsize)w * h * 4);
  g_free(buf);
  g_free(p);
  return img;
}

static int max_abs_diff_rgba(const JfImage *a, const JfImage *b)
{
  g_assert_cmpint(a->width, ==, b->width);
  g_assert_cmpint(a->height, ==, b->height);
  int mx = 0;
  for (gsize i = 0; i < (gsize)a->width * a->height * 4; i++)
    mx = MAX(mx, abs((int)a->rgba[i] - (int)b->rgba[i]));
  return mx;
}

static JfProcessorConfig proc_config(int size, int min_size, const float mean[3], const float std[3])
{
  JfProcessorConfig pc;
  memset(&pc, 0, sizeof pc);
  pc.image_size = size;
  pc.min_size = min_size;
  pc.rescale = (float)0.00392156862745098;   /* as config.c stores the JSON value */
  pc.do_normalize = true;
  for (int c = 0; c < 3; c++) {
    pc.image_mean[c] = mean[c];
    pc.image_std[c] = std[c];
    pc.background[c] = (int)(mean[c] * 255.0);
  }
  return pc;
}

/* ------------------------------------------------------------------------------------------ */
/* preprocessing                                                                               */

static void test_preprocess_fixture(void)
{
  JfImage *img = load_ok("tiny", "inputs/chat.png");
  g_assert_cmpint(img->width, ==, 96);
  g_assert_cmpint(img->height, ==, 60);
  const float half[3] = {0.5f, 0.5f, 0.5f};
  JfProcessorConfig pc = proc_config(64, 14, half, half);
  float *pv = image_preprocess(img, &pc);
  g_assert_nonnull(pv);
  GError *err = NULL;
  char *p = data_path("tiny", "expected/chat_image/debug/pixel_values.npy");
  NpyArray *want = npy_read(p, &err);
  g_assert_no_error(err);
  g_assert_cmpint(want->dtype, ==, NPY_F32);
  g_assert_cmpuint(want->n_elements, ==, 3 * 64 * 64);
  double mx = 0;
  for (gsize i = 0; i < want->n_elements; i++)
    mx = MAX(mx, fabs((double)pv[i] - ((float *)want->data)[i]));
  g_test_message("chat.png -> 64: max abs diff %g", mx);
  g_assert_cmpfloat(mx, ==, 0.0);
  npy_array_free(want);
  g_free(p);
  g_free(pv);
  image_free(img);
}

static void test_preprocess_cases(void)
{
  char *p = data_path("image", "pre_cases.json");
  JsonParser *parser = json_parser_new();
  GError *err = NULL;
  g_assert_true(json_parser_load_from_file(parser, p, &err));
  g_assert_no_error(err);
  JsonArray *cases = json_node_get_array(json_parser_get_root(parser));
  g_assert_cmpuint(json_array_get_length(cases), >=, 8);
  for (guint i = 0; i < json_array_get_length(cases); i++) {
    JsonObject *c = json_array_get_object_element(cases, i);
    const char *name = json_object_get_string_member(c, "name");
    int S = (int)json_object_get_int_member(c, "image_size");
    float mean[3], std[3];
    for (int k = 0; k < 3; k++) {
      mean[k] = (float)json_array_get_double_element(json_object_get_array_member(c, "mean"), k);
      std[k] = (float)json_array_get_double_element(json_object_get_array_member(c, "std"), k);
    }
    JfProcessorConfig pc = proc_config(S, (int)json_object_get_int_member(c, "min_size"), mean, std);
    for (int k = 0; k < 3; k++)
      g_assert_cmpint(pc.background[k], ==,
                      json_array_get_int_element(json_object_get_array_member(c, "background"), k));
    JfImage *img = load_ok("image", json_object_get_string_member(c, "input"));
    float *pv = image_preprocess(img, &pc);
    g_assert_nonnull(pv);
    gsize n = (gsize)3 * S * S;
    float *want = g_new(float, n);
    if (json_object_has_member(c, "expected_f32")) {
      char *np = data_path("image", json_object_get_string_member(c, "expected_f32"));
      NpyArray *a = npy_read(np, &err);
      g_assert_no_error(err);
      g_assert_cmpuint(a->n_elements, ==, n);
      memcpy(want, a->data, n * sizeof(float));
      npy_array_free(a);
      g_free(np);
    } else {
      /* the reference's float output is exactly this map of the uint8 canvas (checked by the
       * generator), so comparing the canvas compares the resampler bit for bit */
      JfImage *u8 = load_ok("image", json_object_get_string_member(c, "expected_u8"));
      g_assert_cmpint(u8->width, ==, S);
      g_assert_cmpint(u8->height, ==, S);
      for (int ch = 0; ch < 3; ch++)
        for (gsize j = 0; j < (gsize)S * S; j++) {
          float x = (float)((double)u8->rgba[j * 4 + ch] * 0.00392156862745098);
          want[ch * S * S + j] = (x - mean[ch]) / std[ch];
        }
      image_free(u8);
    }
    double mx = 0;
    gsize n_diff = 0;
    for (gsize j = 0; j < n; j++) {
      double d = fabs((double)pv[j] - want[j]);
      mx = MAX(mx, d);
      n_diff += d != 0;
    }
    g_test_message("%s (%dx%d -> %d): max abs diff %g, %" G_GSIZE_FORMAT " values differ", name, img->width,
                   img->height, S, mx, n_diff);
    if (mx != 0)
      g_printerr("preprocess case %s: max abs diff %g (%" G_GSIZE_FORMAT " values)\n", name, mx, n_diff);
    g_assert_cmpfloat(mx, ==, 0.0);
    g_free(want);
    g_free(pv);
    image_free(img);
  }
  g_object_unref(parser);
  g_free(p);
}

/* Degenerate shapes and configs: no crash, right size, finite values. */
static void test_preprocess_odd(void)
{
  const float half[3] = {0.5f, 0.5f, 0.5f};
  int shapes[][2] = {{1, 1}, {1, 1000}, {1000, 1}, {3, 2}, {384, 384}, {2000, 7}};
  for (guint i = 0; i < G_N_ELEMENTS(shapes); i++) {
    JfImage *img = image_new(shapes[i][0], shapes[i][1]);
    for (gsize j = 0; j < (gsize)img->width * img->height * 4; j++)
      img->rgba[j] = (uint8_t)(j * 37 + 11);
    for (int S = 1; S <= 40; S += 13) {
      JfProcessorConfig pc = proc_config(S, 14, half, half);   /* min_size above S for small S */
      float *pv = image_preprocess(img, &pc);
      g_assert_nonnull(pv);
      for (gsize j = 0; j < (gsize)3 * S * S; j++)
        g_assert_true(isfinite(pv[j]) && pv[j] >= -1.0f && pv[j] <= 1.0f);
      g_free(pv);
    }
    image_free(img);
  }
  /* do_normalize false: only the rescale */
  JfImage *img = image_new(2, 1);
  img->rgba[0] = 255;
  JfProcessorConfig pc = proc_config(2, 1, half, half);
  pc.do_normalize = false;
  float *pv = image_preprocess(img, &pc);
  g_assert_cmpfloat(pv[0], ==, 1.0f);                  /* R of pixel (0,0), canvas row 0 */
  g_assert_cmpfloat(pv[2], ==, 127.0f / 255.0f);       /* padding row 1 */
  g_free(pv);
  image_free(img);
}

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                     */

static void test_load_png_variants(void)
{
  char *p = data_path("image", "png_cases.txt"), *list = NULL;
  g_assert_true(g_file_get_contents(p, &list, NULL, NULL));
  char **names = g_strsplit(g_strstrip(list), "\n", -1);
  g_assert_cmpuint(g_strv_length(names), >=, 20);
  for (char **n = names; *n; n++) {
    char *png = g_strdup_printf("png_%s.png", *n), *raw = g_strdup_printf("png_%s.rgba", *n);
    JfImage *got = load_ok("image", png), *want = read_rgba(raw);
    int d = max_abs_diff_rgba(got, want);
    if (d)
      g_printerr("%s: max diff %d\n", png, d);
    g_assert_cmpint(d, ==, 0);
    image_free(got);
    image_free(want);
    g_free(png);
    g_free(raw);
  }
  g_strfreev(names);
  g_free(list);
  g_free(p);
}

static void test_load_other_formats(void)
{
  /* lossless formats decode exactly as Pillow decodes them */
  const char *exact[][2] = {{"fmt_bmp.bmp", "fmt_bmp.rgba"}, {"fmt_tiff.tif", "fmt_tiff.rgba"},
                            {"fmt_gif.gif", "fmt_gif.rgba"}};
  for (guint i = 0; i < G_N_ELEMENTS(exact); i++) {
    JfImage *got = load_ok("image", exact[i][0]), *want = read_rgba(exact[i][1]);
    int d = max_abs_diff_rgba(got, want);
    g_test_message("%s: max diff vs Pillow %d", exact[i][0], d);
    g_assert_cmpint(d, ==, 0);
    image_free(got);
    image_free(want);
  }
  /* JPEG: libjpeg in both, but decoder settings may differ in the last bit */
  JfImage *jpg = load_ok("image", "fmt_jpeg.jpg"), *want = read_rgba("fmt_jpeg.rgba");
  int d = max_abs_diff_rgba(jpg, want);
  g_test_message("fmt_jpeg.jpg: max diff vs Pillow %d", d);
  g_assert_cmpint(d, <=, 2);
  /* EXIF orientation 6: the 40x24 stored pixels are shown turned 90 degrees clockwise */
  JfImage *rot = load_ok("image", "fmt_jpeg_exif6.jpg");
  g_assert_cmpint(rot->width, ==, 24);
  g_assert_cmpint(rot->height, ==, 40);
  int mx = 0;
  for (int y = 0; y < rot->height; y++)
    for (int x = 0; x < rot->width; x++)
      for (int c = 0; c < 3; c++) {
        /* display (x, y) comes from stored (col = y, row = H-1-x) */
        int sx = y, sy = want->height - 1 - x;
        mx = MAX(mx, abs((int)rot->rgba[(y * rot->width + x) * 4 + c] -
                         (int)want->rgba[(sy * want->width + sx) * 4 + c]));
      }
  g_test_message("fmt_jpeg_exif6.jpg: max diff vs rotated Pillow decode %d", mx);
  g_assert_cmpint(mx, <=, 2);
  image_free(rot);
  image_free(jpg);
  image_free(want);
}

static void expect_error(JfImage *img, GError *err, int code, const char *in_message)
{
  g_assert_null(img);
  g_assert_nonnull(err);
  g_test_message("error: %s", err->message);
  g_assert_error(err, JF_IMAGE_ERROR, code);
  g_assert_null(strchr(err->message, '\n'));
  if (!strstr(err->message, in_message))
    g_error("\"%s\" not in \"%s\"", in_message, err->message);
}

static void expect_load_error(const char *name, int code, const char *in_message)
{
  GError *err = NULL;
  char *p = data_path("image", name);
  JfImage *img = image_load(p, &err);
  expect_error(img, err, code, name);
  if (in_message && !strstr(err->message, in_message))
    g_error("\"%s\" not in \"%s\"", in_message, err->message);
  g_error_free(err);
  g_free(p);
}

static void test_load_errors(void)
{
  expect_load_error("bad_truncated.png", JF_IMAGE_ERROR_FORMAT, "truncated");
  expect_load_error("bad_zlib.png", JF_IMAGE_ERROR_FORMAT, NULL);
  expect_load_error("bad_zero_width.png", JF_IMAGE_ERROR_EMPTY, "0x4");
  expect_load_error("bad_huge.png", JF_IMAGE_ERROR_TOO_LARGE, "20000x20000");
  expect_load_error("does_not_exist.png", JF_IMAGE_ERROR_IO, "No such file");

  char *dir = g_dir_make_tmp("jf-image-XXXXXX", NULL);
  char *empty = g_build_filename(dir, "empty.png", NULL), *text = g_build_filename(dir, "notes.jpg", NULL);
  g_assert_true(g_file_set_contents(empty, "", 0, NULL));
  g_assert_true(g_file_set_contents(text, "this is not an image, just some words\n", -1, NULL));
  GError *err = NULL;
  JfImage *img = image_load(empty, &err);
  expect_error(img, err, JF_IMAGE_ERROR_FORMAT, "empty.png");
  g_clear_error(&err);
  img = image_load(text, &err);
  expect_error(img, err, JF_IMAGE_ERROR_FORMAT, "notes.jpg");
  g_clear_error(&err);
  img = image_load(dir, &err);
  expect_error(img, err, JF_IMAGE_ERROR_IO, "not a regular file");
  g_clear_error(&err);
  img = image_load_bytes("\x89PNG\r\n\x1a\n", 8, NULL, &err);
  expect_error(img, err, JF_IMAGE_ERROR_FORMAT, "image data");
  g_clear_error(&err);
  img = image_load_bytes("", 0, "pasted", &err);
  expect_error(img, err, JF_IMAGE_ERROR_FORMAT, "pasted");
  g_clear_error(&err);
  g_unlink(empty);
  g_unlink(text);
  g_rmdir(dir);
  g_free(empty);
  g_free(text);
  g_free(dir);
}

/* A huge size must be refused from the header (gdk-pixbuf formats: in "size-prepared", before the
 * loader allocates its pixbuf), with the size in the message. Under an address-space limit, in a
 * subprocess, so that a regression cannot take the machine's memory. */
static void test_load_huge_pixbuf(void)
{
  if (g_test_subprocess()) {
#ifndef __SANITIZE_ADDRESS__   /* ASan reserves terabytes of address space */
    struct rlimit rl = {.rlim_cur = 1024u << 20, .rlim_max = 1024u << 20};
    g_assert_cmpint(setrlimit(RLIMIT_AS, &rl), ==, 0);
#endif
    expect_load_error("bad_huge.bmp", JF_IMAGE_ERROR_TOO_LARGE, "16000x16000");
    expect_load_error("bad_huge.jpg", JF_IMAGE_ERROR_TOO_LARGE, "16000x16000");
    expect_load_error("bad_huge.gif", JF_IMAGE_ERROR_TOO_LARGE, "16000x16000");
    expect_load_error("bad_huge.tif", JF_IMAGE_ERROR_TOO_LARGE, "16000x16000");
    expect_load_error("bad_huge.png", JF_IMAGE_ERROR_TOO_LARGE, "20000x20000");
    return;
  }
  g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed();
}

/* Truncations and byte flips of every sample must give an image or a one-line error, never a
 * crash (run under ASan/valgrind to make this stricter). */
static void test_load_mutations(void)
{
  const char *files[] = {"png_rgba8_interlaced.png", "png_pal4_trns.png", "png_rgb16.png", "fmt_jpeg.jpg",
                         "fmt_gif.gif", "fmt_bmp.bmp", "fmt_tiff.tif", "text_mixed.png"};
  GRand *rand = g_rand_new_with_seed(1234);
  for (guint f = 0; f < G_N_ELEMENTS(files); f++) {
    char *p = data_path("image", files[f]), *buf = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(p, &buf, &len, NULL));
    for (int trial = 0; trial < 120; trial++) {
      guint8 *m = g_memdup2(buf, len);
      gsize mlen = len;
      if (trial < 40) {
        mlen = (gsize)g_rand_int_range(rand, 0, (gint32)len);   /* truncation */
      } else {
        int flips = g_rand_int_range(rand, 1, 6);
        for (int k = 0; k < flips; k++)
          m[g_rand_int_range(rand, 0, (gint32)len)] = (guint8)g_rand_int_range(rand, 0, 256);
      }
      GError *err = NULL;
      JfImage *img = image_load_bytes(m, mlen, files[f], &err);
      if (img) {
        g_assert_no_error(err);
        g_assert_cmpint(img->width, >, 0);
        image_free(img);
      } else {
        g_assert_nonnull(err);
        g_assert_true(err->domain == JF_IMAGE_ERROR);
        g_assert_nonnull(strstr(err->message, files[f]));
        g_error_free(err);
      }
      g_free(m);
    }
    g_free(buf);
    g_free(p);
  }
  g_rand_free(rand);
}

/* ------------------------------------------------------------------------------------------ */
/* PNG writing and text                                                                        */

static JfImage *pattern_image(int w, int h)
{
  JfImage *img = image_new(w, h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = img->rgba + ((gsize)y * w + x) * 4;
      p[0] = (uint8_t)(x * 7);
      p[1] = (uint8_t)(y * 13);
      p[2] = (uint8_t)(x * y);
      p[3] = (uint8_t)(255 - x - y);
    }
  return img;
}

static const char *const rt_keys[] = {"prompt", "negative", "seed", "Software", "empty", NULL};
static const char *const rt_values[] = {"빨간 큐브 2 개, a red cube on a blue table — “quoted” ☃ 😀", "",
                                        "1234567890", "JanusFlow 0.1", "", NULL};

static void test_png_roundtrip(void)
{
  char *dir = g_dir_make_tmp("jf-image-XXXXXX", NULL);
  char *path = g_build_filename(dir, "out.png", NULL);
  JfImage *img = pattern_image(37, 23);
  GError *err = NULL;
  for (int drop = 0; drop < 2; drop++) {
    g_assert_true(image_save_png(path, img, drop, rt_keys, rt_values, &err));
    g_assert_no_error(err);
    JfImage *back = image_load(path, &err);
    g_assert_no_error(err);
    for (gsize i = 0; i < (gsize)img->width * img->height * 4; i++)
      g_assert_cmpint(back->rgba[i], ==, (i % 4 == 3 && drop) ? 255 : img->rgba[i]);
    image_free(back);
    GHashTable *t = image_read_png_text(path, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(g_hash_table_size(t), ==, 5);
    for (int k = 0; rt_keys[k]; k++)
      g_assert_cmpstr(g_hash_table_lookup(t, rt_keys[k]), ==, rt_values[k]);
    g_hash_table_unref(t);
  }
  /* replacing an existing file keeps its permissions; no temporary file is left behind */
  g_assert_cmpint(g_chmod(path, 0640), ==, 0);
  g_assert_true(image_save_png(path, img, FALSE, NULL, NULL, &err));
  g_assert_no_error(err);
  GStatBuf st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 0777, ==, 0640);
  GHashTable *t = image_read_png_text(path, &err);
  g_assert_no_error(err);
  g_assert_cmpuint(g_hash_table_size(t), ==, 0);
  g_hash_table_unref(t);
  GDir *d = g_dir_open(dir, 0, NULL);
  int n = 0;
  while (g_dir_read_name(d))
    n++;
  g_dir_close(d);
  g_assert_cmpint(n, ==, 1);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  image_free(img);
}

static void test_png_text_read(void)
{
  GError *err = NULL;
  char *p = data_path("image", "text_mixed.png");
  GHashTable *t = image_read_png_text(p, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(g_hash_table_lookup(t, "Title"), ==, "café ½");    /* Latin-1 tEXt */
  GString *zipped = g_string_new(NULL);
  for (int i = 0; i < 50; i++)
    g_string_append(zipped, "zipped text ");
  g_assert_cmpstr(g_hash_table_lookup(t, "Comment"), ==, zipped->str);
  g_string_free(zipped, TRUE);
  g_assert_cmpstr(g_hash_table_lookup(t, "prompt"), ==, "고양이 그림, photo 35mm");   /* compressed iTXt */
  g_assert_cmpstr(g_hash_table_lookup(t, "after"), ==, "뒤에 있는 텍스트");          /* after the IDATs */
  g_assert_cmpstr(g_hash_table_lookup(t, "utf8_in_text"), ==, "été ☃");
  g_assert_cmpuint(g_hash_table_size(t), ==, 5);
  g_hash_table_unref(t);
  g_free(p);

  /* the 24 MiB zTXt is dropped, its neighbour kept */
  p = data_path("image", "text_bomb.png");
  t = image_read_png_text(p, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(g_hash_table_lookup(t, "ok"), ==, "yes");
  g_assert_null(g_hash_table_lookup(t, "bomb"));
  g_hash_table_unref(t);
  g_free(p);

  /* bad CRC skipped; a chunk running past the end of the file ends the walk */
  p = data_path("image", "text_broken.png");
  t = image_read_png_text(p, &err);
  g_assert_no_error(err);
  g_assert_cmpstr(g_hash_table_lookup(t, "good"), ==, "value");
  g_assert_null(g_hash_table_lookup(t, "badcrc"));
  g_assert_cmpuint(g_hash_table_size(t), ==, 1);
  g_hash_table_unref(t);
  g_free(p);

  p = data_path("image", "text_many.png");
  t = image_read_png_text(p, &err);
  g_assert_null(t);
  g_assert_error(err, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE);
  g_assert_nonnull(strstr(err->message, "text_many.png"));
  g_clear_error(&err);
  g_free(p);

  p = data_path("image", "fmt_bmp.bmp");
  t = image_read_png_text(p, &err);
  g_assert_null(t);
  g_assert_error(err, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT);
  g_assert_nonnull(strstr(err->message, "fmt_bmp.bmp"));
  g_clear_error(&err);
  g_free(p);

  t = image_read_png_text("/nonexistent/x.png", &err);
  g_assert_null(t);
  g_assert_error(err, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO);
  g_assert_nonnull(strstr(err->message, "/nonexistent/x.png"));
  g_clear_error(&err);

  /* mutated text chunks: never a crash */
  char *buf = NULL;
  gsize len = 0;
  p = data_path("image", "text_mixed.png");
  g_assert_true(g_file_get_contents(p, &buf, &len, NULL));
  char *dir = g_dir_make_tmp("jf-image-XXXXXX", NULL);
  char *mp = g_build_filename(dir, "m.png", NULL);
  GRand *rand = g_rand_new_with_seed(99);
  for (int trial = 0; trial < 200; trial++) {
    char *m = g_memdup2(buf, len);
    for (int k = 0; k < 4; k++)
      m[g_rand_int_range(rand, 8, (gint32)len)] = (char)g_rand_int_range(rand, 0, 256);
    g_assert_true(g_file_set_contents(mp, m, (gssize)len, NULL));
    t = image_read_png_text(mp, &err);
    if (t) {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, t);
      while (g_hash_table_iter_next(&it, &k, &v))
        g_assert_true(g_utf8_validate(k, -1, NULL) && g_utf8_validate(v, -1, NULL));
      g_hash_table_unref(t);
    } else {
      g_clear_error(&err);
    }
    g_free(m);
  }
  g_rand_free(rand);
  g_unlink(mp);
  g_rmdir(dir);
  g_free(mp);
  g_free(dir);
  g_free(buf);
  g_free(p);
}

static void expect_save_error(const char *path, const JfImage *img, const char *const *keys,
                              const char *const *values, const char *in_message)
{
  GError *err = NULL;
  g_assert_false(image_save_png(path, img, FALSE, keys, values, &err));
  g_assert_error(err, JF_IMAGE_ERROR, err->code);
  g_test_message("save error: %s", err->message);
  g_assert_null(strchr(err->message, '\n'));
  if (!strstr(err->message, in_message))
    g_error("\"%s\" not in \"%s\"", in_message, err->message);
  g_error_free(err);
}

static gboolean same_file_contents(const char *path, const char *want, gsize want_len)
{
  char *buf = NULL;
  gsize len = 0;
  gboolean ok = g_file_get_contents(path, &buf, &len, NULL) && len == want_len && memcmp(buf, want, len) == 0;
  g_free(buf);
  return ok;
}

static int count_entries(const char *dir)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  int n = 0;
  while (g_dir_read_name(d))
    n++;
  g_dir_close(d);
  return n;
}

static void test_png_save_errors(void)
{
  JfImage *img = pattern_image(9, 5);
  expect_save_error("/dev/full/x.png", img, NULL, NULL, "/dev/full/x.png");
  expect_save_error("/dev/full", img, NULL, NULL, "not a regular file");
  expect_save_error("/proc/jf-image-test.png", img, NULL, NULL, "/proc/jf-image-test.png");
  expect_save_error("/nonexistent-dir/x.png", img, NULL, NULL, "No such file");

  char *dir = g_dir_make_tmp("jf-image-XXXXXX", NULL);
  char *path = g_build_filename(dir, "keep.png", NULL);
  const char *orig = "original contents";
  g_assert_true(g_file_set_contents(path, orig, -1, NULL));
  /* invalid parameters: refused before anything is written */
  const char *const bad_key[] = {"bad  key", NULL}, *const v1[] = {"v", NULL};
  expect_save_error(path, img, bad_key, v1, "bad  key");
  const char *const long_key[] = {"0123456789012345678901234567890123456789012345678901234567890123456789"
                                  "0123456789", NULL};
  expect_save_error(path, img, long_key, v1, "text key");
  const char *const k1[] = {"k", NULL}, *const bad_utf8[] = {"\xff\xfe", NULL};
  expect_save_error(path, img, k1, bad_utf8, "UTF-8");
  const char *const k2[] = {"a", "b", NULL};
  expect_save_error(path, img, k2, v1, "differ");
  g_assert_true(same_file_contents(path, orig, strlen(orig)));
  g_assert_cmpint(count_entries(dir), ==, 1);

  /* a directory that cannot be written (meaningless for root, who may write anyway) */
  char *ro = g_build_filename(dir, "ro", NULL), *ro_file = g_build_filename(ro, "x.png", NULL);
  g_assert_cmpint(g_mkdir(ro, 0500), ==, 0);
  if (access(ro, W_OK) != 0)
    expect_save_error(ro_file, img, NULL, NULL, "Permission denied");
  else
    g_test_message("running as root: skipped the read-only directory case");
  g_chmod(ro, 0700);
  g_rmdir(ro);
  g_free(ro_file);
  g_free(ro);
  g_free(path);
  g_free(dir);
  image_free(img);
}

/* A write that fails half way (file size limit: EFBIG, like a full disk) leaves the previous file
 * untouched and no temporary file behind. In a subprocess because of the limit. */
static void test_png_save_fails_midway(void)
{
  if (g_test_subprocess()) {
    char *dir = g_dir_make_tmp("jf-image-XXXXXX", NULL);
    char *path = g_build_filename(dir, "keep.png", NULL);
    const char *orig = "original contents";
    g_assert_true(g_file_set_contents(path, orig, -1, NULL));
    /* noise does not compress: well over the limit */
    JfImage *img = image_new(300, 300);
    GRand *r = g_rand_new_with_seed(5);
    for (gsize i = 0; i < 300 * 300 * 4; i++)
      img->rgba[i] = (uint8_t)g_rand_int(r);
    g_rand_free(r);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY};
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
    expect_save_error(path, img, rt_keys, rt_values, "keep.png");
    g_assert_true(same_file_contents(path, orig, strlen(orig)));
    g_assert_cmpint(count_entries(dir), ==, 1);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
    image_free(img);
    return;
  }
  g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  data_dir = g_getenv("JF_TEST_DATA");
  if (!data_dir) {
    g_printerr("JF_TEST_DATA is not set\n");
    return 1;
  }
  g_test_add_func("/image/preprocess/fixture", test_preprocess_fixture);
  g_test_add_func("/image/preprocess/reference-cases", test_preprocess_cases);
  g_test_add_func("/image/preprocess/odd-shapes", test_preprocess_odd);
  g_test_add_func("/image/load/png-variants", test_load_png_variants);
  g_test_add_func("/image/load/other-formats", test_load_other_formats);
  g_test_add_func("/image/load/errors", test_load_errors);
  g_test_add_func("/image/load/huge-header", test_load_huge_pixbuf);
  g_test_add_func("/image/load/mutations", test_load_mutations);
  g_test_add_func("/image/png/roundtrip", test_png_roundtrip);
  g_test_add_func("/image/png/text-read", test_png_text_read);
  g_test_add_func("/image/png/save-errors", test_png_save_errors);
  g_test_add_func("/image/png/save-fails-midway", test_png_save_fails_midway);
  return g_test_run();
}
