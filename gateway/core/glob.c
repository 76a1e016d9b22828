#include "glob.h"

#include <fnmatch.h>
#include <string.h>

bool glob_is_pattern(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

bool glob_match(const char *pattern, const char *name)
{
    return fnmatch(pattern, name, 0) == 0;
}
