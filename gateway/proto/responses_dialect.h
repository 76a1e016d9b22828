/*
 * responses_dialect: the OpenAI Responses API (POST /v1/responses,
 * stateless) as a dialect of the relay engine, over Ollama's /api/chat (the
 * translation rules are responses_request.h's, responses_answer.h's and
 * responses_stream.h's).
 */
#ifndef GATEWAY_RESPONSES_DIALECT_H
#define GATEWAY_RESPONSES_DIALECT_H

#include "dialect.h"

extern const struct dialect dialect_responses;

#endif
