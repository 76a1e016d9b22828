#include "num.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool num_all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int num_parse_uint(const char *s, size_t n, unsigned long long min, unsigned long long max,
                   unsigned long long *out, const char **why)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) {
        *why = n ? "is too large" : "is not a whole number";
        return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (tmp[0] < '0' || tmp[0] > '9') {
        *why = tmp[0] == '-' && n > 1 && strspn(tmp + 1, "0123456789") == n - 1
                   ? "is negative"
                   : "is not a whole number";
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (*end != '\0') {
        *why = "is not a whole number";
        return -1;
    }
    if (errno == ERANGE || v > max) {
        *why = "is too large";
        return -1;
    }
    if (v < min) {
        *why = "is too small";
        return -1;
    }
    *out = v;
    return 0;
}
