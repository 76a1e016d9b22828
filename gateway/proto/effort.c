#include "effort.h"

#include "field.h"
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

int effort_field(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *think = json_get(root, "think");
    const cJSON *reasoning = json_get(root, "reasoning");
    const cJSON *effort = json_get(root, "reasoning_effort");
    const cJSON *chosen = NULL;
    const char *param = NULL;
    cJSON *out = NULL;

    if (!json_unset(reasoning) && !cJSON_IsObject(reasoning))
        return field_bad_type(err, "reasoning", "an object", reasoning);
    const cJSON *reffort = cJSON_IsObject(reasoning) ? json_get(reasoning, "effort") : NULL;
    if (!json_unset(reffort) && !cJSON_IsString(reffort))
        return field_bad_type(err, "reasoning.effort", "a string", reffort);
    if (!json_unset(effort) && !cJSON_IsString(effort))
        return field_bad_type(err, "reasoning_effort", "a string", effort);

    if (!json_unset(think)) {
        if (cJSON_IsBool(think))
            return json_add(native, "think", json_ref(think)) ? 0 : field_oom(err);
        if (!cJSON_IsString(think))
            return field_bad_type(err, "think", "a boolean or a string", think);
        chosen = think, param = "think";
    } else if (!json_unset(reffort)) {
        chosen = reffort, param = "reasoning.effort";
    } else if (!json_unset(effort)) {
        chosen = effort, param = "reasoning_effort";
    } else {
        return 0;
    }
    int rc = effort_think(chosen->valuestring, &out);
    if (rc == -1)
        return effort_bad(err, param, chosen->valuestring);
    if (rc < 0)
        return field_oom(err);
    if (out && !json_add(native, "think", out))
        return field_oom(err);
    return 0;
}
