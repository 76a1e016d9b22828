#include "sampling.h"

#include "field.h"
#include "json.h"

#include <math.h>
#include <stdio.h>

/* A finite number in [min, max] (either bound may be +-INFINITY). */
static int opt_number(const cJSON *root, const char *key, const char *native_key, double min,
                      double max, cJSON *opts, struct apierr *err)
{
    const cJSON *v = json_get(root, key);
    if (json_unset(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return field_bad_type(err, key, "a number", v);
    double d = v->valuedouble;
    if (!isfinite(d))
        return apierr_invalid(err, key, "Invalid '%s': it must be a finite number.", key);
    if (d < min || d > max) {
        if (isinf(max))
            return apierr_invalid(err, key, "Invalid '%s': %g is below the minimum of %g.", key, d,
                                  min);
        return apierr_invalid(err, key, "Invalid '%s': %g is outside the range %g to %g.", key, d,
                              min, max);
    }
    return json_add(opts, native_key, json_ref(v)) ? 0 : field_oom(err);
}

static int xlate_stop(const cJSON *root, cJSON *opts, struct apierr *err)
{
    const cJSON *stop = json_get(root, "stop");
    if (json_unset(stop))
        return 0;
    if (cJSON_IsString(stop)) {
        cJSON *arr = cJSON_CreateArray();
        if (!json_add(opts, "stop", arr) || !json_push(arr, json_str_ref(stop->valuestring)))
            return field_oom(err);
        return 0;
    }
    if (!cJSON_IsArray(stop))
        return field_bad_type(err, "stop", "a string or an array of strings", stop);
    int k = 0;
    for (const cJSON *s = stop->child; s; s = s->next, k++) {
        if (!cJSON_IsString(s)) {
            char param[32];
            snprintf(param, sizeof param, "stop[%d]", k);
            return field_bad_type(err, param, "a string", s);
        }
    }
    if (stop->child && !json_add(opts, "stop", json_ref(stop)))
        return field_oom(err);
    return 0;
}

static int read_options(const cJSON *root, cJSON *opts, long *max_tokens, struct apierr *err)
{
    if (opt_number(root, "temperature", "temperature", 0, INFINITY, opts, err) < 0 ||
        opt_number(root, "top_p", "top_p", 0, 1, opts, err) < 0 ||
        opt_number(root, "presence_penalty", "presence_penalty", -INFINITY, INFINITY, opts, err) <
            0 ||
        opt_number(root, "frequency_penalty", "frequency_penalty", -INFINITY, INFINITY, opts, err) <
            0 ||
        opt_number(root, "min_p", "min_p", 0, 1, opts, err) < 0)
        return -1;

    /* repeat_penalty (Ollama's name) or repetition_penalty (vLLM's): > 0. */
    const char *rp =
        json_unset(json_get(root, "repeat_penalty")) ? "repetition_penalty" : "repeat_penalty";
    if (opt_number(root, rp, "repeat_penalty", 0, INFINITY, opts, err) < 0)
        return -1;
    const cJSON *rpv = json_get(opts, "repeat_penalty");
    if (rpv && rpv->valuedouble <= 0)
        return apierr_invalid(err, rp, "Invalid '%s': it must be greater than 0.", rp);

    bool present;
    long long v;
    if (field_int(root, "seed", -9.2e18, 9.2e18, &present, &v, err) < 0)
        return -1;
    if (present && !json_add(opts, "seed", json_ref(json_get(root, "seed"))))
        return field_oom(err);
    if (field_int(root, "top_k", 0, 2147483647, &present, &v, err) < 0)
        return -1;
    if (present && !json_add(opts, "top_k", json_ref(json_get(root, "top_k"))))
        return field_oom(err);

    long long mt = -1, mct = -1;
    if (field_int(root, "max_tokens", 1, 2147483647, &present, &mt, err) < 0 ||
        field_int(root, "max_completion_tokens", 1, 2147483647, &present, &mct, err) < 0)
        return -1;
    long long n = mct > 0 ? mct : mt;
    *max_tokens = (long)n;
    if (n > 0 && !json_add(opts, "num_predict", cJSON_CreateNumber((double)n)))
        return field_oom(err);

    return xlate_stop(root, opts, err);
}

int sampling_options(const cJSON *root, cJSON **options, long *max_tokens, struct apierr *err)
{
    *options = NULL;
    *max_tokens = -1;
    cJSON *opts = cJSON_CreateObject();
    if (!opts)
        return field_oom(err);
    if (read_options(root, opts, max_tokens, err) < 0) {
        cJSON_Delete(opts);
        return -1;
    }
    if (!opts->child)
        cJSON_Delete(opts);
    else
        *options = opts;
    return 0;
}
