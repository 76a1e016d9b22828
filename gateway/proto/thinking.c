#include "thinking.h"

#include "json.h"

bool thinking_on(const cJSON *think)
{
    return cJSON_IsTrue(think) || (cJSON_IsString(think) && think->valuestring[0]);
}

bool thinking_gate(cJSON *fields, bool no_thinking)
{
    if (!thinking_on(json_get(fields, "think")))
        return false;
    if (no_thinking)
        cJSON_Delete(cJSON_DetachItemFromObjectCaseSensitive(fields, "think"));
    return true;
}
