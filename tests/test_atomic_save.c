/* image_save_png is atomic: a child process saves large PNGs over the same path again and again
 * and is killed with SIGKILL at random moments; after every kill the path holds one of the two
 * complete images, never a broken one. A save that fails (full disk, missing folder, a device)
 * reports it and leaves the previous file as it was. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "image.h"
#include "test_util.h"

#define SIDE 1024   /* ~3 MiB of noise per PNG: each save takes long enough to be cut */
#define KILLS 50

static char *tmp_dir;
static JfImage *img_a, *img_b;

/* Opaque noise (alpha 255, as a drop_alpha save reads back), different per seed. */
static JfImage *noise_image(guint32 seed)
{
  JfImage *img = image_new(SIDE, SIDE);
  GRand *r = g_rand_new_with_seed(seed);
  for (gsize i = 0; i < (gsize)SIDE * SIDE; i++) {
    guint32 v = g_rand_int(r);
    img->rgba[4 * i] = (guint8)v;
    img->rgba[4 * i + 1] = (guint8)(v >> 8);
    img->rgba[4 * i + 2] = (guint8)(v >> 16);
    img->rgba[4 * i + 3] = 255;
  }
  g_rand_free(r);
  return img;
}

static gboolean same_pixels(const JfImage *x, const JfImage *y)
{
  return x->width == y->width && x->height == y->height &&
         memcmp(x->rgba, y->rgba, (gsize)x->width * x->height * 4) == 0;
}

static void save_or_die(const char *path, const JfImage *img)
{
  GError *e = NULL;
  static const char *const keys[] = {"prompt", NULL};
  const char *vals[] = {img == img_a ? "image A" : "image B", NULL};
  if (!image_save_png(path, img, TRUE, keys, vals, &e))
    g_error("save failed: %s", e->message);
}

/* Which of A / B the file holds: 'A', 'B', or fails the test (broken or other content). */
static char file_holds(const char *path)
{
  GError *e = NULL;
  JfImage *got = image_load(path, &e);
  if (!got)
    g_error("%s is not a complete image after a kill: %s", path, e->message);
  char which = same_pixels(got, img_a) ? 'A' : same_pixels(got, img_b) ? 'B' : '?';
  image_free(got);
  if (which == '?')
    g_error("%s decodes to neither of the two images", path);
  GHashTable *text = image_read_png_text(path, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(g_hash_table_lookup(text, "prompt"), ==, which == 'A' ? "image A" : "image B");
  g_hash_table_unref(text);
  return which;
}

/* Removes the temporaries (NAME.XXXXXX) a killed save leaves; returns how many there were. */
static int remove_leftovers(const char *dir, const char *name)
{
  GDir *d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  int n = 0;
  const char *f;
  char *prefix = g_strconcat(name, ".", NULL);
  while ((f = g_dir_read_name(d)))
    if (g_str_has_prefix(f, prefix)) {
      char *p = g_build_filename(dir, f, NULL);
      g_unlink(p);
      g_free(p);
      n++;
    }
  g_free(prefix);
  g_dir_close(d);
  return n;
}

static void test_kill_during_save(void)
{
  char *dir = g_build_filename(tmp_dir, "kill", NULL);
  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  char *path = g_build_filename(dir, "image.png", NULL);
  save_or_die(path, img_a);

  /* how long one save takes here, to spread the kills over whole saves */
  gint64 t0 = g_get_monotonic_time();
  save_or_die(path, img_b);
  save_or_die(path, img_a);
  gint64 per_save = MAX((g_get_monotonic_time() - t0) / 2, 1000);
  g_test_message("one save of a %dx%d noise PNG takes %.0f ms", SIDE, SIDE, per_save / 1000.0);

  GRand *r = g_rand_new_with_seed(g_test_rand_int());
  int seen[2] = {0, 0}, cut = 0;
  char holds = 'A';
  for (int k = 0; k < KILLS; k++) {
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
      /* first the image the file does not hold, then alternately */
      const JfImage *other = holds == 'A' ? img_b : img_a, *same = holds == 'A' ? img_a : img_b;
      for (int i = 0;; i++)
        save_or_die(path, i % 2 ? same : other);
    }
    /* if saves run slower now than when timed (a loaded machine), widen the window so that some
     * kills still come after a save has completed */
    double scale = k >= 10 && (seen[0] == 0 || seen[1] == 0) ? 1.0 + (k - 9) * 0.5 : 1.0;
    g_usleep((gulong)g_rand_int_range(r, (gint32)(per_save / 10), (gint32)(per_save * 3 * scale)));
    kill(pid, SIGKILL);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    holds = file_holds(path);
    seen[holds == 'B']++;
    cut += remove_leftovers(dir, "image.png") > 0;
  }
  g_rand_free(r);
  g_test_message("%d kills: the file held A %d times, B %d times; %d kills cut a save in the middle", KILLS,
                 seen[0], seen[1], cut);
  /* the kills did land inside saves, and both images were seen: the test tested something */
  g_assert_cmpint(cut, >=, KILLS / 5);
  g_assert_cmpint(seen[0], >, 0);
  g_assert_cmpint(seen[1], >, 0);
  g_free(path);
  g_free(dir);
}

