/* vkrt buffers: one VkDeviceMemory per buffer, persistently mapped when the device offers
 * host-visible device-local memory (lavapipe, UMA, ReBAR), else reached through a staging buffer. */
#include "vkrt_internal.h"

#include <string.h>

#define STAGING_BYTES (16u << 20)

static gboolean alloc_memory(VkrtContext *ctx, VkMemoryRequirements *req, uint32_t type,
                             VkDeviceMemory *out, GError **error)
{
  if (!(req->memoryTypeBits & (1u << type))) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "buffer memory type %u is not allowed by the driver", type);
    return FALSE;
  }
  VkMemoryAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req->size,
    .memoryTypeIndex = type,
  };
  VkResult r = vkAllocateMemory(ctx->device, &ai, NULL, out);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkAllocateMemory");
    return FALSE;
  }
  return TRUE;
}

static gboolean staging_ensure(VkrtContext *ctx, GError **error)
{
  if (ctx->staging) return TRUE;
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = STAGING_BYTES,
    .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &ctx->staging);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateBuffer (staging)");
    return FALSE;
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, ctx->staging, &req);
  void *map = NULL;
  if (!alloc_memory(ctx, &req, ctx->staging_type, &ctx->staging_mem, error) ||
      (r = vkBindBufferMemory(ctx->device, ctx->staging, ctx->staging_mem, 0)) != VK_SUCCESS ||
      (r = vkMapMemory(ctx->device, ctx->staging_mem, 0, VK_WHOLE_SIZE, 0, &map)) != VK_SUCCESS) {
    if (r != VK_SUCCESS) vkrt_set_vk_error(error, r, "staging memory");
    vkDestroyBuffer(ctx->device, ctx->staging, NULL);
    if (ctx->staging_mem) vkFreeMemory(ctx->device, ctx->staging_mem, NULL);
    ctx->staging = VK_NULL_HANDLE;
    ctx->staging_mem = VK_NULL_HANDLE;
    return FALSE;
  }
  ctx->staging_map = map;
  ctx->staging_size = STAGING_BYTES;
  return TRUE;
}

void vkrt_context_free_staging(VkrtContext *ctx)
{
  if (ctx->staging) vkDestroyBuffer(ctx->device, ctx->staging, NULL);
  if (ctx->staging_mem) vkFreeMemory(ctx->device, ctx->staging_mem, NULL);
  ctx->staging = VK_NULL_HANDLE;
  ctx->staging_mem = VK_NULL_HANDLE;
}

gboolean vkrt_context_run_transfer(VkrtContext *ctx, VkrtRecordFn record, void *user, GError **error)
{
  if (ctx->lost) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST, "the Vulkan device was lost; re-create the context");
    return FALSE;
  }
  VkResult r = vkResetCommandBuffer(ctx->xfer_cmd, 0);
  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  if (r == VK_SUCCESS) r = vkBeginCommandBuffer(ctx->xfer_cmd, &bi);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "transfer command buffer");
    return FALSE;
  }
  /* order against earlier GPU work and make the result visible to the host and to later work */
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  vkCmdPipelineBarrier(ctx->xfer_cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT,
                       VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  record(ctx->xfer_cmd, user);
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vkCmdPipelineBarrier(ctx->xfer_cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  if ((r = vkEndCommandBuffer(ctx->xfer_cmd)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkEndCommandBuffer");
    return FALSE;
  }
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &ctx->xfer_cmd,
  };
  g_mutex_lock(&ctx->lock);
  r = vkResetFences(ctx->device, 1, &ctx->xfer_fence);
  if (r == VK_SUCCESS) r = vkQueueSubmit(ctx->queue, 1, &si, ctx->xfer_fence);
  ctx->submits++;
  if (r == VK_SUCCESS) r = vkWaitForFences(ctx->device, 1, &ctx->xfer_fence, VK_TRUE, UINT64_MAX);
  if (r == VK_ERROR_DEVICE_LOST) ctx->lost = true;
  g_mutex_unlock(&ctx->lock);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "transfer submit");
    return FALSE;
  }
  return TRUE;
}

static void view_free(gpointer p)
{
  g_free(p); /* the VkBufferView is destroyed by vkrt_buffer_free, which has the device */
}

