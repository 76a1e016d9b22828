/*
 * completions_request: a client's OpenAI legacy /v1/completions body,
 * validated and translated into the native /api/generate body, as pure
 * functions (JSON text in, JSON text out). Each rule is pinned by a test in
 * tests/unit/proto/test_completions.c.
 *
 * Request rules (anything else is a 400 naming the field in `param`, before
 * a backend is chosen):
 *  - `null` is the same as absent for every optional field. Unknown fields
 *    (user, logit_bias, metadata, ...) are ignored and never forwarded.
 *  - model: required, a non-empty string.
 *  - prompt: required; a string, or an array of exactly one string (what a
 *    client that batches prompts sends for one). Several prompts, token
 *    arrays ([1,2] or [[1,2]]) and [] are a 400 naming `prompt`: Ollama
 *    generates one completion per request, from text. "" is a 400 too:
 *    Ollama would only load the model and generate nothing.
 *  - suffix: a string, sent when not empty (the model needs Ollama's
 *    "insert" capability; Ollama's refusal comes back naming `suffix`).
 *  - Sampling: sampling.h's rules, the same as chat completions (max_tokens
 *    -> num_predict, stop, seed, temperature, top_p, the penalties, and the
 *    extensions chat takes). No default is injected.
 *  - n must be 1; best_of must be 1 or absent (Ollama generates one
 *    completion; there is nothing to choose the best of).
 *  - logprobs: an integer 0..20 (OpenAI stops at 5, Ollama at 20) is sent as
 *    native logprobs:true, top_logprobs:N; each choice then carries
 *    {tokens, token_logprobs, top_logprobs, text_offset}, where each
 *    top_logprobs entry maps the N most likely tokens and the chosen one to
 *    their logprobs, as at OpenAI ("up to logprobs+1 elements").
 *  - echo: true puts the prompt in front of the generated text: at the start
 *    of a whole answer's text, and as the first chunk of a stream. echo
 *    with logprobs is a 400 naming `echo`: OpenAI would also give the
 *    prompt's tokens logprobs, which Ollama cannot.
 *  - stream (bool, default false); stream_options.include_usage counts only
 *    when streaming.
 *  - think / reasoning.effort / reasoning_effort: native "think", as chat
 *    completions map them (effort.h); "none" turns a thinking model's
 *    thinking off. Whatever thinking is generated is dropped from the
 *    answer (it is no part of a legacy completion).
 *  - The native body is {"model","stream" (always explicit),"prompt",
 *    "suffix"?,"logprobs"?,"top_logprobs"?,"think"?,"options"?}. No "raw":
 *    the model's template applies, as with Ollama's own /v1/completions.
 *
 * Ownership: a struct completions_req owns the client's parsed body and the
 * trees built from it (which borrow its strings); completions_req_free
 * releases them. Output is appended to the caller's buf; on failure nothing
 * is. Input bytes are borrowed for the call. Any thread; no shared state.
 */
#ifndef GATEWAY_COMPLETIONS_REQUEST_H
#define GATEWAY_COMPLETIONS_REQUEST_H

#include "apierr.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* What the client wants of the answer (completions_answer.h). */
struct completions_want {
    const char *echo;   /* the prompt to put first (echo), or NULL; borrowed */
    bool include_usage; /* stream_options.include_usage, on a stream */
    bool logprobs;      /* logprobs were asked for */
};

/* A validated client request. */
struct completions_req {
    cJSON *root;                  /* owned: the client's parsed body */
    cJSON *native;                /* owned: prompt, suffix, logprobs; borrows from root */
    cJSON *options;               /* owned: the client's translated options, or NULL */
    const char *model;            /* borrowed from root: the model name the client asked for */
    const char *prompt;           /* borrowed from root */
    bool stream;                  /* client wants SSE */
    struct completions_want want; /* echo borrowed from root */
    long max_tokens;              /* num_predict sent upstream, or -1 */
};

/*
 * Parse and validate a /v1/completions body (len bytes at body). Returns 0
 * and fills r (release it with completions_req_free), or -1 with err set (400
 * naming the field, or 500 when memory runs out); on -1 there is nothing to
 * free.
 */
int completions_req_parse(struct completions_req *r, const char *body, size_t len,
                          struct apierr *err);

/*
 * Append the native /api/generate body for r to out, asking for
 * upstream_model, with alias_options (may be NULL) under the client's
 * options. Returns 0, or -1 with err set (500) and out unchanged.
 */
int completions_req_to_ollama(const struct completions_req *r, const char *upstream_model,
                              const cJSON *alias_options, struct buf *out, struct apierr *err);

/* Release what completions_req_parse built; r may be zeroed or freed already. */
void completions_req_free(struct completions_req *r);

#endif
