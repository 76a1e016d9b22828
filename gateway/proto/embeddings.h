/*
 * embeddings: OpenAI /v1/embeddings as a dialect of the relay engine
 * (dialect.h), over Ollama's native POST /api/embed. Pure translation: no
 * I/O, no clock, no global state; any thread. The engine owns the request
 * and the buffers; the dialect's state (struct embeddings_state in the .c)
 * owns nothing on the heap, so release() has nothing to free. The answer is
 * never streamed: translate() asks `resolve` with stream=false, and line()
 * and eof() fail if they are ever called.
 *
 * Request rules (anything else is a 400 invalid_request_error naming the
 * field in `param`, before a backend is chosen):
 *  - `model`: a non-empty string, required.
 *  - `input`: required; a string, or a non-empty array of strings (any of
 *    them may be ""). A string is sent as a one-item array, so "" is sent as
 *    [""] and the client gets one vector back, as Ollama's own /v1 does
 *    (native /api/embed would answer a bare "" with no vector at all). `[]`
 *    is a 400. Token arrays (an array of numbers, or of arrays of numbers)
 *    are a 400 naming `input`: only the backend knows its tokenizer, and
 *    OpenAI's token ids (tiktoken) mean nothing to it. Any other non-string
 *    item is a 400 naming `input[i]`. There is no cap on the number of
 *    inputs (OpenAI's is 2048) beyond the body size limit.
 *  - `encoding_format`: "float" (the default) or "base64", exactly.
 *  - `dimensions`: an integer from 1 to 2^31-1, sent as native `dimensions`
 *    (Ollama truncates and re-normalises the vectors).
 *  - `user` and unknown fields are ignored and never forwarded; `null` is
 *    the same as absent.
 *
 * Native body: {"model", "input": [strings], "truncate": true,
 * "dimensions"?, "options"?}. "truncate" is sent explicitly: an input longer
 * than the model's context is cut to fit (Ollama's own default, and what its
 * /v1 does) rather than failed, so that moving a client from Ollama's /v1 to
 * the gateway changes no result. (OpenAI itself answers such an input with a
 * 400.) "options" is the alias's `options` object when it has one (num_ctx
 * decides where the truncation falls); the client cannot send options.
 *
 * Answer: {"object":"list","data":[{"object":"embedding","index":i,
 * "embedding":[numbers] or "base64"}...],"model":<the client's name>,
 * "usage":{"prompt_tokens":P,"total_tokens":P}}, P being the native
 * prompt_eval_count (0 when absent or not a plain count). The native
 * answer is read by a validating scanner, not a cJSON tree: thousands of
 * vectors of a thousand floats would be millions of tree nodes. It must be one JSON object whose
 * "embeddings" is an array of arrays of numbers, one per input, every number
 * within float32's range; anything else is a 502 upstream_error naming the
 * backend. Numbers (float format) are written as the backend spelled them
 * when that takes at most 15 characters -- Ollama's Go encoder writes the
 * shortest spelling that reads back as the same float32, so this is the
 * usual case and costs no formatting -- and otherwise as "%.9g" of their
 * float32 value, which also reads back exactly. Either way they round-trip
 * float32 exactly and match the base64 format's values. base64 is the
 * float32 values, little-endian, in standard base64 with padding (what the
 * OpenAI SDKs decode); it is encoded block by block, so no per-vector
 * buffer is needed. A native number longer than 63 characters is a 502
 * (no encoder writes one). Output past the engine's buffer ceiling is a 502
 * saying the answer is too large; memory running out, a 500.
 */
#ifndef GATEWAY_EMBEDDINGS_H
#define GATEWAY_EMBEDDINGS_H

#include "dialect.h"

extern const struct dialect dialect_embeddings;

#endif