/* A buffer in memory type `type`, persistently mapped when `map`. */
static VkrtBuffer *buffer_new_in(VkrtContext *ctx, uint64_t size, uint32_t type, bool map, GError **error)
{
  if (size == 0) size = 4;
  /* views are whole RGBA32 texels: round the allocation so the last one is inside */
  uint64_t alloc_size = (size + 255) / 256 * 256;
  if (alloc_size > ctx->info.max_alloc || alloc_size > ctx->max_buffer_size) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                "a buffer of %" G_GUINT64_FORMAT " bytes is larger than the device allows in one allocation (%"
                G_GUINT64_FORMAT " bytes)", size, MIN(ctx->info.max_alloc, ctx->max_buffer_size));
    return NULL;
  }
  if (ctx->fail_alloc_in > 0 && --ctx->fail_alloc_in == 0) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM,
                "out of device memory (injected failure) allocating %" G_GUINT64_FORMAT " bytes", size);
    return NULL;
  }
  VkrtBuffer *buf = g_new0(VkrtBuffer, 1);
  buf->ctx = ctx;
  buf->size = size;
  buf->alloc_size = alloc_size;
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = alloc_size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
             VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &buf->buffer);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateBuffer");
    g_free(buf);
    return NULL;
  }
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, buf->buffer, &req);
  if (req.size > ctx->info.max_alloc) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                "a buffer of %" G_GUINT64_FORMAT " bytes exceeds the device's maximum allocation", size);
    vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    g_free(buf);
    return NULL;
  }
  if (!alloc_memory(ctx, &req, type, &buf->memory, error)) {
    vkDestroyBuffer(ctx->device, buf->buffer, NULL);
    g_free(buf);
    return NULL;
  }
  if ((r = vkBindBufferMemory(ctx->device, buf->buffer, buf->memory, 0)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkBindBufferMemory");
    goto fail;
  }
  if (map) {
    void *m = NULL;
    if ((r = vkMapMemory(ctx->device, buf->memory, 0, VK_WHOLE_SIZE, 0, &m)) != VK_SUCCESS) {
      vkrt_set_vk_error(error, r, "vkMapMemory");
      goto fail;
    }
    buf->map = m;
  }
  buf->views = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, view_free);
  g_mutex_lock(&ctx->lock);
  ctx->allocated += req.size;
  g_mutex_unlock(&ctx->lock);
  return buf;
fail:
  vkDestroyBuffer(ctx->device, buf->buffer, NULL);
  vkFreeMemory(ctx->device, buf->memory, NULL);
  g_free(buf);
  return NULL;
}

VkrtBuffer *vkrt_buffer_new(VkrtContext *ctx, uint64_t size, GError **error)
{
  return buffer_new_in(ctx, size, ctx->mem_type, ctx->mapped, error);
}

/* Where device memory is not mapped (a discrete GPU without ReBAR), the staging path would cost
 * a transfer submit and a fence wait for every read or write: host-visible system memory,
 * which the GPU reads and writes over the bus, is cheaper for a few bytes a step. */
VkrtBuffer *vkrt_buffer_new_host(VkrtContext *ctx, uint64_t size, GError **error)
{
  if (ctx->mapped)
    return vkrt_buffer_new(ctx, size, error);
  return buffer_new_in(ctx, size, ctx->staging_type, true, error);
}

bool vkrt_buffer_mapped(const VkrtBuffer *buf) { return buf->map != NULL; }

void vkrt_buffer_free(VkrtBuffer *buf)
{
  if (!buf) return;
  VkrtContext *ctx = buf->ctx;
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init(&it, buf->views);
  while (g_hash_table_iter_next(&it, &key, &val))
    vkDestroyBufferView(ctx->device, *(VkBufferView *)val, NULL);
  g_hash_table_destroy(buf->views);
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, buf->buffer, &req);
  vkDestroyBuffer(ctx->device, buf->buffer, NULL);
  if (buf->map) vkUnmapMemory(ctx->device, buf->memory);
  vkFreeMemory(ctx->device, buf->memory, NULL);
  g_mutex_lock(&ctx->lock);
  ctx->allocated -= req.size;
  g_mutex_unlock(&ctx->lock);
  g_free(buf);
}

uint64_t vkrt_buffer_size(const VkrtBuffer *buf) { return buf->size; }

uint64_t vkrt_buffer_view_range(const VkrtBuffer *buf, uint64_t offset)
{
  return MIN(buf->alloc_size - offset, buf->ctx->max_texel_bytes) / 16 * 16;
}

