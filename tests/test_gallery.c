/* ui/jf-gallery: an image written by `janusflow generate` (keys without the janusflow. prefix)
 * dropped on the canvas restores its parameters, as one saved by the GUI does. Runs the real
 * binary on the tiny fixture; needs no display. */
#include "jf-gallery.h"
#include <glib/gstdio.h>

static void test_cli_image(void)
{
  const char *build = g_getenv("JF_BUILD_DIR"), *data = g_getenv("JF_TEST_DATA");
  g_assert_nonnull(build);
  g_assert_nonnull(data);
  GError *err = NULL;
  g_autofree char *dir = g_dir_make_tmp("jf-gallery-XXXXXX", &err);
  g_assert_no_error(err);
  g_autofree char *exe = g_build_filename(build, "app", "janusflow", NULL);
  g_autofree char *model = g_build_filename(data, "tiny", "janusflow", NULL);
  g_autofree char *vae = g_build_filename(data, "tiny", "vae", NULL);
  g_autofree char *out = g_build_filename(dir, "cat.png", NULL);
  const char *argv[] = { exe, "generate", "-m", model, "--vae", vae, "-p", "a cat, \"quoted\" and ü",
                         "-n", "3", "-c", "4.5", "-s", "77", "-b", "2", "-o", out, "-q", NULL };
  int status = 0;
  g_autofree char *err_text = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &err_text, &status, &err));
  g_assert_no_error(err);
  if (!g_spawn_check_wait_status(status, NULL))
    g_error("janusflow generate failed: %s", err_text);
  for (int i = 0; i < 2; i++) {
    g_autofree char *name = g_strdup_printf("cat-%d.png", i);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    JfGalleryEntry *e = jf_gallery_read(path, &err);
    g_assert_no_error(err);
    g_assert_true(e->has_params);
    g_assert_cmpstr(e->prompt, ==, "a cat, \"quoted\" and ü");
    g_assert_cmpint(e->steps, ==, 3);
    g_assert_cmpfloat_with_epsilon(e->cfg, 4.5, 1e-9);
    g_assert_cmpuint(e->seed, ==, 77);
    g_assert_cmpint(e->index, ==, i);
    jf_gallery_entry_free(e);
    g_unlink(path);
  }
  g_rmdir(dir);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/gallery/cli-image", test_cli_image);
  return g_test_run();
}
