/* jf-chat-store: the conversation on disk, $XDG_DATA_HOME/janusflow/chat.json, plus the images
 * that were attached (copied as PNG into chat-images/ next to it, so the history does not
 * depend on where the originals were). Written atomically: temporary file, fsync, rename.
 *
 * Format: {"version": 1, "messages": [{"role": "user"|"assistant", "text": "...",
 *          "images": ["chat-images/....png"], "remembered": true}]}
 * Image paths are relative to the data folder. "remembered" says whether the turn is in the
 * model's KV cache; restored turns are once the pane has had them read back (jf-chat-pane.c). */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct {
  char *role;            /* "user" or "assistant" */
  char *text;
  GPtrArray *images;     /* char*: paths relative to the store's folder (user turns) */
  GPtrArray *textures;   /* GdkTexture, parallel to images; NULL entries until loaded */
  gboolean remembered;
  gboolean stopped;      /* assistant answer cut short (Stop or an error) */
} JfChatEntry;

JfChatEntry *jf_chat_entry_new(const char *role, const char *text);
void jf_chat_entry_free(JfChatEntry *e);
/* Deep copy (textures are shared: they are immutable). */
JfChatEntry *jf_chat_entry_copy(const JfChatEntry *e);

/* The folder holding chat.json and chat-images/ (created on save). */
char *jf_chat_store_dir(void);

/* Loads the entries (JfChatEntry*, textures loaded from the images). A missing file gives an
 * empty array. A file that cannot be read as a chat (too big, nested too deeply, not JSON, no
 * "messages") gives an error and is renamed chat-unreadable-<time>.json, with chat-images/ moved
 * to chat-unreadable-<time>-images/, so the next save does not destroy it. Runs on any thread. */
GPtrArray *jf_chat_store_load(const char *dir, GError **error);
/* Writes the entries; entries with a texture but no path yet get their image written to
 * chat-images/ and the path filled in (so call it on copies owned by the writing thread, and
 * read the paths back). Removes images no entry refers to. Runs on any thread. */
gboolean jf_chat_store_save(const char *dir, GPtrArray *entries, GError **error);

G_END_DECLS