VkBufferView vkrt_buffer_view(VkrtBuffer *buf, uint64_t offset, uint64_t range, GError **error)
{
  /* One view per offset, reaching as far as the device allows: the same view then serves every
   * binding that starts there (decode steps, growing KV spans), so the cache stays small. */
  uint64_t want = (range + 15) / 16 * 16;
  range = vkrt_buffer_view_range(buf, offset);
  if (want > range) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "texel view of %" G_GUINT64_FORMAT " bytes is too large", want);
    return VK_NULL_HANDLE;
  }
  /* looked up for every texel binding of every dispatch: no allocation unless it is new */
  gint64 key = (gint64)offset;
  VkBufferView *v = g_hash_table_lookup(buf->views, &key);
  if (v)
    return *v;
  VkBufferViewCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
    .buffer = buf->buffer,
    .format = VK_FORMAT_R32G32B32A32_UINT,
    .offset = offset,
    .range = range,
  };
  VkBufferView view;
  VkResult r = vkCreateBufferView(buf->ctx->device, &ci, NULL, &view);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateBufferView");
    return VK_NULL_HANDLE;
  }
  v = g_new(VkBufferView, 1);
  *v = view;
  g_hash_table_insert(buf->views, g_memdup2(&key, sizeof key), v);
  return view;
}

static gboolean check_range(const VkrtBuffer *buf, uint64_t offset, uint64_t size, const char *what, GError **error)
{
  if (offset > buf->size || size > buf->size - offset) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED,
                "%s of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
                " is outside a buffer of %" G_GUINT64_FORMAT " bytes", what, size, offset, buf->size);
    return FALSE;
  }
  return TRUE;
}

typedef struct {
  VkBuffer src, dst;
  VkBufferCopy region;
  bool fill;
  uint32_t value;
} XferOp;

static void record_xfer(VkCommandBuffer cmd, void *user)
{
  XferOp *op = user;
  if (op->fill)
    vkCmdFillBuffer(cmd, op->dst, op->region.dstOffset, op->region.size, op->value);
  else
    vkCmdCopyBuffer(cmd, op->src, op->dst, 1, &op->region);
}

gboolean vkrt_buffer_write(VkrtBuffer *buf, uint64_t offset, const void *data, uint64_t size, GError **error)
{
  if (!check_range(buf, offset, size, "write", error)) return FALSE;
  if (size == 0) return TRUE;
  if (buf->map) {
    memcpy(buf->map + offset, data, size);
    return TRUE;
  }
  VkrtContext *ctx = buf->ctx;
  if (!staging_ensure(ctx, error)) return FALSE;
  for (uint64_t done = 0; done < size;) {
    uint64_t n = MIN(size - done, ctx->staging_size);
    memcpy(ctx->staging_map, (const uint8_t *)data + done, n);
    XferOp op = { .src = ctx->staging, .dst = buf->buffer, .region = { 0, offset + done, n } };
    if (!vkrt_context_run_transfer(ctx, record_xfer, &op, error)) return FALSE;
    done += n;
  }
  return TRUE;
}

gboolean vkrt_buffer_read(VkrtBuffer *buf, uint64_t offset, void *data, uint64_t size, GError **error)
{
  if (!check_range(buf, offset, size, "read", error)) return FALSE;
  if (size == 0) return TRUE;
  if (buf->map) {
    memcpy(data, buf->map + offset, size);
    return TRUE;
  }
  VkrtContext *ctx = buf->ctx;
  if (!staging_ensure(ctx, error)) return FALSE;
  for (uint64_t done = 0; done < size;) {
    uint64_t n = MIN(size - done, ctx->staging_size);
    XferOp op = { .src = buf->buffer, .dst = ctx->staging, .region = { offset + done, 0, n } };
    if (!vkrt_context_run_transfer(ctx, record_xfer, &op, error)) return FALSE;
    memcpy((uint8_t *)data + done, ctx->staging_map, n);
    done += n;
  }
  return TRUE;
}

gboolean vkrt_buffer_fill(VkrtBuffer *buf, uint64_t offset, uint64_t size, uint32_t value, GError **error)
{
  if (!check_range(buf, offset, size, "fill", error)) return FALSE;
  if (offset % 4 || size % 4) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "fill offset and size must be multiples of 4");
    return FALSE;
  }
  if (size == 0) return TRUE;
  if (buf->map) {
    uint32_t *p = (uint32_t *)(buf->map + offset);
    for (uint64_t i = 0; i < size / 4; i++) p[i] = value;
    return TRUE;
  }
  XferOp op = { .dst = buf->buffer, .region = { 0, offset, size }, .fill = true, .value = value };
  return vkrt_context_run_transfer(buf->ctx, record_xfer, &op, error);
}
