/*
 * models: the OpenAI /v1/models list and /v1/models/{id} objects, made from
 * the configured aliases and the models the backends reported (DESIGN.md).
 * A model is listed once however many backends have it, and only when the
 * caller's key may use it. Any thread.
 */
#ifndef GATEWAY_MODELS_H
#define GATEWAY_MODELS_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

struct snapshot;
struct key;

/* {"object":"list","data":[…]} into out, limited to what key may use (key
 * NULL: everything). started_ms (wall clock) is the aliases' "created".
 * 0, or -1 when out is full. */
int models_list(const struct snapshot *s, const struct key *key, int64_t started_ms,
                struct buf *out);
/* One {"id","object":"model","created","owned_by"} into out; -1 if unknown.
 * The caller checks the key's scope first. */
int models_get(const struct snapshot *s, int64_t started_ms, const char *id, struct buf *out);

/* The same in Anthropic's shapes, for clients that send anthropic-version:
 * {"data":[{"type":"model","id","display_name","created_at"}…],"has_more":
 * false,"first_id","last_id"} (ids null when the list is empty), and one
 * such model object. */
int models_list_anthropic(const struct snapshot *s, const struct key *key, int64_t started_ms,
                          struct buf *out);
int models_get_anthropic(const struct snapshot *s, int64_t started_ms, const char *id,
                         struct buf *out);

/*
 * Ollama's {"models":[…]} for the native /api/tags (loaded false) or /api/ps
 * (loaded true), limited to what key may use, under the names it may use:
 * each exact alias whose model a backend lists appears under the alias's
 * name with that model's details; each backend model (when
 * expose_backend_models) as Ollama described it. 0, or -1 when out is full.
 */
int models_native_list(const struct snapshot *s, const struct key *key, bool loaded,
                       struct buf *out);

#endif
