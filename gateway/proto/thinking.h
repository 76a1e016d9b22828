/*
 * thinking: where a client's thinking switch meets what the backend's model
 * can do, the same for every dialect that translates one to Ollama's
 * "think" (chat completions' and legacy completions' think /
 * reasoning_effort, Responses' reasoning.effort, Messages' thinking).
 *
 * Ollama answers a "think" that turns thinking on (true, or a level such as
 * "high") with a 400 for a model whose /api/show capabilities lack
 * "thinking", and Claude Code enables thinking on every request, whatever
 * model an alias points at. So for a model known to lack the capability
 * (discovery asks /api/show: pool/backends.h) the switch is left out and the
 * answer comes without reasoning; for one that has it, or whose capabilities
 * are not known yet, it is sent as asked. "think": false always goes: Ollama
 * takes it from any model. Ollama's own routes (native.h) are not touched:
 * a native client sends what it means and gets Ollama's own answer.
 *
 * Pure; any thread.
 */
#ifndef GATEWAY_THINKING_H
#define GATEWAY_THINKING_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* Does this native "think" value turn thinking on (true, or a level)? */
bool thinking_on(const cJSON *think);

/* A dialect's native fields, before they are written for the backend: when
 * their "think" turns thinking on and no_thinking (the backend's model is
 * known to lack the capability), it is removed. Returns whether it turned
 * thinking on (what the dialect stores in dialect_common.asks_thinking). */
bool thinking_gate(cJSON *fields, bool no_thinking);

#endif
