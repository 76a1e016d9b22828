#include "effort.h"

#include "json.h"

#include <stddef.h>
#include <string.h>

int effort_think(const char *e, cJSON **think)
{
    static const struct {
        const char *effort, *think;
    } map[] = {
        {"minimal", "low"}, {"low", "low"},   {"medium", "medium"},
        {"high", "high"},   {"xhigh", "max"}, {"max", "max"},
    };
    *think = NULL;
    if (!e[0])
        return 0;
    if (strcmp(e, "none") == 0) {
        *think = cJSON_CreateFalse();
        return *think ? 0 : -2;
    }
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (strcmp(e, map[k].effort) == 0) {
            *think = json_str_ref(map[k].think);
            return *think ? 0 : -2;
        }
    }
    return -1;
}

int effort_bad(struct apierr *err, const char *param, const char *e)
{
    return apierr_invalid(err, param,
                          "Invalid value for '%s': '%.40s'. Supported values are: 'none', "
                          "'minimal', 'low', 'medium', 'high', 'xhigh' and 'max'.",
                          param, e);
}
