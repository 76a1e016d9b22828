/*
 * sampling: the sampling fields that both OpenAI dialects, chat completions
 * and legacy completions, take from the client's body, as the native
 * "options" object. One function, so that both read them the same way.
 *
 *   temperature (>= 0), top_p (0..1), presence_penalty, frequency_penalty
 *   (finite numbers), seed (an integer), stop (a string or an array of
 *   strings), max_completion_tokens or else max_tokens (an integer >= 1) ->
 *   num_predict; Ollama's extensions top_k (an integer >= 0), min_p (0..1),
 *   repeat_penalty (> 0; also spelled repetition_penalty).
 *
 * Nothing else goes into the options: no sampling default is ever injected
 * (PROTOCOL.md §5.6), so a model's Modelfile values apply to whatever the
 * client left out. `null` is the same as absent.
 *
 * Ownership: the options tree borrows its values from the client's tree and
 * must be freed before it. Pure; any thread.
 */
#ifndef GATEWAY_SAMPLING_H
#define GATEWAY_SAMPLING_H

#include "apierr.h"

#include <cjson/cJSON.h>

/*
 * Read the sampling fields of root (the client's body). Returns 0 with
 * *options the native options object (NULL when the client set none; else
 * the caller frees it) and *max_tokens the num_predict sent (-1 when none);
 * or -1 with err set (400 naming the field, or 500) and *options NULL.
 */
int sampling_options(const cJSON *root, cJSON **options, long *max_tokens, struct apierr *err);

#endif
