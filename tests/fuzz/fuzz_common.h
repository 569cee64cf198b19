/* Shared by the libFuzzer targets: an in-memory file whose path the path-based loaders can open
 * (memfd: no disk writes per input), the fixture folder, and strict logging. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
  int fd;
  char path[64];
} FuzzFile;

/* A g_critical or g_error means a programming error reached from input (ours or a library's):
 * make it an abort, which libFuzzer turns into a saved crash input. (g_log_set_always_fatal
 * would raise SIGTRAP instead, which libFuzzer does not catch.) A target may list messages of
 * system libraries that are known, harmless (the function returns early) and outside our code. */
static const char *const *fuzz_tolerated_criticals;

static GLogWriterOutput fuzz_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer user)
{
  GLogWriterOutput r = g_log_writer_default(level, fields, n, user);
  if (!(level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR)))
    return r;
  for (gsize i = 0; i < n && (level & G_LOG_LEVEL_CRITICAL) && fuzz_tolerated_criticals; i++)
    if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
      for (const char *const *t = fuzz_tolerated_criticals; *t; t++)
        if (g_str_has_prefix(fields[i].value, *t))
          return r;
  abort();
}

static inline void fuzz_strict_logging(void)
{
  g_log_set_writer_func(fuzz_log_writer, NULL, NULL);
}

/* An invariant of the code under test: says which one broke, then aborts (a saved crash). */
#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);          \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

static inline void fuzz_file_init(FuzzFile *f, const char *name)
{
  f->fd = memfd_create(name, MFD_CLOEXEC);
  if (f->fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

static inline void fuzz_file_set(FuzzFile *f, const uint8_t *data, size_t size)
{
  if (ftruncate(f->fd, 0) != 0 || (size && pwrite(f->fd, data, size, 0) != (ssize_t)size)) {
    perror("memfd write");
    abort();
  }
}

/* tests/data, from $JF_FUZZ_DATA (set by tests/fuzz/run.sh) or the source tree layout. */
static inline const char *fuzz_data_dir(void)
{
  const char *d = g_getenv("JF_FUZZ_DATA");
  return d ? d : "tests/data";
}

/* Writes a whole file (plain stdio: g_file_set_contents fsyncs, far too slow per input). */
static inline void fuzz_write(const char *path, const void *data, size_t size)
{
  FILE *fp = fopen(path, "wb");
  if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) {
    fprintf(stderr, "fuzz: cannot write %s\n", path);
    abort();
  }
}
