/*
 * router: which alias a client's model name means, and Ollama's rules for
 * when two model names are the same model. (Backend choice comes later.)
 *
 * Pure functions over an immutable struct cfg: no I/O, no allocation, any
 * thread. Whatever they return points into the cfg and lives as long as the
 * caller's reference to it.
 */
#ifndef GATEWAY_ROUTER_H
#define GATEWAY_ROUTER_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * The alias for a client-facing model name, or NULL when none applies.
 * An alias written without glob characters wins when it equals the name
 * exactly (case-sensitive, as OpenAI model ids are); otherwise the glob with
 * the longest pattern that matches (fnmatch(3), flags 0: '*' also crosses '/'),
 * ties going to the one written first in the file.
 */
const struct cfg_alias *router_alias(const struct cfg *c, const char *client_model);

/*
 * Do a and b name the same Ollama model? Ollama's rules: names compare without
 * regard to case; a missing tag is "latest"; a missing namespace is "library";
 * a missing host is "registry.ollama.ai". So "llama3.2", "Llama3.2:latest" and
 * "registry.ollama.ai/library/llama3.2:latest" are one model, while
 * "llama3.2:1b" and "hf.co/x/llama3.2" are others. A "@digest" suffix must
 * match too when both give one. Empty names never match.
 */
bool router_model_eq(const char *a, const char *b);

/*
 * name with ":latest" appended when it has no tag (the tag follows the last
 * ':' after the last '/': "localhost:5000/m" has none). Writes a
 * '\0'-terminated string to out and returns its length, or -1 when it does not
 * fit (out is then ""). A "@digest" suffix stays at the end.
 */
int router_model_normalize(const char *name, char *out, size_t outsz);

/*
 * One spelling for every name router_model_eq takes as the same model, for
 * labels that must not grow with what clients send: lower case, no
 * "registry.ollama.ai/" host, no "library/" namespace (when the host is the
 * default one), no ":latest" tag, no "@digest". "LLAMA3.2",
 * "registry.ollama.ai/library/llama3.2:latest" and "llama3.2@sha256:..." are
 * all "llama3.2"; "hf.co/Org/M:Q4" is "hf.co/org/m:q4". Writes a
 * '\0'-terminated string to out and returns its length, or -1 when name has
 * no model or it does not fit (out is then "").
 */
int router_model_label(const char *name, char *out, size_t outsz);

#endif
