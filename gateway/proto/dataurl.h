/*
 * dataurl: an image a client sends inline as a data URL
 * (data:image/<type>;base64,...), reduced to the raw base64 Ollama takes in a
 * message's "images". Every dialect that takes images reads them this way,
 * so they accept and refuse the same URLs with the same words: http(s) URLs
 * are refused (the gateway fetches nothing), as are other media types and
 * payloads that are not standard padded base64. Pure; any thread.
 */
#ifndef GATEWAY_DATAURL_H
#define GATEWAY_DATAURL_H

#include "apierr.h"

/* The base64 payload of url (a pointer into it), or NULL with err set (400
 * naming param). */
const char *dataurl_image(const char *url, const char *param, struct apierr *err);

#endif
