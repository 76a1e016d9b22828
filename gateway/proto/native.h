/*
 * native: Ollama's own API relayed through the gateway, as dialects of the
 * relay engine (dialect.h). The body goes to the same path on the backend
 * with its model renamed (an alias becomes the backend's name; the client's
 * name comes back in every answer line), and answers are relayed as they
 * come, byte for byte otherwise. Errors are Ollama's: {"error":"text"}, as a
 * whole body before the first byte and as a last NDJSON line after it.
 *
 *   dialect_native_stream  /api/chat, /api/generate: NDJSON unless
 *                          "stream": false (Ollama's default is to stream);
 *                          the answer must end with its done:true line
 *   dialect_native_whole   /api/embed, /api/embeddings, /api/show: one object
 *   dialect_native_admin   /api/pull, /api/push, /api/create (progress
 *                          streamed unless "stream": false), /api/copy,
 *                          /api/delete: the body is passed as it is (no
 *                          alias: an admin manages the backends' real names)
 *                          and a stream may end at any line
 *   dialect_native_blob    HEAD and POST /api/blobs/<digest>: no body of ours
 *                          to translate (the engine streams the client's)
 *
 * Rules for the client's body: a JSON object; "model" (or Ollama's legacy
 * "name") a non-empty string, except on the admin routes (copy names
 * "source" and "destination"); "stream" a bool or null. The alias's
 * "options" go under the client's "options" (the client's win). Everything
 * else passes through untouched: the gateway does not judge fields it does
 * not translate; Ollama does.
 *
 * Pure functions; any thread. Model renaming in answer lines is a splice of
 * the leading {"model":"<name>" that Ollama writes first on every line; a
 * line that does not start so is relayed as it is.
 */
#ifndef GATEWAY_NATIVE_H
#define GATEWAY_NATIVE_H

#include "dialect.h"

extern const struct dialect dialect_native_stream;
extern const struct dialect dialect_native_whole;
extern const struct dialect dialect_native_admin;
extern const struct dialect dialect_native_blob;

#endif
