#include "json.h"

#include "jarena.h"
#include "jscan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

cJSON *json_parse(struct buf *scratch, const char *p, size_t len, size_t *errpos)
{
    const char *end = NULL;
    *errpos = 0;
    buf_reset(scratch);
    int rc = buf_append(scratch, p, len);
    if (rc < 0) {
        *errpos = rc == BUF_NOMEM ? JSON_NOMEM : 0;
        return NULL;
    }
    const char *base = scratch->p;
    unsigned long nomem = jarena_nomem();
    cJSON *j = cJSON_ParseWithLengthOpts(base, len, &end, 0);
    if (!j) {
        if (jarena_nomem() != nomem)
            *errpos = JSON_NOMEM;
        else
            *errpos = end && end >= base && end <= base + len ? (size_t)(end - base) : 0;
    } else {
        end = jscan_ws(end, base + len);
        if (end != base + len) {
            *errpos = (size_t)(end - base);
            cJSON_Delete(j);
            j = NULL;
        }
    }
    /* The tree holds its own copies: a big copy (a 16 MiB stream line) is
     * given back now rather than kept by the stream for its next line. */
    if (scratch->cap > JSON_SCRATCH_KEEP)
        buf_free(scratch);
    return j;
}

const char *json_type_name(const cJSON *it)
{
    if (cJSON_IsString(it))
        return "a string";
    if (cJSON_IsNumber(it))
        return "a number";
    if (cJSON_IsBool(it))
        return "a boolean";
    if (cJSON_IsArray(it))
        return "an array";
    if (cJSON_IsObject(it))
        return "an object";
    return "null";
}

/* No libm rounding needed: above 2^52 every double is whole. */
bool json_is_integer(double d)
{
    if (!isfinite(d) || d <= -9.2e18 || d >= 9.2e18)
        return false;
    if (d > 4503599627370496.0 || d < -4503599627370496.0)
        return true;
    return d == (double)(long long)d;
}

bool json_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

bool json_push(cJSON *arr, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

cJSON *json_ref(const cJSON *item)
{
    cJSON *r = cJSON_CreateNull();
    if (!r)
        return NULL;
    *r = *item;
    r->next = r->prev = NULL;
    r->string = NULL;
    r->type = (item->type | cJSON_IsReference) & ~cJSON_StringIsConst;
    return r;
}

int json_put_number(struct buf *out, double d)
{
    if (!isfinite(d))
        return buf_append(out, "0", 1);
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof tmp, "%.17g", d);
    return buf_puts(out, tmp);
}
