/*
 * completions_dialect: OpenAI's legacy /v1/completions as a dialect of the
 * relay engine, over Ollama's /api/generate (the translation rules are
 * completions_request.h's and completions_answer.h's). Response ids are
 * "cmpl-" + random; errors are OpenAI's, and a backend's non-200 answer is
 * mapped as for chat completions (upstream_error.h).
 */
#ifndef GATEWAY_COMPLETIONS_DIALECT_H
#define GATEWAY_COMPLETIONS_DIALECT_H

#include "dialect.h"

extern const struct dialect dialect_completions;

#endif
