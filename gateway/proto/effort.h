/*
 * effort: a reasoning effort name, as OpenAI's APIs spell it
 * (reasoning_effort on chat completions, reasoning.effort on Responses), as
 * Ollama's native "think". One table, so that every OpenAI dialect maps an
 * effort the same way: "" = unset (thinking models think by default), none
 * -> false, minimal -> "low", low/medium/high as they are, xhigh/max ->
 * "max" (as Ollama's own /v1 maps them). Pure; any thread.
 */
#ifndef GATEWAY_EFFORT_H
#define GATEWAY_EFFORT_H

#include "apierr.h"

#include <cjson/cJSON.h>

/* *think = the native value (the caller adds or frees it), or NULL when the
 * effort leaves think unset. 0; -1 = not a known effort; -2 = out of memory. */
int effort_think(const char *e, cJSON **think);

/* The thinking switch of an OpenAI-style body, as native "think" in native:
 * "think" (Ollama's own: a boolean, or a level mapped as an effort), else
 * "reasoning": {"effort"} (as OpenRouter and LiteLLM send it), else
 * "reasoning_effort". Nothing when none is set. 0, or -1 with err set (400
 * naming the field, or out of memory). */
int effort_field(const cJSON *root, cJSON *native, struct apierr *err);

/* err = 400 naming param: e is not a known effort. Returns -1. */
int effort_bad(struct apierr *err, const char *param, const char *e);

#endif
