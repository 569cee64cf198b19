/* vkrt pipeline cache: one VkPipelineCache per context, so that a pipeline built once on this
 * machine is not compiled again by the next run (issue 7: the first preview after Generate).
 *
 * The file is named after the device and the driver build (vendor, device, driverVersion,
 * pipelineCacheUUID), and its header is checked against them again before the driver sees it:
 * drivers are not required to survive foreign or damaged data. The driver's data is wrapped in
 * a small header of ours (magic, size, SHA-256) because Vulkan's own header cannot tell a file cut
 * short or damaged after its first 32 bytes from a good one. Any problem with the file only
 * costs the speed-up: it is ignored with a g_debug note, never reported to the user. The save is
 * atomic (temporary file, fsync, rename), so a crash or a second process writing at the same time
 * leaves either the old file or a whole new one. vk/ does not use app/'s save helpers on purpose:
 * the runtime knows nothing above it. */
#define G_LOG_DOMAIN "janusflow"
#include "vkrt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Far above what the engine's few dozen pipelines take (tens of KiB to a few MiB): a bigger file
 * is not ours, and reading it whole would cost more than compiling. Bounds the file we read and
 * the data we write alike. */
#define CACHE_MAX_BYTES (256ull << 20)
/* sizeof(VkPipelineCacheHeaderVersionOne) as laid out in the data: 4 x uint32 + 16-byte UUID */
#define HEADER_BYTES 32u
/* Our wrapper: magic, payload size (u64, little-endian), SHA-256 of the payload; then the payload,
 * which is what vkGetPipelineCacheData gave. */
#define WRAP_MAGIC "JFPIPEC1"
#define WRAP_BYTES (8u + 8u + 32u)

char *vkrt_pipeline_cache_file(const char *dir, const VkrtDeviceInfo *d)
{
  if (!dir || !*dir || !d) return NULL;
  char uuid[33];
  for (int i = 0; i < 16; i++) g_snprintf(uuid + 2 * i, 3, "%02x", d->pipeline_cache_uuid[i]);
  char *name = g_strdup_printf("%04x-%04x-%08x-%s.bin", d->vendor_id, d->device_id, d->driver_version, uuid);
  char *path = g_build_filename(dir, name, NULL);
  g_free(name);
  return path;
}

const char *vkrt_context_pipeline_cache_file(const VkrtContext *ctx) { return ctx->cache_path; }
uint64_t vkrt_context_pipeline_cache_loaded(const VkrtContext *ctx) { return ctx->cache_loaded; }

/* The header's fields are little-endian whatever the host's byte order (Vulkan spec). */
static uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void sha256(const uint8_t *data, gsize size, uint8_t out[32])
{
  GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(c, data, (gssize)size);
  gsize n = 32;
  g_checksum_get_digest(c, out, &n);
  g_checksum_free(c);
}

/* NULL: the file is a whole wrapper; *payload and *size then give the driver's data. */
static const char *unwrap(const uint8_t *file, gsize file_size, const uint8_t **payload, gsize *size)
{
  if (file_size < WRAP_BYTES || memcmp(file, WRAP_MAGIC, 8) != 0) return "not a janusflow pipeline cache";
  guint64 n = (guint64)le32(file + 8) | (guint64)le32(file + 12) << 32;
  if (n != file_size - WRAP_BYTES) return "cut short or extended (size mismatch)";
  uint8_t sum[32];
  sha256(file + WRAP_BYTES, (gsize)n, sum);
  if (memcmp(sum, file + 16, 32) != 0) return "damaged (checksum mismatch)";
  *payload = file + WRAP_BYTES;
  *size = (gsize)n;
  return NULL;
}

/* NULL: the data starts with a header this device and driver wrote; else why not. */
static const char *header_problem(const VkrtContext *ctx, const uint8_t *data, gsize size)
{
  if (size < HEADER_BYTES) return "shorter than a cache header";
  uint32_t len = le32(data), version = le32(data + 4), vendor = le32(data + 8), device = le32(data + 12);
  if (len < HEADER_BYTES || len > size) return "bad header length";
  if (version != VK_PIPELINE_CACHE_HEADER_VERSION_ONE) return "unknown header version";
  if (vendor != ctx->info.vendor_id || device != ctx->info.device_id) return "written for another device";
  if (memcmp(data + 16, ctx->info.pipeline_cache_uuid, 16) != 0) return "written by another driver build";
  return NULL;
}

/* The whole file if it is a regular file of at most CACHE_MAX_BYTES; NULL otherwise (*why says
 * why, for the debug note; a missing file is no news and gets none). */
static uint8_t *read_bounded(const char *path, gsize *size, const char **why)
{
  *size = 0;
  *why = NULL;
  int fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0) {
    if (errno != ENOENT) *why = g_strerror(errno);
    return NULL;
  }
  struct stat st;
  uint8_t *data = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *why = "not a regular file";
  } else if ((guint64)st.st_size > CACHE_MAX_BYTES + WRAP_BYTES) {
    *why = "larger than 256 MiB";
  } else {
    /* read up to one byte more than fstat said: a file growing meanwhile is not trusted */
    gsize cap = (gsize)st.st_size + 1, got = 0;
    data = g_malloc(cap);
    for (;;) {
      ssize_t n = read(fd, data + got, cap - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) *why = g_strerror(errno);
        break;
      }
      got += (gsize)n;
      if (got == cap) {
        *why = "changed while being read";
        break;
      }
    }
    if (*why) g_clear_pointer(&data, g_free);
    else *size = got;
  }
  close(fd);
  return data;
}

