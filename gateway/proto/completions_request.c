#include "completions_request.h"

#include "effort.h"
#include "field.h"
#include "json.h"
#include "ollama.h"
#include "sampling.h"

#include <stdint.h>
#include <string.h>

/* Ceiling for the parse copy; the real bound is the body limit the server
 * enforces before calling us. */
#define SCRATCH_MAX (SIZE_MAX / 4)

static int xlate_prompt(const cJSON *root, struct completions_req *r, struct apierr *err)
{
    const cJSON *p = json_get(root, "prompt");
    if (json_unset(p))
        return field_missing(err, "prompt");
    if (cJSON_IsArray(p)) {
        const cJSON *first = p->child;
        int n = cJSON_GetArraySize(p);
        if (!first)
            return apierr_invalid(err, "prompt",
                                  "'prompt' is an empty array; send the prompt as a string.");
        if (cJSON_IsNumber(first) || cJSON_IsArray(first))
            return apierr_invalid(err, "prompt",
                                  "Token arrays are not supported in 'prompt' (Ollama takes "
                                  "text); send the prompt as a string.");
        if (!cJSON_IsString(first))
            return apierr_invalid(err, "prompt",
                                  "Invalid 'prompt': its elements must be strings, "
                                  "not %s.",
                                  json_type_name(first));
        if (n > 1)
            return apierr_invalid(err, "prompt",
                                  "'prompt' holds %d prompts, but this gateway completes one "
                                  "prompt per request (Ollama generates one completion); send "
                                  "one request per prompt.",
                                  n);
        p = first;
    } else if (!cJSON_IsString(p)) {
        return field_bad_type(err, "prompt", "a string or an array of one string", p);
    }
    if (!p->valuestring[0])
        return apierr_invalid(err, "prompt",
                              "'prompt' must not be empty: Ollama would only load the model and "
                              "generate nothing.");
    r->prompt = p->valuestring;
    return json_add(r->native, "prompt", json_str_ref(r->prompt)) ? 0 : field_oom(err);
}

static int xlate_suffix(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *sfx = json_get(root, "suffix");
    if (json_unset(sfx))
        return 0;
    if (!cJSON_IsString(sfx))
        return field_bad_type(err, "suffix", "a string", sfx);
    if (sfx->valuestring[0] && !json_add(native, "suffix", json_str_ref(sfx->valuestring)))
        return field_oom(err);
    return 0;
}

/* n, best_of, logprobs and echo. */
static int xlate_choice(const cJSON *root, struct completions_req *r, struct apierr *err)
{
    bool present;
    long long v;
    if (field_n(root, err) < 0 ||
        field_int(root, "best_of", -2147483648.0, 2147483647, &present, &v, err) < 0)
        return -1;
    if (present && v != 1)
        return apierr_invalid(err, "best_of",
                              "Invalid 'best_of': this gateway generates exactly one completion "
                              "(Ollama cannot generate several to choose from); send best_of=1 "
                              "or omit it.");

    if (field_int(root, "logprobs", 0, 20, &present, &v, err) < 0)
        return -1;
    r->want.logprobs = present;
    if (present && (!json_add(r->native, "logprobs", cJSON_CreateTrue()) ||
                    !json_add(r->native, "top_logprobs", cJSON_CreateNumber((double)v))))
        return field_oom(err);

    const cJSON *echo = json_get(root, "echo");
    if (!json_unset(echo) && !cJSON_IsBool(echo))
        return field_bad_type(err, "echo", "a boolean", echo);
    if (cJSON_IsTrue(echo) && r->want.logprobs)
        return apierr_invalid(err, "echo",
                              "'echo' with 'logprobs' is not supported: the prompt's tokens "
                              "would need logprobs too, which Ollama does not return. Send one "
                              "or the other.");
    r->want.echo = cJSON_IsTrue(echo) ? r->prompt : NULL;
    return 0;
}

int completions_req_parse(struct completions_req *r, const char *body, size_t len,
                          struct apierr *err)
{
    struct buf scratch;
    memset(r, 0, sizeof *r);
    r->max_tokens = -1;
    buf_init(&scratch, SCRATCH_MAX);
    int rc = field_start(&scratch, body, len, &r->root, &r->model, &r->native, err);
    buf_free(&scratch);
    if (rc < 0)
        goto out_fail;
    const cJSON *root = r->root;
    if (xlate_prompt(root, r, err) < 0 || xlate_suffix(root, r->native, err) < 0 ||
        field_stream(root, &r->stream, &r->want.include_usage, err) < 0 ||
        xlate_choice(root, r, err) < 0 ||
        sampling_options(root, &r->options, &r->max_tokens, err) < 0 ||
        effort_field(root, r->native, err) < 0)
        goto out_fail;
    return 0;

out_fail:
    completions_req_free(r);
    return -1;
}

int completions_req_to_ollama(const struct completions_req *r, const char *upstream_model,
                              const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    return ollama_body(upstream_model, r->stream, r->native, r->options, alias_options, out, err);
}

void completions_req_free(struct completions_req *r)
{
    field_free(&r->options, &r->native, &r->root);
    r->model = r->prompt = r->want.echo = NULL;
}
