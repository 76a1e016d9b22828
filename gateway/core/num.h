/*
 * num: whole numbers read from text people wrote (a configuration value as
 * written in the file, a port in "host:port"), with OpenBSD strtonum(3)
 * semantics on top of strtoull(3): digits only, no sign, no space, bounds
 * checked, and a reason when it is not one. Pure; any thread.
 */
#ifndef GATEWAY_NUM_H
#define GATEWAY_NUM_H

#include <stdbool.h>
#include <stddef.h>

/* Is s[0..n) one or more ASCII digits? */
bool num_all_digits(const char *s, size_t n);

/*
 * s[0..n) (need not be '\0'-terminated) as a whole number from min to max.
 * Returns 0 with *out set, or -1 with *why a static reason to put after the
 * text: "is not a whole number", "is negative", "is too small", "is too
 * large".
 */
int num_parse_uint(const char *s, size_t n, unsigned long long min, unsigned long long max,
                   unsigned long long *out, const char **why);

#endif
