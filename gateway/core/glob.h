/*
 * glob: the one pattern rule for model names, used by aliases and by key
 * scopes: fnmatch(3) with flags 0, so '*' also crosses '/'. Pure; any thread.
 */
#ifndef GATEWAY_GLOB_H
#define GATEWAY_GLOB_H

#include <stdbool.h>

/* Does name match pattern? */
bool glob_match(const char *pattern, const char *name);

/* Does s contain a glob character (* ? [)? */
bool glob_is_pattern(const char *s);

#endif
