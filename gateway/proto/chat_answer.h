/*
 * chat_answer: what the streamed (chat_stream) and the whole (chat_complete)
 * chat answers are both made of: a native message read and checked, its tool
 * calls and logprobs written as OpenAI objects, the finish reason, and the
 * switch that turns both fast paths off for tests.
 *
 * Writers append to a caller's buf and return 0, or non-zero when a write
 * failed (the caller rolls the buf back). Trees are borrowed for the call.
 * Threading: any thread, except chat_set_fast_path (see there).
 */
#ifndef GATEWAY_CHAT_ANSWER_H
#define GATEWAY_CHAT_ANSWER_H

#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Whether the fast paths of chat_stream_line and chat_complete run (they
 * do unless a test turned them off). Read on every token line. */
extern bool chat_fast_path;

/* Tests and fuzzers only, before any thread uses this module: turn the fast
 * paths of chat_stream_line and chat_complete off (on by default) to compare
 * their output with the general cJSON path's, which must be the same byte
 * for byte. */
void chat_set_fast_path(bool on);

/*
 * The message of a native answer object j: its content, thinking and tool
 * calls (each NULL when absent). Returns NULL, or what is wrong with it ("a
 * malformed message", "a tool call without a function name", ...); every tool
 * call is checked before anything is written.
 */
const char *chat_read_message(const cJSON *j, const cJSON **content, const cJSON **thinking,
                              const cJSON **tcs);

/* "length" if Ollama said so, else "tool_calls" if tool calls were emitted,
 * else "stop" (Ollama never says tool_calls: PROTOCOL.md §5.2). */
const char *chat_finish_reason(const cJSON *obj, bool tool_calls);

/*
 * Write the tool calls (checked by chat_read_message) as OpenAI objects,
 * comma-separated: {"index"?,"id","type","function":{"name","arguments":
 * "<JSON text>"}}. Indexes (with_index) come from *next, dense and ours
 * (Ollama's function.index is ignored); Ollama's id is kept, else one is made.
 */
int chat_put_tool_calls(struct buf *out, const cJSON *tcs, bool with_index, unsigned *next);

/* {"content":[...],"refusal":null} from a native logprobs array. */
int chat_put_logprobs(struct buf *out, const cJSON *arr);

#endif
