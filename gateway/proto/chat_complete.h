/*
 * chat_complete: a whole (non-streamed) native /api/chat answer as an OpenAI
 * chat.completion object (PROTOCOL.md §5.14).
 *
 * The plain answer takes a fast path (ollama_scan_answer): its content is
 * copied as the JSON literal it is; the output is byte for byte the general
 * cJSON path's (chat_set_fast_path in chat_answer.h turns it off for the tests
 * that check this). Rules are pinned by tests/unit/proto/test_chat_complete.c.
 *
 * Owns nothing: input bytes are borrowed for the call, output is appended to
 * the caller's buf. Any thread; nothing cJSON allocates outlives the call
 * (it may run inside a jarena pair). Made-up tool-call ids come from
 * rand_bytes, so sodium_init must have run.
 */
#ifndef GATEWAY_CHAT_COMPLETE_H
#define GATEWAY_CHAT_COMPLETE_H

#include "apierr.h"
#include "buf.h"

#include <stddef.h>

/*
 * Translate a native non-streamed answer (one JSON object, len bytes at body)
 * into a chat.completion object appended to out: id, created, the client's
 * model, one choice with message {role, content (null only when there are
 * tool calls and no text), reasoning_content + reasoning, tool_calls},
 * finish_reason, logprobs, and usage (always). Token counts are stored in
 * *prompt_tokens / *completion_tokens (either may be NULL). backend_name
 * (may be NULL) is named in error messages. Returns 0, or -1 with err set
 * (502 upstream_error for a body that is not a JSON object or carries
 * "error"; 500 for memory or the ceiling); out is unchanged on -1.
 */
int chat_complete(const char *body, size_t len, const char *client_model, const char *id,
                  long created, const char *backend_name, struct buf *out, long *prompt_tokens,
                  long *completion_tokens, struct apierr *err);

#endif