static void expect_intact(const char *path, const char *why)
{
  g_assert_cmpint(file_holds(path), ==, 'A');
  g_test_message("after %s: still image A", why);
}

/* The disk fills up while the image is written (RLIMIT_FSIZE in a child: write() fails with
 * EFBIG): the error says so, the old file is untouched and the temporary is removed. */
static void test_full_disk(void)
{
  char *dir = g_build_filename(tmp_dir, "full", NULL);
  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  char *path = g_build_filename(dir, "image.png", NULL);
  save_or_die(path, img_a);
  int pipefd[2];
  g_assert_cmpint(pipe(pipefd), ==, 0);
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    close(pipefd[0]);
    struct rlimit rl = {64 * 1024, 64 * 1024};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    GError *e = NULL;
    gboolean ok = image_save_png(path, img_b, TRUE, NULL, NULL, &e);
    const char *msg = ok ? "saved" : e->message;
    if (write(pipefd[1], msg, strlen(msg)) < 0)
      _exit(3);
    _exit(ok ? 0 : 1);
  }
  close(pipefd[1]);
  char msg[512] = "";
  gssize n = 0, got;
  while ((got = read(pipefd[0], msg + n, sizeof msg - 1 - (gsize)n)) > 0)
    n += got;
  msg[n] = 0;
  close(pipefd[0]);
  int status = 0;
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  g_test_message("save on a full disk: %s", msg);
  g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  g_assert_nonnull(strstr(msg, path));
  g_assert_nonnull(strstr(msg, "cannot save"));
  g_assert_nonnull(strstr(msg, g_strerror(EFBIG)));
  expect_intact(path, "a full disk");
  g_assert_cmpint(remove_leftovers(dir, "image.png"), ==, 0);
  g_free(path);
  g_free(dir);
}

static void test_failed_saves_keep_original(void)
{
  char *dir = g_build_filename(tmp_dir, "fail", NULL);
  g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
  char *path = g_build_filename(dir, "image.png", NULL);
  save_or_die(path, img_a);
  GError *e = NULL;

  /* a folder that does not exist */
  char *missing = g_build_filename(dir, "no-such-folder", "image.png", NULL);
  g_assert_false(image_save_png(missing, img_b, TRUE, NULL, NULL, &e));
  g_assert_error(e, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "no-such-folder"));
  g_clear_error(&e);
  g_free(missing);

  /* a device: refused, and the device stays a device */
  g_assert_false(image_save_png("/dev/full", img_b, TRUE, NULL, NULL, &e));
  g_assert_error(e, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "not a regular file"));
  g_clear_error(&e);
  GStatBuf st;
  g_assert_cmpint(g_stat("/dev/full", &st), ==, 0);
  g_assert_true(S_ISCHR(st.st_mode));

  /* invalid text keys: refused before anything is written */
  static const char *const bad_keys[] = {" leading space", NULL};
  static const char *const vals[] = {"x", NULL};
  g_assert_false(image_save_png(path, img_b, TRUE, bad_keys, vals, &e));
  g_assert_error(e, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT);
  g_clear_error(&e);
  expect_intact(path, "refused saves");
  g_assert_cmpint(remove_leftovers(dir, "image.png"), ==, 0);

  /* a save through a symbolic link replaces the file it points to, keeping the link and the
   * file's permissions */
  char *link = g_build_filename(dir, "link.png", NULL);
  g_assert_cmpint(symlink(path, link), ==, 0);
  g_assert_cmpint(g_chmod(path, 0640), ==, 0);
  save_or_die(link, img_b);
  g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_mode & 07777, ==, 0640);
  g_assert_cmpint(file_holds(path), ==, 'B');
  g_free(link);
  g_free(path);
  g_free(dir);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_dir = test_tmp_dir_new("jf-atomic-XXXXXX");
  img_a = noise_image(1);
  img_b = noise_image(2);
  g_test_add_func("/atomic-save/kill-during-save", test_kill_during_save);
  g_test_add_func("/atomic-save/full-disk", test_full_disk);
  g_test_add_func("/atomic-save/failed-saves-keep-original", test_failed_saves_keep_original);
  int rc = g_test_run();
  image_free(img_a);
  image_free(img_b);
  if (rc == 0)
    test_rm_rf(tmp_dir);
  g_free(tmp_dir);
  return rc;
}
