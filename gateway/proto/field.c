#include "field.h"

#include "json.h"

int field_oom(struct apierr *err)
{
    return apierr_nomem(err);
}

int field_bad_type(struct apierr *err, const char *param, const char *expected, const cJSON *got)
{
    return apierr_invalid(err, param, "Invalid type for '%s': expected %s, but got %s instead.",
                          param, expected, json_type_name(got));
}

int field_missing(struct apierr *err, const char *param)
{
    return apierr_invalid(err, param, "Missing required parameter: '%s'.", param);
}

cJSON *field_body(struct buf *scratch, const char *body, size_t len, struct apierr *err)
{
    size_t at;
    if (!len) {
        apierr_invalid(err, NULL, "The request body is empty; send a JSON object.");
        return NULL;
    }
    cJSON *root = json_parse(scratch, body, len, &at);
    if (!root && at == JSON_NOMEM) {
        field_oom(err);
        return NULL;
    }
    if (!root) {
        apierr_invalid(err, NULL,
                       "We could not parse the JSON body of your request (error at byte %zu). "
                       "Send a valid JSON object.",
                       at);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        apierr_invalid(err, NULL, "The request body must be a JSON object, not %s.",
                       json_type_name(root));
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *field_model(const cJSON *root, struct apierr *err)
{
    const cJSON *model = json_get(root, "model");
    if (!cJSON_IsString(model)) {
        json_unset(model) ? field_missing(err, "model")
                          : field_bad_type(err, "model", "a string", model);
        return NULL;
    }
    if (!model->valuestring[0]) {
        apierr_invalid(err, "model", "'model' must not be empty.");
        return NULL;
    }
    return model->valuestring;
}

int field_start(struct buf *scratch, const char *body, size_t len, cJSON **root, const char **model,
                cJSON **native, struct apierr *err)
{
    *root = field_body(scratch, body, len, err);
    if (!*root)
        return -1;
    *model = field_model(*root, err);
    if (!*model)
        return -1;
    *native = cJSON_CreateObject();
    return *native ? 0 : field_oom(err);
}

void field_free(cJSON **options, cJSON **native, cJSON **root)
{
    cJSON_Delete(*options);
    cJSON_Delete(*native);
    cJSON_Delete(*root);
    *options = *native = *root = NULL;
}

int field_int(const cJSON *root, const char *key, double min, double max, bool *present,
              long long *out, struct apierr *err)
{
    const cJSON *v = json_get(root, key);
    *present = false;
    if (json_unset(v))
        return 0;
    if (!cJSON_IsNumber(v) || !json_is_integer(v->valuedouble))
        return field_bad_type(err, key, "an integer", v);
    double d = v->valuedouble;
    if (d < min || d > max)
        return apierr_invalid(err, key, "Invalid '%s': %.0f is outside the range %.0f to %.0f.",
                              key, d, min, max);
    *present = true;
    *out = (long long)d;
    return 0;
}

int field_stream(const cJSON *root, bool *stream, bool *include_usage, struct apierr *err)
{
    const cJSON *st = json_get(root, "stream");
    if (!json_unset(st) && !cJSON_IsBool(st))
        return field_bad_type(err, "stream", "a boolean", st);
    *stream = cJSON_IsTrue(st);

    const cJSON *so = json_get(root, "stream_options");
    if (!json_unset(so) && !cJSON_IsObject(so))
        return field_bad_type(err, "stream_options", "an object", so);
    const cJSON *iu = cJSON_IsObject(so) ? json_get(so, "include_usage") : NULL;
    if (!json_unset(iu) && !cJSON_IsBool(iu))
        return field_bad_type(err, "stream_options.include_usage", "a boolean", iu);
    *include_usage = *stream && cJSON_IsTrue(iu);
    return 0;
}

int field_n(const cJSON *root, struct apierr *err)
{
    bool present;
    long long n = 1;
    if (field_int(root, "n", -2147483648.0, 2147483647, &present, &n, err) < 0)
        return -1;
    if (n < 1)
        return apierr_invalid(err, "n", "Invalid 'n': it must be at least 1.");
    if (n > 1)
        return apierr_invalid(err, "n",
                              "Invalid 'n': this gateway returns exactly one choice (Ollama "
                              "cannot generate several); send n=1 or omit it.");
    return 0;
}
