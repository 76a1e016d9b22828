/*
 * messages_answer: an Anthropic message from a native /api/chat answer. The
 * whole (non-streamed) message object, and the pieces the streamed events
 * (messages_stream.h) are made of too: the stop reason and a tool call's
 * input as a JSON object.
 *
 * Message: {"id":"msg_…","type":"message","role":"assistant","model": as
 * asked,"content":[…],"stop_reason","stop_sequence":null,"usage":
 * {"input_tokens","output_tokens"}}. Content blocks in the order Anthropic
 * sends them: thinking ({"type":"thinking","thinking","signature":""}), text,
 * then one tool_use per native tool call ({"type":"tool_use","id":"toolu_…",
 * "name","input":{…}}). A text block is written when there is text, or when
 * there would be no block at all (clients read content[0].text).
 * stop_reason: "max_tokens" when Ollama stopped at num_predict, else
 * "tool_use" when a tool was called, else "end_turn" (Ollama does not say
 * which stop sequence matched, so never "stop_sequence").
 *
 * Owns nothing: bytes and trees are borrowed for the call; output is
 * appended to a caller's buf. Any thread; tool-use ids come from rand_id
 * (sodium_init must have run).
 */
#ifndef GATEWAY_MESSAGES_ANSWER_H
#define GATEWAY_MESSAGES_ANSWER_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* The stop_reason of a native done object. */
const char *messages_stop_reason(const cJSON *done, bool tool_use);

/* A native tool call's arguments as the JSON text of an object: an object
 * as it is, a string holding an object parsed, anything else "{}". Returns
 * a string the caller frees with cJSON_free, or NULL when memory runs out. */
char *messages_input_text(const cJSON *args);

/* Write a new tool-use id ("toolu_" + 24 random characters) into out. */
void messages_tool_id(char *out, size_t size);

/*
 * A whole native answer (len bytes at body) as a message object appended to
 * out; the counts go to *prompt_tokens / *completion_tokens (either may be
 * NULL). 0, or -1 with err set (502 naming backend, which may be NULL, for a
 * body that is not an answer; 500 for memory or out's ceiling) and out
 * unchanged.
 */
int messages_complete(const char *body, size_t len, const char *client_model, const char *id,
                      const char *backend, struct buf *out, long *prompt_tokens,
                      long *completion_tokens, struct apierr *err);

#endif