void vkrt_cache_open(VkrtContext *ctx, const char *dir)
{
  ctx->cache_path = vkrt_pipeline_cache_file(dir, &ctx->info);
  gsize file_size = 0, size = 0;
  uint8_t *file = NULL;
  const uint8_t *data = NULL;
  if (ctx->cache_path) {
    const char *why = NULL;
    file = read_bounded(ctx->cache_path, &file_size, &why);
    if (file && !(why = unwrap(file, file_size, &data, &size)) && (why = header_problem(ctx, data, size)))
      data = NULL;
    if (why) g_debug("pipeline cache %s ignored: %s", ctx->cache_path, why);
    if (!data) size = 0;
  }
  VkPipelineCacheCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
    .initialDataSize = size,
    .pInitialData = data,
  };
  VkResult r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->cache);
  if (r != VK_SUCCESS && data) {
    g_debug("pipeline cache %s refused by the driver (VkResult %d): starting empty", ctx->cache_path, r);
    ci.initialDataSize = 0;
    ci.pInitialData = NULL;
    size = 0;
    r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->cache);
  }
  if (r != VK_SUCCESS) {
    g_debug("no pipeline cache (VkResult %d): pipelines are built without one", r);
    ctx->cache = VK_NULL_HANDLE;
    size = 0;
  }
  ctx->cache_loaded = size;
  g_free(file);
}

static gboolean write_all(int fd, const uint8_t *data, gsize size)
{
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FALSE;
    data += n;
    size -= (gsize)n;
  }
  return TRUE;
}

/* tmp + fsync + rename in the destination's folder (made 0700 if missing), then the folder is
 * synced so that the rename itself survives a power cut. */
static gboolean save_atomic(const char *path, const uint8_t *data, gsize size, GError **error)
{
  char *dir = g_path_get_dirname(path);
  char *tmp = NULL;
  int fd = -1;
  gboolean ok = FALSE;
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", dir, g_strerror(e));
    goto out;
  }
  tmp = g_strdup_printf("%s.XXXXXX", path);
  if ((fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600)) < 0) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create a file in %s: %s", dir, g_strerror(e));
    g_clear_pointer(&tmp, g_free);
    goto out;
  }
  if (!write_all(fd, data, size) || fsync(fd) != 0) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot write %s: %s", tmp, g_strerror(e));
    goto out;
  }
  if (close(fd) != 0) {
    fd = -1;
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot write %s: %s", tmp, g_strerror(e));
    goto out;
  }
  fd = -1;
  if (g_rename(tmp, path) != 0) {
    int e = errno;
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot rename %s to %s: %s", tmp, path,
                g_strerror(e));
    goto out;
  }
  g_clear_pointer(&tmp, g_free);
  int dfd = g_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  ok = TRUE;
out:
  if (fd >= 0) close(fd);
  if (tmp) {
    (void)g_unlink(tmp);
    g_free(tmp);
  }
  g_free(dir);
  return ok;
}

gboolean vkrt_context_save_pipeline_cache(VkrtContext *ctx, GError **error)
{
  if (!ctx->cache || !ctx->cache_path) return TRUE;
  g_mutex_lock(&ctx->lock);
  gboolean ok = TRUE;
  uint8_t *data = NULL;
  size_t size = 0;
  if (ctx->pipelines_unsaved == 0) goto out;
  VkResult r = vkGetPipelineCacheData(ctx->device, ctx->cache, &size, NULL);
  if (r == VK_SUCCESS && size > CACHE_MAX_BYTES) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "pipeline cache of %zu bytes not saved (over 256 MiB)", size);
    ok = FALSE;
    goto out;
  }
  if (r == VK_SUCCESS && size > 0) {
    data = g_malloc(WRAP_BYTES + size);
    r = vkGetPipelineCacheData(ctx->device, ctx->cache, &size, data + WRAP_BYTES);
  }
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkGetPipelineCacheData");
    ok = FALSE;
    goto out;
  }
  /* a driver that keeps no data has nothing worth a file */
  if (size >= HEADER_BYTES) {
    memcpy(data, WRAP_MAGIC, 8);
    for (int i = 0; i < 8; i++) data[8 + i] = (uint8_t)((guint64)size >> (8 * i));
    sha256(data + WRAP_BYTES, size, data + 16);
    if (!(ok = save_atomic(ctx->cache_path, data, WRAP_BYTES + size, error)))
      goto out;
  }
  ctx->pipelines_unsaved = 0;
out:
  g_mutex_unlock(&ctx->lock);
  g_free(data);
  return ok;
}

void vkrt_cache_close(VkrtContext *ctx)
{
  if (!ctx->cache) return;
  GError *e = NULL;
  if (!vkrt_context_save_pipeline_cache(ctx, &e)) {
    g_debug("pipeline cache not saved: %s", e->message);
    g_error_free(e);
  }
  vkDestroyPipelineCache(ctx->device, ctx->cache, NULL);
  ctx->cache = VK_NULL_HANDLE;
}
