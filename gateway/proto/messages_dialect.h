/*
 * messages_dialect: Anthropic's POST /v1/messages as a dialect of the relay
 * engine, over Ollama's /api/chat (the rules are messages_request.h's,
 * messages_stream.h's, messages_answer.h's and messages_error.h's).
 */
#ifndef GATEWAY_MESSAGES_DIALECT_H
#define GATEWAY_MESSAGES_DIALECT_H

#include "dialect.h"

extern const struct dialect dialect_messages;

#endif
