/*
 * models: the OpenAI /v1/models list and /v1/models/{id} objects, made from
 * the configured aliases and the models the backends reported (DESIGN.md).
 * A model is listed once however many backends have it. Any thread.
 */
#ifndef GATEWAY_MODELS_H
#define GATEWAY_MODELS_H

#include "buf.h"
#include "config.h"
#include "worker.h"

/* {"object":"list","data":[…]} into out. 0, or -1 when out is full. */
int models_list(struct gateway *gw, const struct cfg *cfg, struct buf *out);
/* One {"id","object":"model","created","owned_by"} into out; -1 if unknown. */
int models_get(struct gateway *gw, const struct cfg *cfg, const char *id, struct buf *out);

#endif
