/*
 * chat_dialect: OpenAI /v1/chat/completions as a dialect of the relay
 * engine, over Ollama's /api/chat (the translation rules are chat_request.h's,
 * chat_stream.h's and chat_complete.h's).
 */
#ifndef GATEWAY_CHAT_DIALECT_H
#define GATEWAY_CHAT_DIALECT_H

#include "dialect.h"

extern const struct dialect dialect_chat;

#endif
