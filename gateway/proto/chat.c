#include "chat.h"
#include "rand.h"
#include "sse.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Ceilings for our private buffers; the real bounds are the body and line
 * limits the server enforces before calling us. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* How many earlier assistant tool calls a tool message's name is looked up in. */
#define TOOL_NAME_MEMORY 64

/* ------------------------------------------------------------------------ */
/* Small JSON helpers                                                        */

static cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Absent and null mean the same for every optional field. */
static bool unset(const cJSON *it)
{
    return !it || cJSON_IsNull(it);
}

static const char *type_name(const cJSON *it)
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

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Parse len bytes at p as exactly one JSON value (whitespace around it allowed).
 * cJSON 1.7.15 can read one byte past the length it is given (DaveGamble/cJSON
 * #804), and our input is not always NUL-terminated, so this parses a
 * NUL-terminated copy kept in scratch. Never touches cJSON's global error
 * pointer. Returns NULL on a syntax error (or when memory runs out), with
 * *errpos the offset of the problem.
 */
static cJSON *parse_json(struct buf *scratch, const char *p, size_t len, size_t *errpos)
{
    const char *end = NULL;
    *errpos = 0;
    buf_reset(scratch);
    if (buf_append(scratch, p, len) < 0)
        return NULL;
    const char *base = scratch->p;
    cJSON *j = cJSON_ParseWithLengthOpts(base, len, &end, 0);
    if (!j) {
        *errpos = end && end >= base && end <= base + len ? (size_t)(end - base) : 0;
        return NULL;
    }
    while (end < base + len && is_ws(*end))
        end++;
    if (end != base + len) {
        *errpos = (size_t)(end - base);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Add item under a key that outlives the tree (a literal, or a key owned by a
 * tree that outlives this one). On failure the item is freed. */
static bool add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool push(cJSON *arr, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* A shallow stand-in for item: prints like it, frees nothing of it. */
static cJSON *ref(const cJSON *item)
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

static cJSON *str_ref(const char *s)
{
    return cJSON_CreateStringReference(s);
}

/* d is a whole number with |d| < 2^63 (no libm needed: above 2^52 every
 * double is whole). */
static bool is_integer(double d)
{
    if (!isfinite(d) || d <= -9.2e18 || d >= 9.2e18)
        return false;
    if (d > 4503599627370496.0 || d < -4503599627370496.0)
        return true;
    return d == (double)(long long)d;
}

static int oom(struct apierr *err)
{
    return apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                      "The gateway ran out of memory while handling this request.");
}

static int bad_type(struct apierr *err, const char *param, const char *expected, const cJSON *got)
{
    return apierr_invalid(err, param, "Invalid type for '%s': expected %s, but got %s instead.",
                          param, expected, type_name(got));
}

static int missing(struct apierr *err, const char *param)
{
    return apierr_invalid(err, param, "Missing required parameter: '%s'.", param);
}

/* ------------------------------------------------------------------------ */
/* Request: messages                                                         */

/* Recent assistant tool calls, to name the tool a tool message answers. */
struct tool_names {
    const char *id[TOOL_NAME_MEMORY];   /* borrowed from the client body */
    const char *name[TOOL_NAME_MEMORY]; /* borrowed from the client body */
    unsigned n;                         /* calls recorded; slot = n % TOOL_NAME_MEMORY */
};

static void tool_names_add(struct tool_names *t, const char *id, const char *name)
{
    t->id[t->n % TOOL_NAME_MEMORY] = id;
    t->name[t->n % TOOL_NAME_MEMORY] = name;
    t->n++;
}

/* The newest call with this id wins, as in Ollama's own layer. */
static const char *tool_names_find(const struct tool_names *t, const char *id)
{
    unsigned kept = t->n < TOOL_NAME_MEMORY ? t->n : TOOL_NAME_MEMORY;
    for (unsigned k = 1; k <= kept; k++) {
        unsigned slot = (t->n - k) % TOOL_NAME_MEMORY;
        if (strcmp(t->id[slot], id) == 0)
            return t->name[slot];
    }
    return NULL;
}

static bool is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Standard base64 with padding, as Go's encoding/json decodes []byte (which
 * skips CR and LF). */
static bool valid_base64(const char *s)
{
    size_t n = 0, pad = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (!is_b64(c) || pad) {
            return false;
        }
        n++;
    }
    return n > 0 && n % 4 == 0 && pad <= 2;
}

/*
 * An image_url's url -> the raw base64 payload (a pointer into url), or NULL
 * with err set.
 */
static const char *image_payload(const char *url, const char *param, struct apierr *err)
{
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
        apierr_invalid(err, param,
                       "Image URLs are not supported by this gateway (it does not fetch "
                       "them); send the image inline as a base64 data URL, e.g. "
                       "data:image/png;base64,....");
        return NULL;
    }
    if (strncasecmp(url, "data:", 5) != 0) {
        apierr_invalid(err, param,
                       "Invalid image URL: expected a base64 data URL such as "
                       "data:image/png;base64,....");
        return NULL;
    }
    const char *meta = url + 5;
    const char *b64 = strstr(meta, ";base64,");
    if (!b64) {
        apierr_invalid(err, param,
                       "Invalid image data URL: only ;base64, data URLs are supported.");
        return NULL;
    }
    if (b64 != meta && strncasecmp(meta, "image/", 6) != 0) {
        apierr_invalid(err, param, "Invalid image data URL: the media type must be image/*.");
        return NULL;
    }
    const char *payload = b64 + 8;
    if (!valid_base64(payload)) {
        apierr_invalid(err, param, "Invalid image data URL: the data is not valid base64.");
        return NULL;
    }
    return payload;
}

/* An array of content parts -> native content (+ images) on nm. */
static int xlate_parts(const cJSON *parts, int i, cJSON *nm, struct apierr *err)
{
    char param[96];
    const char *first = NULL;
    size_t ntext = 0, total = 0;
    cJSON *images = NULL;
    int j = 0;
    for (const cJSON *p = parts->child; p; p = p->next, j++) {
        snprintf(param, sizeof param, "messages[%d].content[%d]", i, j);
        if (!cJSON_IsObject(p))
            return bad_type(err, param, "an object", p);
        const cJSON *type = get(p, "type");
        if (!cJSON_IsString(type)) {
            snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
            return unset(type) ? missing(err, param) : bad_type(err, param, "a string", type);
        }
        const char *t = type->valuestring;
        if (strcmp(t, "text") == 0 || strcmp(t, "refusal") == 0) {
            const cJSON *text = get(p, t);
            snprintf(param, sizeof param, "messages[%d].content[%d].%s", i, j, t);
            if (!cJSON_IsString(text))
                return unset(text) ? missing(err, param) : bad_type(err, param, "a string", text);
            if (!ntext)
                first = text->valuestring;
            ntext++;
            total += strlen(text->valuestring) + 1;
        } else if (strcmp(t, "image_url") == 0) {
            const cJSON *iu = get(p, "image_url");
            const cJSON *url = cJSON_IsObject(iu) ? get(iu, "url") : iu;
            snprintf(param, sizeof param,
                     cJSON_IsObject(iu) ? "messages[%d].content[%d].image_url.url"
                                        : "messages[%d].content[%d].image_url",
                     i, j);
            if (!cJSON_IsString(url))
                return unset(url) ? missing(err, param)
                                  : bad_type(err, param, "a string or {\"url\": string}", url);
            const char *payload = image_payload(url->valuestring, param, err);
            if (!payload)
                return -1;
            if (!images) {
                images = cJSON_CreateArray();
                if (!add(nm, "images", images))
                    return oom(err);
            }
            if (!push(images, str_ref(payload)))
                return oom(err);
        } else {
            snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
            return apierr_invalid(err, param,
                                  "Unsupported content part type '%.40s': this gateway "
                                  "accepts 'text' and 'image_url' (base64 data URLs).",
                                  t);
        }
    }
    if (ntext <= 1)
        return add(nm, "content", str_ref(first ? first : "")) ? 0 : oom(err);

    /* Several text parts: one string, parts separated by "\n". */
    struct buf joined;
    buf_init(&joined, total);
    int rc = buf_reserve(&joined, total);
    size_t k = 0;
    for (const cJSON *p = parts->child; p && rc == 0; p = p->next) {
        const char *t = get(p, "type")->valuestring;
        if (strcmp(t, "image_url") == 0)
            continue;
        const char *s = get(p, t)->valuestring;
        if (k++)
            rc |= buf_append(&joined, "\n", 1);
        rc |= buf_puts(&joined, s);
    }
    if (rc == 0)
        rc = add(nm, "content", cJSON_CreateString(joined.p)) ? 0 : -1;
    buf_free(&joined);
    return rc == 0 ? 0 : oom(err);
}

static int xlate_content(const cJSON *m, int i, bool may_be_null, cJSON *nm, struct apierr *err)
{
    char param[96];
    const cJSON *c = get(m, "content");
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (unset(c)) {
        if (!may_be_null)
            return apierr_invalid(err, param,
                                  "Missing content: '%s' must be a string or an array of "
                                  "content parts (null is allowed only on an assistant "
                                  "message with tool_calls).",
                                  param);
        return add(nm, "content", str_ref("")) ? 0 : oom(err);
    }
    if (cJSON_IsString(c))
        return add(nm, "content", str_ref(c->valuestring)) ? 0 : oom(err);
    if (cJSON_IsArray(c))
        return xlate_parts(c, i, nm, err);
    return bad_type(err, param, "a string or an array of content parts", c);
}

static int xlate_tool_calls(const cJSON *tcs, int i, cJSON *nm, struct tool_names *names,
                            struct buf *scratch, struct apierr *err)
{
    char param[96];
    cJSON *out = cJSON_CreateArray();
    if (!add(nm, "tool_calls", out))
        return oom(err);
    int j = 0;
    for (const cJSON *tc = tcs->child; tc; tc = tc->next, j++) {
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d]", i, j);
        if (!cJSON_IsObject(tc))
            return bad_type(err, param, "an object", tc);
        const cJSON *type = get(tc, "type");
        if (!unset(type) && !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
            snprintf(param, sizeof param, "messages[%d].tool_calls[%d].type", i, j);
            return apierr_invalid(err, param, "Only 'function' tool calls are supported.");
        }
        const cJSON *id = get(tc, "id");
        if (!unset(id) && !cJSON_IsString(id)) {
            snprintf(param, sizeof param, "messages[%d].tool_calls[%d].id", i, j);
            return bad_type(err, param, "a string", id);
        }
        const cJSON *fn = get(tc, "function");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function", i, j);
        if (!cJSON_IsObject(fn))
            return unset(fn) ? missing(err, param) : bad_type(err, param, "an object", fn);
        const cJSON *name = get(fn, "name");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function.name", i, j);
        if (!cJSON_IsString(name))
            return unset(name) ? missing(err, param) : bad_type(err, param, "a string", name);
        if (!name->valuestring[0])
            return apierr_invalid(err, param, "'%s' must not be empty.", param);

        const cJSON *args = get(fn, "arguments");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function.arguments", i, j);
        cJSON *nargs;
        if (cJSON_IsString(args)) {
            size_t at;
            const char *s = args->valuestring;
            nargs = parse_json(scratch, s, strlen(s), &at);
            if (!nargs || !cJSON_IsObject(nargs)) {
                cJSON_Delete(nargs);
                return apierr_invalid(err, param,
                                      "'%s' must be a JSON object encoded as a string (\"{}\" "
                                      "for a call without arguments); got %s.",
                                      param,
                                      !s[0]   ? "an empty string"
                                      : nargs ? "valid JSON that is not an object"
                                              : "invalid JSON");
            }
        } else if (cJSON_IsObject(args)) {
            nargs = ref(args); /* lenient: some clients send the object itself */
        } else {
            return unset(args) ? missing(err, param)
                               : bad_type(err, param, "a string holding a JSON object", args);
        }

        cJSON *ntc = cJSON_CreateObject(), *nfn = NULL;
        if (!push(out, ntc) || (cJSON_IsString(id) && !add(ntc, "id", str_ref(id->valuestring))) ||
            !add(ntc, "function", nfn = cJSON_CreateObject()) ||
            !add(nfn, "name", str_ref(name->valuestring))) {
            cJSON_Delete(nargs);
            return oom(err);
        }
        if (!add(nfn, "arguments", nargs))
            return oom(err);
        if (cJSON_IsString(id))
            tool_names_add(names, id->valuestring, name->valuestring);
    }
    return 0;
}

static int xlate_message(const cJSON *m, int i, cJSON *out, struct tool_names *names,
                         struct buf *scratch, struct apierr *err)
{
    char param[96];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(m))
        return bad_type(err, param, "an object", m);

    const cJSON *role = get(m, "role");
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!cJSON_IsString(role))
        return unset(role) ? missing(err, param) : bad_type(err, param, "a string", role);
    const char *r = role->valuestring, *nrole;
    if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0)
        nrole = "system";
    else if (strcmp(r, "user") == 0)
        nrole = "user";
    else if (strcmp(r, "assistant") == 0)
        nrole = "assistant";
    else if (strcmp(r, "tool") == 0)
        nrole = "tool";
    else if (strcmp(r, "function") == 0)
        return apierr_invalid(err, param,
                              "The 'function' role is deprecated and not supported; send tool "
                              "results as role 'tool' with a tool_call_id.");
    else
        return apierr_invalid(err, param,
                              "Invalid value for '%s': '%.40s'. Supported values are: 'system', "
                              "'developer', 'user', 'assistant' and 'tool'.",
                              param, r);

    cJSON *nm = cJSON_CreateObject();
    if (!push(out, nm) || !add(nm, "role", str_ref(nrole)))
        return oom(err);

    bool assistant = nrole[0] == 'a';
    const cJSON *tcs = assistant ? get(m, "tool_calls") : NULL;
    if (!unset(tcs) && !cJSON_IsArray(tcs)) {
        snprintf(param, sizeof param, "messages[%d].tool_calls", i);
        return bad_type(err, param, "an array", tcs);
    }
    bool has_calls = cJSON_IsArray(tcs) && tcs->child;
    if (xlate_content(m, i, has_calls, nm, err) < 0)
        return -1;

    if (assistant) {
        const cJSON *th = get(m, "reasoning_content");
        if (!cJSON_IsString(th) || !th->valuestring[0])
            th = get(m, "reasoning");
        if (cJSON_IsString(th) && th->valuestring[0] &&
            !add(nm, "thinking", str_ref(th->valuestring)))
            return oom(err);
        if (has_calls && xlate_tool_calls(tcs, i, nm, names, scratch, err) < 0)
            return -1;
    }

    if (nrole[0] == 't') {
        const cJSON *id = get(m, "tool_call_id");
        const cJSON *name = get(m, "name");
        if (!unset(id) && !cJSON_IsString(id)) {
            snprintf(param, sizeof param, "messages[%d].tool_call_id", i);
            return bad_type(err, param, "a string", id);
        }
        if (!unset(name) && !cJSON_IsString(name)) {
            snprintf(param, sizeof param, "messages[%d].name", i);
            return bad_type(err, param, "a string", name);
        }
        const char *tool = cJSON_IsString(name) && name->valuestring[0] ? name->valuestring : NULL;
        if (cJSON_IsString(id)) {
            if (!add(nm, "tool_call_id", str_ref(id->valuestring)))
                return oom(err);
            if (!tool)
                tool = tool_names_find(names, id->valuestring);
        }
        if (tool && !add(nm, "tool_name", str_ref(tool)))
            return oom(err);
    }
    return 0;
}

static int xlate_messages(const cJSON *msgs, cJSON *native, struct buf *scratch, struct apierr *err)
{
    if (unset(msgs))
        return missing(err, "messages");
    if (!cJSON_IsArray(msgs))
        return bad_type(err, "messages", "an array", msgs);
    if (!msgs->child)
        return apierr_invalid(err, "messages", "'messages' must contain at least one message.");
    cJSON *out = cJSON_CreateArray();
    if (!add(native, "messages", out))
        return oom(err);
    struct tool_names names = {.n = 0};
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++)
        if (xlate_message(m, i, out, &names, scratch, err) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Request: tools                                                            */

static int check_tool(const cJSON *t, int k, struct apierr *err)
{
    char param[96];
    snprintf(param, sizeof param, "tools[%d]", k);
    if (!cJSON_IsObject(t))
        return bad_type(err, param, "an object", t);
    const cJSON *type = get(t, "type");
    if (!unset(type) && !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
        snprintf(param, sizeof param, "tools[%d].type", k);
        return apierr_invalid(err, param, "Only tools of type 'function' are supported.");
    }
    const cJSON *fn = get(t, "function");
    snprintf(param, sizeof param, "tools[%d].function", k);
    if (!cJSON_IsObject(fn))
        return unset(fn) ? missing(err, param) : bad_type(err, param, "an object", fn);
    const cJSON *name = get(fn, "name");
    snprintf(param, sizeof param, "tools[%d].function.name", k);
    if (!cJSON_IsString(name))
        return unset(name) ? missing(err, param) : bad_type(err, param, "a string", name);
    if (!name->valuestring[0])
        return apierr_invalid(err, param, "'%s' must not be empty.", param);
    const cJSON *desc = get(fn, "description");
    if (!unset(desc) && !cJSON_IsString(desc)) {
        snprintf(param, sizeof param, "tools[%d].function.description", k);
        return bad_type(err, param, "a string", desc);
    }
    const cJSON *params = get(fn, "parameters");
    if (!unset(params) && !cJSON_IsObject(params)) {
        snprintf(param, sizeof param, "tools[%d].function.parameters", k);
        return bad_type(err, param, "an object (a JSON Schema)", params);
    }
    return 0;
}

static const char *tool_name(const cJSON *t)
{
    return get(get(t, "function"), "name")->valuestring;
}

/* The name in a {type:"function", function:{name}} object, or NULL with err set. */
static const char *choice_name(const cJSON *c, const char *param, struct apierr *err)
{
    char p[96];
    const cJSON *type = get(c, "type");
    if (!unset(type) && !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
        snprintf(p, sizeof p, "%s.type", param);
        apierr_invalid(err, p, "Only 'function' tool choices are supported.");
        return NULL;
    }
    const cJSON *fn = get(c, "function");
    snprintf(p, sizeof p, "%s.function", param);
    if (!cJSON_IsObject(fn)) {
        unset(fn) ? missing(err, p) : bad_type(err, p, "an object", fn);
        return NULL;
    }
    const cJSON *name = get(fn, "name");
    snprintf(p, sizeof p, "%s.function.name", param);
    if (!cJSON_IsString(name)) {
        unset(name) ? missing(err, p) : bad_type(err, p, "a string", name);
        return NULL;
    }
    return name->valuestring;
}

static bool tools_have(const cJSON *tools, const char *name)
{
    for (const cJSON *t = tools->child; t; t = t->next)
        if (strcmp(tool_name(t), name) == 0)
            return true;
    return false;
}

/*
 * tool_choice -> which tools to send. Sets *only (one tool's name) or *allowed
 * (an array of {type,function:{name}}), or *none. tools is a validated,
 * non-empty array or NULL.
 */
static int read_tool_choice(const cJSON *choice, const cJSON *tools, bool *none, const char **only,
                            const cJSON **allowed, struct apierr *err)
{
    *none = false;
    *only = NULL;
    *allowed = NULL;
    if (unset(choice))
        return 0;
    if (cJSON_IsString(choice)) {
        const char *c = choice->valuestring;
        if (strcmp(c, "none") == 0) {
            *none = true;
            return 0;
        }
        if (strcmp(c, "auto") == 0)
            return 0;
        if (strcmp(c, "required") == 0) {
            if (!tools)
                return apierr_invalid(err, "tool_choice",
                                      "'tool_choice' is only allowed when 'tools' are specified.");
            return 0;
        }
        return apierr_invalid(err, "tool_choice",
                              "Invalid value for 'tool_choice': '%.40s'. Supported values are: "
                              "'none', 'auto', 'required', or a named function.",
                              c);
    }
    if (!cJSON_IsObject(choice))
        return bad_type(err, "tool_choice", "a string or an object", choice);
    if (!tools)
        return apierr_invalid(err, "tool_choice",
                              "'tool_choice' is only allowed when 'tools' are specified.");

    const cJSON *type = get(choice, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "allowed_tools") == 0) {
        const cJSON *at = get(choice, "allowed_tools");
        if (!cJSON_IsObject(at))
            return unset(at) ? missing(err, "tool_choice.allowed_tools")
                             : bad_type(err, "tool_choice.allowed_tools", "an object", at);
        const cJSON *mode = get(at, "mode");
        if (!unset(mode) && !(cJSON_IsString(mode) && (strcmp(mode->valuestring, "auto") == 0 ||
                                                       strcmp(mode->valuestring, "required") == 0)))
            return apierr_invalid(err, "tool_choice.allowed_tools.mode",
                                  "Invalid value for 'tool_choice.allowed_tools.mode': expected "
                                  "'auto' or 'required'.");
        const cJSON *list = get(at, "tools");
        if (!cJSON_IsArray(list))
            return unset(list) ? missing(err, "tool_choice.allowed_tools.tools")
                               : bad_type(err, "tool_choice.allowed_tools.tools", "an array", list);
        int k = 0;
        for (const cJSON *t = list->child; t; t = t->next, k++) {
            char param[96];
            snprintf(param, sizeof param, "tool_choice.allowed_tools.tools[%d]", k);
            if (!cJSON_IsObject(t))
                return bad_type(err, param, "an object", t);
            const char *name = choice_name(t, param, err);
            if (!name)
                return -1;
            if (!tools_have(tools, name))
                return apierr_invalid(err, param, "No tool named '%.64s' in 'tools'.", name);
        }
        *allowed = list;
        return 0;
    }
    const char *name = choice_name(choice, "tool_choice", err);
    if (!name)
        return -1;
    if (!tools_have(tools, name))
        return apierr_invalid(err, "tool_choice.function.name", "No tool named '%.64s' in 'tools'.",
                              name);
    *only = name;
    return 0;
}

static bool allowed_has(const cJSON *allowed, const char *name)
{
    for (const cJSON *t = allowed->child; t; t = t->next)
        if (strcmp(get(get(t, "function"), "name")->valuestring, name) == 0)
            return true;
    return false;
}

static int xlate_tools(const cJSON *root, cJSON *native, bool *has_tools, struct apierr *err)
{
    const cJSON *tools = get(root, "tools");
    *has_tools = false;
    if (!unset(tools) && !cJSON_IsArray(tools))
        return bad_type(err, "tools", "an array", tools);
    if (unset(tools) || !tools->child)
        tools = NULL;
    int k = 0;
    for (const cJSON *t = tools ? tools->child : NULL; t; t = t->next, k++)
        if (check_tool(t, k, err) < 0)
            return -1;

    bool none;
    const char *only;
    const cJSON *allowed;
    if (read_tool_choice(get(root, "tool_choice"), tools, &none, &only, &allowed, err) < 0)
        return -1;
    if (!tools || none)
        return 0;

    cJSON *out = cJSON_CreateArray();
    if (!add(native, "tools", out))
        return oom(err);
    for (const cJSON *t = tools->child; t; t = t->next) {
        const char *name = tool_name(t);
        if ((only && strcmp(only, name) != 0) || (allowed && !allowed_has(allowed, name)))
            continue;
        const cJSON *fn = get(t, "function");
        const cJSON *desc = get(fn, "description"), *params = get(fn, "parameters");
        cJSON *nt = cJSON_CreateObject(), *nfn = NULL;
        if (!push(out, nt) || !add(nt, "type", str_ref("function")) ||
            !add(nt, "function", nfn = cJSON_CreateObject()) || !add(nfn, "name", str_ref(name)) ||
            (cJSON_IsString(desc) && !add(nfn, "description", str_ref(desc->valuestring))) ||
            (cJSON_IsObject(params) && !add(nfn, "parameters", ref(params))))
            return oom(err);
    }
    *has_tools = out->child != NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Request: options, format, thinking                                        */

/* A finite number in [min, max] (either bound may be +-INFINITY). */
static int opt_number(const cJSON *root, const char *key, const char *native_key, double min,
                      double max, cJSON *opts, struct apierr *err)
{
    const cJSON *v = get(root, key);
    if (unset(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return bad_type(err, key, "a number", v);
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
    return add(opts, native_key, ref(v)) ? 0 : oom(err);
}

/* An integer in [min, max]; *out gets it when present (else it is untouched). */
static int get_int(const cJSON *root, const char *key, double min, double max, bool *present,
                   long long *out, struct apierr *err)
{
    const cJSON *v = get(root, key);
    *present = false;
    if (unset(v))
        return 0;
    if (!cJSON_IsNumber(v) || !is_integer(v->valuedouble))
        return bad_type(err, key, "an integer", v);
    double d = v->valuedouble;
    if (d < min || d > max)
        return apierr_invalid(err, key, "Invalid '%s': %.0f is outside the range %.0f to %.0f.",
                              key, d, min, max);
    *present = true;
    *out = (long long)d;
    return 0;
}

static int xlate_stop(const cJSON *root, cJSON *opts, struct apierr *err)
{
    const cJSON *stop = get(root, "stop");
    if (unset(stop))
        return 0;
    if (cJSON_IsString(stop)) {
        cJSON *arr = cJSON_CreateArray();
        if (!add(opts, "stop", arr) || !push(arr, str_ref(stop->valuestring)))
            return oom(err);
        return 0;
    }
    if (!cJSON_IsArray(stop))
        return bad_type(err, "stop", "a string or an array of strings", stop);
    int k = 0;
    for (const cJSON *s = stop->child; s; s = s->next, k++) {
        if (!cJSON_IsString(s)) {
            char param[32];
            snprintf(param, sizeof param, "stop[%d]", k);
            return bad_type(err, param, "a string", s);
        }
    }
    if (stop->child && !add(opts, "stop", ref(stop)))
        return oom(err);
    return 0;
}

static int xlate_options(const cJSON *root, struct chat_req *r, struct apierr *err)
{
    cJSON *opts = cJSON_CreateObject();
    if (!opts)
        return oom(err);
    r->options = opts;
    if (opt_number(root, "temperature", "temperature", 0, INFINITY, opts, err) < 0 ||
        opt_number(root, "top_p", "top_p", 0, 1, opts, err) < 0 ||
        opt_number(root, "presence_penalty", "presence_penalty", -INFINITY, INFINITY, opts, err) <
            0 ||
        opt_number(root, "frequency_penalty", "frequency_penalty", -INFINITY, INFINITY, opts, err) <
            0 ||
        opt_number(root, "min_p", "min_p", 0, 1, opts, err) < 0)
        return -1;

    /* repeat_penalty (Ollama's name) or repetition_penalty (vLLM's): > 0. */
    const char *rp = unset(get(root, "repeat_penalty")) ? "repetition_penalty" : "repeat_penalty";
    if (opt_number(root, rp, "repeat_penalty", 0, INFINITY, opts, err) < 0)
        return -1;
    const cJSON *rpv = get(opts, "repeat_penalty");
    if (rpv && rpv->valuedouble <= 0)
        return apierr_invalid(err, rp, "Invalid '%s': it must be greater than 0.", rp);

    bool present;
    long long v;
    if (get_int(root, "seed", -9.2e18, 9.2e18, &present, &v, err) < 0)
        return -1;
    if (present && !add(opts, "seed", ref(get(root, "seed"))))
        return oom(err);
    if (get_int(root, "top_k", 0, 2147483647, &present, &v, err) < 0)
        return -1;
    if (present && !add(opts, "top_k", ref(get(root, "top_k"))))
        return oom(err);

    long long mt = -1, mct = -1;
    if (get_int(root, "max_tokens", 1, 2147483647, &present, &mt, err) < 0 ||
        get_int(root, "max_completion_tokens", 1, 2147483647, &present, &mct, err) < 0)
        return -1;
    long long n = mct > 0 ? mct : mt;
    r->max_tokens = (long)n;
    if (n > 0 && !add(opts, "num_predict", cJSON_CreateNumber((double)n)))
        return oom(err);

    if (xlate_stop(root, opts, err) < 0)
        return -1;
    if (!opts->child) {
        cJSON_Delete(opts);
        r->options = NULL;
    }
    return 0;
}

static int xlate_format(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *rf = get(root, "response_format");
    if (unset(rf))
        return 0;
    if (!cJSON_IsObject(rf))
        return bad_type(err, "response_format", "an object", rf);
    const cJSON *type = get(rf, "type");
    if (!cJSON_IsString(type))
        return unset(type) ? missing(err, "response_format.type")
                           : bad_type(err, "response_format.type", "a string", type);
    const char *t = type->valuestring;
    if (strcmp(t, "text") == 0)
        return 0;
    if (strcmp(t, "json_object") == 0)
        return add(native, "format", str_ref("json")) ? 0 : oom(err);
    if (strcmp(t, "json_schema") == 0) {
        const cJSON *js = get(rf, "json_schema");
        if (!cJSON_IsObject(js))
            return unset(js) ? missing(err, "response_format.json_schema")
                             : bad_type(err, "response_format.json_schema", "an object", js);
        const cJSON *schema = get(js, "schema");
        if (!cJSON_IsObject(schema))
            return unset(schema) ? missing(err, "response_format.json_schema.schema")
                                 : bad_type(err, "response_format.json_schema.schema",
                                            "an object (a JSON Schema)", schema);
        return add(native, "format", ref(schema)) ? 0 : oom(err);
    }
    return apierr_invalid(err, "response_format.type",
                          "Invalid value for 'response_format.type': '%.40s'. Supported values "
                          "are: 'text', 'json_object' and 'json_schema'.",
                          t);
}

/*
 * An effort name -> native think value: NULL item with 0 = leave unset; -1 =
 * not a known effort.
 */
static int effort_think(const char *e, cJSON **think)
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
            *think = str_ref(map[k].think);
            return *think ? 0 : -2;
        }
    }
    return -1;
}

static int bad_effort(struct apierr *err, const char *param, const char *e)
{
    return apierr_invalid(err, param,
                          "Invalid value for '%s': '%.40s'. Supported values are: 'none', "
                          "'minimal', 'low', 'medium', 'high', 'xhigh' and 'max'.",
                          param, e);
}

static int xlate_think(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *think = get(root, "think");
    const cJSON *reasoning = get(root, "reasoning");
    const cJSON *effort = get(root, "reasoning_effort");
    const cJSON *chosen = NULL;
    const char *param = NULL;
    cJSON *out = NULL;

    if (!unset(reasoning) && !cJSON_IsObject(reasoning))
        return bad_type(err, "reasoning", "an object", reasoning);
    const cJSON *reffort = cJSON_IsObject(reasoning) ? get(reasoning, "effort") : NULL;
    if (!unset(reffort) && !cJSON_IsString(reffort))
        return bad_type(err, "reasoning.effort", "a string", reffort);
    if (!unset(effort) && !cJSON_IsString(effort))
        return bad_type(err, "reasoning_effort", "a string", effort);

    if (!unset(think)) {
        if (cJSON_IsBool(think))
            return add(native, "think", ref(think)) ? 0 : oom(err);
        if (!cJSON_IsString(think))
            return bad_type(err, "think", "a boolean or a string", think);
        chosen = think, param = "think";
    } else if (!unset(reffort)) {
        chosen = reffort, param = "reasoning.effort";
    } else if (!unset(effort)) {
        chosen = effort, param = "reasoning_effort";
    } else {
        return 0;
    }
    int rc = effort_think(chosen->valuestring, &out);
    if (rc == -1)
        return bad_effort(err, param, chosen->valuestring);
    if (rc < 0)
        return oom(err);
    if (out && !add(native, "think", out))
        return oom(err);
    return 0;
}

static int xlate_misc(const cJSON *root, struct chat_req *r, cJSON *native, struct apierr *err)
{
    const cJSON *stream = get(root, "stream");
    if (!unset(stream) && !cJSON_IsBool(stream))
        return bad_type(err, "stream", "a boolean", stream);
    r->stream = cJSON_IsTrue(stream);

    const cJSON *so = get(root, "stream_options");
    if (!unset(so) && !cJSON_IsObject(so))
        return bad_type(err, "stream_options", "an object", so);
    const cJSON *iu = cJSON_IsObject(so) ? get(so, "include_usage") : NULL;
    if (!unset(iu) && !cJSON_IsBool(iu))
        return bad_type(err, "stream_options.include_usage", "a boolean", iu);
    r->include_usage = r->stream && cJSON_IsTrue(iu);

    bool present;
    long long n = 1;
    if (get_int(root, "n", -2147483648.0, 2147483647, &present, &n, err) < 0)
        return -1;
    if (n < 1)
        return apierr_invalid(err, "n", "Invalid 'n': it must be at least 1.");
    if (n > 1)
        return apierr_invalid(err, "n",
                              "Invalid 'n': this gateway returns exactly one choice (Ollama "
                              "cannot generate several); send n=1 or omit it.");

    const cJSON *fns = get(root, "functions");
    if (!unset(fns) && !(cJSON_IsArray(fns) && !fns->child))
        return apierr_invalid(err, "functions",
                              "The legacy 'functions' parameter is not supported; send 'tools' "
                              "instead.");

    const cJSON *lp = get(root, "logprobs");
    if (!unset(lp) && !cJSON_IsBool(lp))
        return bad_type(err, "logprobs", "a boolean", lp);
    r->logprobs = cJSON_IsTrue(lp);
    if (cJSON_IsBool(lp) && !add(native, "logprobs", ref(lp)))
        return oom(err);
    long long top;
    if (get_int(root, "top_logprobs", 0, 20, &present, &top, err) < 0)
        return -1;
    if (present && !add(native, "top_logprobs", ref(get(root, "top_logprobs"))))
        return oom(err);
    return 0;
}

int chat_req_parse(struct chat_req *r, const char *body, size_t len, struct apierr *err)
{
    struct buf scratch;
    size_t at;
    memset(r, 0, sizeof *r);
    r->max_tokens = -1;
    buf_init(&scratch, SCRATCH_MAX);

    if (!len) {
        apierr_invalid(err, NULL, "The request body is empty; send a JSON object.");
        goto out_fail;
    }
    r->root = parse_json(&scratch, body, len, &at);
    if (!r->root) {
        apierr_invalid(err, NULL,
                       "We could not parse the JSON body of your request (error at byte %zu). "
                       "Send a valid JSON object.",
                       at);
        goto out_fail;
    }
    const cJSON *root = r->root;
    if (!cJSON_IsObject(root)) {
        apierr_invalid(err, NULL, "The request body must be a JSON object, not %s.",
                       type_name(root));
        goto out_fail;
    }

    const cJSON *model = get(root, "model");
    if (!cJSON_IsString(model)) {
        unset(model) ? missing(err, "model") : bad_type(err, "model", "a string", model);
        goto out_fail;
    }
    if (!model->valuestring[0]) {
        apierr_invalid(err, "model", "'model' must not be empty.");
        goto out_fail;
    }
    r->model = model->valuestring;

    r->native = cJSON_CreateObject();
    if (!r->native) {
        oom(err);
        goto out_fail;
    }
    if (xlate_messages(get(root, "messages"), r->native, &scratch, err) < 0 ||
        xlate_misc(root, r, r->native, err) < 0 || xlate_options(root, r, err) < 0 ||
        xlate_format(root, r->native, err) < 0 ||
        xlate_tools(root, r->native, &r->has_tools, err) < 0 ||
        xlate_think(root, r->native, err) < 0)
        goto out_fail;
    buf_free(&scratch);
    return 0;

out_fail:
    buf_free(&scratch);
    chat_req_free(r);
    return -1;
}

void chat_req_free(struct chat_req *r)
{
    /* native and options borrow from root: free them first */
    cJSON_Delete(r->options);
    cJSON_Delete(r->native);
    cJSON_Delete(r->root);
    r->options = r->native = r->root = NULL;
    r->model = NULL;
}

int chat_req_to_ollama(const struct chat_req *r, const char *upstream_model,
                       const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    int rc = -1;
    char *text = NULL;
    cJSON *w = cJSON_CreateObject();
    cJSON *opts = cJSON_CreateObject();
    if (!w || !opts) {
        cJSON_Delete(opts);
        goto out;
    }
    if (!add(w, "model", str_ref(upstream_model)) ||
        !add(w, "stream", cJSON_CreateBool(r->stream))) {
        cJSON_Delete(opts);
        goto out;
    }
    for (const cJSON *it = r->native ? r->native->child : NULL; it; it = it->next) {
        if (!add(w, it->string, ref(it))) {
            cJSON_Delete(opts);
            goto out;
        }
    }
    /* Alias defaults first, each unless the client set it; then the client's. */
    if (cJSON_IsObject(alias_options)) {
        for (const cJSON *a = alias_options->child; a; a = a->next) {
            if (!a->string || (r->options && get(r->options, a->string)))
                continue;
            if (!add(opts, a->string, ref(a))) {
                cJSON_Delete(opts);
                goto out;
            }
        }
    }
    for (const cJSON *c = r->options ? r->options->child : NULL; c; c = c->next) {
        if (!add(opts, c->string, ref(c))) {
            cJSON_Delete(opts);
            goto out;
        }
    }
    if (!opts->child)
        cJSON_Delete(opts);
    else if (!add(w, "options", opts))
        goto out;

    text = cJSON_PrintUnformatted(w);
    if (text && buf_append(out, text, strlen(text)) == 0)
        rc = 0;
out:
    if (text)
        cJSON_free(text);
    cJSON_Delete(w);
    if (rc < 0)
        apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                   "The gateway could not build the backend request (out of memory).");
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Responses: shared writers                                                 */

/* A JSON number; non-finite values (cJSON parses 1e999 as inf) become 0. */
static int put_number(struct buf *out, double d)
{
    if (!isfinite(d))
        return buf_append(out, "0", 1);
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof tmp, "%.17g", d);
    return buf_puts(out, tmp);
}

static int put_str(struct buf *out, const char *s)
{
    return buf_json_str(out, s, strlen(s));
}

/* A native token count: missing, negative or absurd values count as 0. */
static long count_of(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || !(v->valuedouble < 1e15))
        return 0;
    return (long)v->valuedouble;
}

/* One native logprob entry's "bytes" as an OpenAI array of ints, or null. */
static int put_bytes(struct buf *out, const cJSON *bytes)
{
    if (!cJSON_IsArray(bytes))
        return buf_puts(out, "null");
    int rc = buf_append(out, "[", 1);
    bool first = true;
    for (const cJSON *b = bytes->child; b; b = b->next) {
        if (!cJSON_IsNumber(b))
            continue;
        double d = b->valuedouble;
        int v = d >= 0 && d <= 255 ? (int)d : 0;
        rc |= buf_printf(out, first ? "%d" : ",%d", v);
        first = false;
    }
    return rc | buf_append(out, "]", 1);
}

static int put_logprob(struct buf *out, const cJSON *e, bool with_top)
{
    const cJSON *tok = get(e, "token"), *lp = get(e, "logprob");
    int rc = buf_puts(out, "{\"token\":");
    rc |= put_str(out, cJSON_IsString(tok) ? tok->valuestring : "");
    rc |= buf_puts(out, ",\"logprob\":");
    rc |= put_number(out, cJSON_IsNumber(lp) ? lp->valuedouble : 0);
    rc |= buf_puts(out, ",\"bytes\":");
    rc |= put_bytes(out, get(e, "bytes"));
    if (with_top) {
        const cJSON *top = get(e, "top_logprobs");
        rc |= buf_puts(out, ",\"top_logprobs\":[");
        bool first = true;
        for (const cJSON *t = cJSON_IsArray(top) ? top->child : NULL; t; t = t->next) {
            if (!cJSON_IsObject(t))
                continue;
            if (!first)
                rc |= buf_append(out, ",", 1);
            rc |= put_logprob(out, t, false);
            first = false;
        }
        rc |= buf_append(out, "]", 1);
    }
    return rc | buf_append(out, "}", 1);
}

/* {"content":[...],"refusal":null} from a native logprobs array. */
static int put_logprobs(struct buf *out, const cJSON *arr)
{
    int rc = buf_puts(out, "{\"content\":[");
    bool first = true;
    for (const cJSON *e = arr->child; e; e = e->next) {
        if (!cJSON_IsObject(e))
            continue;
        if (!first)
            rc |= buf_append(out, ",", 1);
        rc |= put_logprob(out, e, true);
        first = false;
    }
    return rc | buf_puts(out, "],\"refusal\":null}");
}

static bool has_entries(const cJSON *arr)
{
    return cJSON_IsArray(arr) && arr->child;
}

/*
 * A native message's tool calls, checked before anything is written. Each
 * must be an object with function.name a string; returns the count, or -1
 * with *why set.
 */
static int count_tool_calls(const cJSON *tcs, const char **why)
{
    int n = 0;
    for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next, n++) {
        const cJSON *fn = get(tc, "function");
        if (!cJSON_IsObject(tc) || !cJSON_IsObject(fn)) {
            *why = "a tool call without a function object";
            return -1;
        }
        if (!cJSON_IsString(get(fn, "name"))) {
            *why = "a tool call without a function name";
            return -1;
        }
    }
    return n;
}

/*
 * Write the tool calls as OpenAI objects: {"index"?,"id","type","function":
 * {"name","arguments":"<JSON text>"}}, indexes from *next (dense, ours; Ollama's
 * function.index is ignored). Ollama's id is kept, else one is made.
 */
static int put_tool_calls(struct buf *out, const cJSON *tcs, bool with_index, unsigned *next)
{
    int rc = 0;
    bool first = true;
    for (const cJSON *tc = tcs->child; tc; tc = tc->next) {
        const cJSON *fn = get(tc, "function");
        const cJSON *id = get(tc, "id");
        const cJSON *args = get(fn, "arguments");
        if (!first)
            rc |= buf_append(out, ",", 1);
        first = false;
        if (with_index)
            rc |= buf_printf(out, "{\"index\":%u,\"id\":", (*next)++);
        else
            rc |= buf_puts(out, "{\"id\":");
        if (cJSON_IsString(id) && id->valuestring[0]) {
            rc |= put_str(out, id->valuestring);
        } else {
            char made[40];
            rand_id(made, sizeof made, "call_");
            rc |= put_str(out, made);
        }
        rc |= buf_puts(out, ",\"type\":\"function\",\"function\":{\"name\":");
        rc |= put_str(out, get(fn, "name")->valuestring);
        rc |= buf_puts(out, ",\"arguments\":");
        if (cJSON_IsString(args)) {
            rc |= put_str(out, args->valuestring);
        } else if (unset(args)) {
            rc |= buf_puts(out, "\"{}\"");
        } else {
            char *text = cJSON_PrintUnformatted(args);
            rc |= text ? put_str(out, text) : -1;
            if (text)
                cJSON_free(text);
        }
        rc |= buf_puts(out, "}}");
    }
    return rc;
}

/* The message of a native answer object: its content, thinking and tool
 * calls (each NULL when absent), or what is wrong with it. */
static const char *read_message(const cJSON *j, const cJSON **content, const cJSON **thinking,
                                const cJSON **tcs)
{
    const cJSON *msg = get(j, "message");
    const char *why = NULL;
    *content = msg ? get(msg, "content") : NULL;
    *thinking = msg ? get(msg, "thinking") : NULL;
    *tcs = msg ? get(msg, "tool_calls") : NULL;
    if ((!unset(msg) && !cJSON_IsObject(msg)) || (!unset(*content) && !cJSON_IsString(*content)) ||
        (!unset(*thinking) && !cJSON_IsString(*thinking)) || (!unset(*tcs) && !cJSON_IsArray(*tcs)))
        return "a malformed message";
    return count_tool_calls(*tcs, &why) < 0 ? why : NULL;
}

static const char *finish_reason(const cJSON *obj, bool tool_calls)
{
    const cJSON *dr = get(obj, "done_reason");
    if (cJSON_IsString(dr) && strcmp(dr->valuestring, "length") == 0)
        return "length";
    return tool_calls ? "tool_calls" : "stop";
}

static void backend_label(char *out, size_t size, const char *backend)
{
    if (backend && backend[0])
        snprintf(out, size, "Backend \"%.63s\"", backend);
    else
        snprintf(out, size, "The backend");
}

/* A short, printable excerpt of untrusted text for an error message: runs of
 * whitespace become one space, other bytes outside printable ASCII become
 * '?', and "..." marks a cut. size >= 8. */
static void excerpt(char *out, size_t size, const char *p, size_t len)
{
    size_t o = 0, i = 0;
    bool space = false;
    /* each step writes at most 2 bytes; keep 4 for "...\0" */
    for (; i < len && o + 6 <= size; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = o > 0;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = false;
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    while (i < len && is_ws(p[i]))
        i++;
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* The text under "error" in a native error object: a string, or
 * {"message": string} as a proxy in front of Ollama might send. */
static const char *error_text(const cJSON *e)
{
    if (cJSON_IsString(e))
        return e->valuestring;
    const cJSON *m = cJSON_IsObject(e) ? get(e, "message") : NULL;
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* err = 502 upstream_error, the message starting with the backend's name. */
static int upstream_fail(struct apierr *err, const char *backend, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int upstream_fail(struct apierr *err, const char *backend, const char *fmt, ...)
{
    char who[96], what[sizeof err->message];
    va_list ap;
    backend_label(who, sizeof who, backend);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return apierr_set(err, 502, APIERR_API, "upstream_error", NULL, "%s %s", who, what);
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                 */

int chat_stream_init(struct chat_stream *s, const char *client_model, bool include_usage,
                     const char *id, long created)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->head, SCRATCH_MAX);
    buf_init(&s->scratch, SCRATCH_MAX);
    s->include_usage = include_usage;
    int rc = buf_puts(&s->head, "{\"id\":");
    rc |= put_str(&s->head, id);
    rc |= buf_printf(&s->head,
                     ",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":", created);
    rc |= put_str(&s->head, client_model);
    rc |= buf_puts(&s->head, ",\"choices\":[");
    return rc ? -1 : 0;
}

void chat_stream_set_backend(struct chat_stream *s, const char *backend)
{
    snprintf(s->backend, sizeof s->backend, "%s", backend ? backend : "");
}

void chat_stream_free(struct chat_stream *s)
{
    buf_free(&s->head);
    buf_free(&s->scratch);
}

/* "data: " + prefix + '{"index":0,"delta":{' (+ the role on the first chunk). */
static int chunk_open(struct chat_stream *s, struct buf *out, bool *first_field)
{
    int rc = sse_begin(out);
    rc |= buf_append(out, s->head.p, s->head.len);
    rc |= buf_puts(out, "{\"index\":0,\"delta\":{");
    *first_field = true;
    if (!s->started) {
        rc |= buf_puts(out, "\"role\":\"assistant\"");
        *first_field = false;
        s->started = true;
    }
    return rc;
}

static int field(struct buf *out, bool *first_field, const char *name)
{
    int rc = *first_field ? 0 : buf_append(out, ",", 1);
    *first_field = false;
    return rc | buf_puts(out, name);
}

/* '}' closing the delta, logprobs if any, "finish_reason":null, the frame end. */
static int chunk_close(struct buf *out, const cJSON *logprobs)
{
    int rc = buf_append(out, "}", 1);
    if (logprobs) {
        rc |= buf_puts(out, ",\"logprobs\":");
        rc |= put_logprobs(out, logprobs);
    }
    rc |= buf_puts(out, ",\"finish_reason\":null}]}");
    return rc | sse_end(out);
}

static int stream_fail(struct chat_stream *s)
{
    s->failed = true;
    return CHAT_FAIL;
}

/*
 * The fast path for the line that makes up almost every stream:
 *   {"model":"…","created_at":"…","message":{"role":"assistant","content":"…"},"done":false}
 * (content and/or thinking). It validates the line as it scans and copies the
 * content's JSON string literal as it stands instead of parsing the line into
 * a cJSON tree and escaping the text again. It only takes lines whose output
 * it can make byte for byte the same as the general path's: any other key, a
 * duplicate key, done:true, or an escape that buf_json_str would write
 * differently (Go's \u003c for '<', say) sends the line to the general path.
 */
static bool fast_path_on = true;

void chat_set_fast_path(bool on)
{
    fast_path_on = on;
}

struct span {
    const char *p; /* the literal, quotes included */
    size_t len;
};

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* A JSON string literal at p: its span, or NULL. With `plain`, only escapes
 * that buf_json_str writes the same way are accepted (and no \u0000). */
static const char *scan_string(const char *p, const char *end, bool plain, struct span *sp)
{
    static const char hex[] = "0123456789abcdef";
    const char *start = p;
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            sp->p = start;
            sp->len = (size_t)(p + 1 - start);
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c != '\\')
            continue;
        if (++p >= end)
            return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case 'n':
        case 'r':
        case 't':
            break;
        case 'u': {
            if (end - p < 5)
                return NULL;
            /* Only \u00XX for a control character other than \n \r \t, in
             * lower-case hex, is written back identically. Elsewhere any
             * escape but a surrogate (which cJSON may refuse) will do. */
            if (!plain) {
                unsigned v = 0;
                for (int k = 1; k <= 4; k++) {
                    const char *h = strchr(hex, p[k] | 0x20);
                    if (!p[k] || !h || !*h)
                        return NULL;
                    v = v * 16 + (unsigned)(h - hex);
                }
                if (v >= 0xd800 && v <= 0xdfff)
                    return NULL;
                p += 4;
                break;
            }
            if (p[1] != '0' || p[2] != '0' || (p[3] != '0' && p[3] != '1'))
                return NULL;
            const char *h = strchr(hex, p[4]);
            if (!h || !*h)
                return NULL;
            int v = (p[3] - '0') * 16 + (int)(h - hex);
            if (v == 0 || v == '\n' || v == '\r' || v == '\t')
                return NULL;
            p += 4;
            break;
        }
        default:
            if (plain)
                return NULL;
            if (!*p || !strchr("/bf", *p)) /* strchr finds the NUL too */
                return NULL;
        }
    }
    return NULL;
}

/*
 * The members of the JSON object at p, each handed to fn with p at its value;
 * fn returns the end of the value it took, or NULL to give up. Returns the
 * end of the object, or NULL.
 */
typedef const char *(*member_fn)(void *ud, const struct span *key, const char *p, const char *end);

static const char *scan_object(const char *p, const char *end, member_fn fn, void *ud)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        struct span key;
        p = scan_string(p, end, false, &key);
        if (!p)
            return NULL;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = fn(ud, &key, skip_ws(p + 1, end), end);
        if (!p)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' ? p + 1 : NULL;
    }
}

static bool key_is(const struct span *key, const char *quoted)
{
    size_t n = strlen(quoted);
    return key->len == n && memcmp(key->p, quoted, n) == 0;
}

/* message: {"role":"assistant","content":"…","thinking":"…"}, nothing else. */
struct message_scan {
    struct span *content, *thinking;
    bool role;
};

static const char *message_member(void *ud, const struct span *key, const char *p, const char *end)
{
    struct message_scan *m = ud;
    struct span val, *slot;
    if (key_is(key, "\"role\"")) {
        if (m->role)
            return NULL;
        m->role = true;
        return scan_string(p, end, false, &val);
    }
    if (key_is(key, "\"content\""))
        slot = m->content;
    else if (key_is(key, "\"thinking\""))
        slot = m->thinking;
    else
        return NULL; /* tool_calls, images, … */
    if (slot->p)
        return NULL;
    return scan_string(p, end, true, slot);
}

static const char *scan_message(const char *p, const char *end, struct span *content,
                                struct span *thinking)
{
    struct message_scan m = {.content = content, .thinking = thinking};
    return scan_object(p, end, message_member, &m);
}

/* A stream line's members: model, created_at, message, done:false; each once. */
struct line_scan {
    struct span content, thinking;
    bool done, msg, model, created;
};

static const char *line_member(void *ud, const struct span *key, const char *p, const char *end)
{
    struct line_scan *l = ud;
    struct span ignored;
    bool *seen = key_is(key, "\"model\"")        ? &l->model
                 : key_is(key, "\"created_at\"") ? &l->created
                 : key_is(key, "\"done\"")       ? &l->done
                 : key_is(key, "\"message\"")    ? &l->msg
                                                 : NULL;
    if (!seen || *seen)
        return NULL;
    *seen = true;
    if (seen == &l->done)
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    if (seen == &l->msg)
        return scan_message(p, end, &l->content, &l->thinking);
    return scan_string(p, end, false, &ignored);
}

/* 1: the line was translated into out; 0: use the general path. */
static int fast_line(struct chat_stream *s, const char *line, size_t len, struct buf *out)
{
    const char *end = line + len;
    struct line_scan l = {0};
    const char *p = scan_object(line, end, line_member, &l);
    /* {} is the general path's to judge */
    if (!p || skip_ws(p, end) != end || !(l.done || l.msg || l.model || l.created))
        return 0;
    struct span content = l.content, thinking = l.thinking;

    size_t start = out->len;
    bool saved_started = s->started;
    bool has_text = content.len > 2, ff;
    int rc = 0;
    if (thinking.len > 2) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"reasoning_content\":");
        rc |= buf_append(out, thinking.p, thinking.len);
        rc |= field(out, &ff, "\"reasoning\":");
        rc |= buf_append(out, thinking.p, thinking.len);
        rc |= chunk_close(out, NULL);
    }
    if (has_text) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"content\":");
        rc |= buf_append(out, content.p, content.len);
        rc |= chunk_close(out, NULL);
    }
    if (rc) {
        /* let the general path report it the usual way */
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        s->started = saved_started;
        return 0;
    }
    return 1;
}

int chat_stream_line(struct chat_stream *s, const char *line, size_t len, struct buf *out,
                     struct apierr *err)
{
    if (fast_path_on && !s->failed && !s->done && fast_line(s, line, len, out))
        return CHAT_MORE;
    if (s->failed) {
        upstream_fail(err, s->backend, "stream had already failed.");
        return CHAT_FAIL;
    }
    if (s->done)
        return CHAT_DONE;

    size_t at, start = out->len;
    bool saved_started = s->started;
    unsigned saved_calls = s->tool_calls;
    char what[128];
    const char *why = NULL;
    int ret = CHAT_MORE;

    cJSON *j = parse_json(&s->scratch, line, len, &at);
    if (!j || !cJSON_IsObject(j)) {
        excerpt(what, sizeof what, line, len < 80 ? len : 80);
        upstream_fail(err, s->backend,
                      j ? "sent a stream line that is not a JSON object: %s"
                        : "sent a stream line that is not valid JSON: %s",
                      what);
        cJSON_Delete(j);
        return stream_fail(s);
    }
    const cJSON *e = get(j, "error");
    if (!unset(e)) {
        const char *text = error_text(e);
        upstream_fail(err, s->backend, "failed while generating: %.250s",
                      text ? text : "(no message)");
        goto out_fail;
    }
    const cJSON *content, *thinking, *tcs;
    why = read_message(j, &content, &thinking, &tcs);
    if (why) {
        upstream_fail(err, s->backend, "sent a stream line with %s.", why);
        goto out_fail;
    }

    const cJSON *logprobs = get(j, "logprobs");
    if (!has_entries(logprobs))
        logprobs = NULL;
    bool has_text = cJSON_IsString(content) && content->valuestring[0];
    bool has_calls = has_entries(tcs);
    bool is_done = cJSON_IsTrue(get(j, "done"));
    bool ff;
    int rc = 0;

    /* Thinking first, in its own chunk: clients that read either field see
     * reasoning and answer separately, as from Ollama's own /v1 since 0.17.8. */
    if (cJSON_IsString(thinking) && thinking->valuestring[0]) {
        rc |= chunk_open(s, out, &ff);
        rc |= field(out, &ff, "\"reasoning_content\":");
        rc |= put_str(out, thinking->valuestring);
        rc |= field(out, &ff, "\"reasoning\":");
        rc |= put_str(out, thinking->valuestring);
        rc |= chunk_close(out, has_text || has_calls ? NULL : logprobs);
        if (!has_text && !has_calls)
            logprobs = NULL;
    }
    if (has_text || has_calls || logprobs) {
        rc |= chunk_open(s, out, &ff);
        if (has_text || !has_calls) {
            rc |= field(out, &ff, "\"content\":");
            rc |= put_str(out, cJSON_IsString(content) ? content->valuestring : "");
        }
        if (has_calls) {
            rc |= field(out, &ff, "\"tool_calls\":[");
            rc |= put_tool_calls(out, tcs, true, &s->tool_calls);
            rc |= buf_append(out, "]", 1);
        }
        rc |= chunk_close(out, logprobs);
    }
    if (is_done) {
        s->prompt_tokens = count_of(j, "prompt_eval_count");
        s->completion_tokens = count_of(j, "eval_count");
        if (!s->started) {
            /* an empty answer still opens with the role (Node's helper needs it) */
            rc |= chunk_open(s, out, &ff);
            rc |= field(out, &ff, "\"content\":\"\"");
            rc |= chunk_close(out, NULL);
        }
        rc |= sse_begin(out);
        rc |= buf_append(out, s->head.p, s->head.len);
        rc |= buf_printf(out, "{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}",
                         finish_reason(j, s->tool_calls > 0));
        rc |= sse_end(out);
        if (s->include_usage) {
            rc |= sse_begin(out);
            rc |= buf_append(out, s->head.p, s->head.len);
            rc |= buf_printf(out,
                             "],\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                             "\"total_tokens\":%ld}}",
                             s->prompt_tokens, s->completion_tokens,
                             s->prompt_tokens + s->completion_tokens);
            rc |= sse_end(out);
        }
        rc |= sse_done(out);
        ret = CHAT_DONE;
    }
    if (rc) {
        apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                   "The gateway could not buffer the streamed answer (out of memory or over the "
                   "output limit).");
        goto out_fail;
    }
    if (ret == CHAT_DONE)
        s->done = true;
    cJSON_Delete(j);
    return ret;

out_fail:
    out->len = start;
    if (out->p)
        out->p[start] = '\0';
    s->started = saved_started;
    s->tool_calls = saved_calls;
    cJSON_Delete(j);
    return stream_fail(s);
}

int chat_stream_eof(struct chat_stream *s, struct apierr *err)
{
    if (s->done)
        return CHAT_DONE;
    if (!s->failed)
        upstream_fail(err, s->backend, "closed the stream before the answer was complete.");
    else
        upstream_fail(err, s->backend, "stream had already failed.");
    s->failed = true;
    return CHAT_FAIL;
}

/* ------------------------------------------------------------------------ */
/* Non-streamed answers                                                      */

/* A string of the answer: a JSON literal to copy as it stands (from the fast
 * path), or text to escape. */
struct jtext {
    const char *lit; /* quotes included; NULL = use text */
    size_t litlen;
    const char *text;
};

static int put_jtext(struct buf *out, const struct jtext *t)
{
    return t->lit ? buf_append(out, t->lit, t->litlen) : put_str(out, t->text);
}

static bool jtext_empty(const struct jtext *t)
{
    return t->lit ? t->litlen <= 2 : !t->text || !t->text[0];
}

/* What a chat.completion object is made of. */
struct completion {
    struct jtext content, thinking;
    const cJSON *tcs;      /* tool calls (general path only), or NULL */
    const cJSON *logprobs; /* (general path only), or NULL */
    const char *finish_reason;
    long pt, ct;
};

static int put_completion(struct buf *out, const struct completion *c, const char *client_model,
                          const char *id, long created)
{
    bool has_calls = has_entries(c->tcs);
    unsigned n = 0;
    int rc = buf_puts(out, "{\"id\":");
    rc |= put_str(out, id);
    rc |= buf_puts(out, ",\"object\":\"chat.completion\",\"created\":");
    rc |= buf_put_int(out, created);
    rc |= buf_puts(out, ",\"model\":");
    rc |= put_str(out, client_model);
    rc |= buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        "\"content\":");
    if (jtext_empty(&c->content) && has_calls)
        rc |= buf_puts(out, "null");
    else
        rc |= put_jtext(out, &c->content);
    if (!jtext_empty(&c->thinking)) {
        rc |= buf_puts(out, ",\"reasoning_content\":");
        rc |= put_jtext(out, &c->thinking);
        rc |= buf_puts(out, ",\"reasoning\":");
        rc |= put_jtext(out, &c->thinking);
    }
    if (has_calls) {
        rc |= buf_puts(out, ",\"tool_calls\":[");
        rc |= put_tool_calls(out, c->tcs, false, &n);
        rc |= buf_append(out, "]", 1);
    }
    rc |= buf_puts(out, "},\"logprobs\":");
    rc |= has_entries(c->logprobs) ? put_logprobs(out, c->logprobs) : buf_puts(out, "null");
    rc |= buf_puts(out, ",\"finish_reason\":\"");
    rc |= buf_puts(out, c->finish_reason);
    rc |= buf_puts(out, "\"}],\"usage\":{\"prompt_tokens\":");
    rc |= buf_put_int(out, c->pt);
    rc |= buf_puts(out, ",\"completion_tokens\":");
    rc |= buf_put_int(out, c->ct);
    rc |= buf_puts(out, ",\"total_tokens\":");
    rc |= buf_put_int(out, c->pt + c->ct);
    rc |= buf_puts(out, "}}");
    return rc;
}

/* A JSON number made of digits only (what Ollama writes for counts and
 * durations): its value, or -1 (anything else, or 15 digits and more, which
 * count_of() would not take either). */
static const char *scan_count(const char *p, const char *end, long *v)
{
    const char *start = p;
    long x = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - start < 15)
        x = x * 10 + (*p++ - '0');
    if (p == start ||
        (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))))
        return NULL;
    *v = x;
    return p;
}

/*
 * The fast path for the answer of almost every non-streamed request:
 *   {"model":"…","created_at":"…","message":{"role":"assistant","content":"…"},
 *    "done":true,"done_reason":"stop","total_duration":N,…,"eval_count":N}
 * The same rules as fast_line(): the content (and thinking) literals are
 * copied as they stand; anything else (another key, a duplicate, tool calls,
 * logprobs, an escape written differently, a number that is not plain digits)
 * leaves it to the general path, which writes the same bytes. 1: c is filled.
 */
/* A non-streamed answer's members, each at most once. */
struct answer_scan {
    struct completion *c;
    struct span content, thinking, reason;
    unsigned seen; /* 1 << index in answer_keys */
};

static const char *const answer_keys[] = {
    "\"model\"",         "\"created_at\"",        "\"message\"",
    "\"done\"",          "\"done_reason\"",       "\"total_duration\"",
    "\"load_duration\"", "\"prompt_eval_count\"", "\"prompt_eval_duration\"",
    "\"eval_count\"",    "\"eval_duration\"",
};
enum { A_MODEL, A_CREATED, A_MESSAGE, A_DONE, A_REASON, A_COUNTS };

static const char *answer_member(void *ud, const struct span *key, const char *p, const char *end)
{
    struct answer_scan *a = ud;
    struct span ignored;
    long v = 0;
    size_t k = 0;
    while (k < sizeof answer_keys / sizeof *answer_keys && !key_is(key, answer_keys[k]))
        k++;
    if (k == sizeof answer_keys / sizeof *answer_keys || (a->seen & (1u << k)))
        return NULL;
    a->seen |= 1u << k;
    switch (k) {
    case A_MODEL:
    case A_CREATED:
        return scan_string(p, end, false, &ignored);
    case A_MESSAGE:
        return scan_message(p, end, &a->content, &a->thinking);
    case A_DONE:
        if (end - p >= 4 && memcmp(p, "true", 4) == 0)
            return p + 4;
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case A_REASON:
        p = scan_string(p, end, false, &a->reason);
        return p && !memchr(a->reason.p, '\\', a->reason.len) ? p : NULL;
    }
    p = scan_count(p, end, &v);
    if (key_is(key, "\"prompt_eval_count\""))
        a->c->pt = v;
    else if (key_is(key, "\"eval_count\""))
        a->c->ct = v;
    return p;
}

static int fast_complete(const char *body, size_t len, struct completion *c)
{
    const char *end = body + len;
    struct answer_scan a = {.c = c};
    const char *p = scan_object(body, end, answer_member, &a);
    if (!p || skip_ws(p, end) != end || !(a.seen & (1u << A_MESSAGE)))
        return 0;
    if (a.content.p)
        c->content = (struct jtext){.lit = a.content.p, .litlen = a.content.len};
    else
        c->content = (struct jtext){.text = ""};
    if (a.thinking.p)
        c->thinking = (struct jtext){.lit = a.thinking.p, .litlen = a.thinking.len};
    c->finish_reason =
        a.reason.len == 8 && memcmp(a.reason.p, "\"length\"", 8) == 0 ? "length" : "stop";
    return 1;
}

int chat_complete(const char *body, size_t len, const char *client_model, const char *id,
                  long created, const char *backend_name, struct buf *out, long *prompt_tokens,
                  long *completion_tokens, struct apierr *err)
{
    struct completion c = {0};
    size_t at, start = out->len;
    const char *why = NULL;
    char what[128];
    cJSON *j = NULL;

    if (!fast_path_on || !fast_complete(body, len, &c)) {
        struct buf scratch;
        memset(&c, 0, sizeof c);
        buf_init(&scratch, SCRATCH_MAX);
        j = parse_json(&scratch, body, len, &at);
        buf_free(&scratch);
        if (!j || !cJSON_IsObject(j)) {
            excerpt(what, sizeof what, body, len < 80 ? len : 80);
            upstream_fail(err, backend_name,
                          j ? "answered with something that is not a JSON object: %s"
                            : "answered with invalid JSON: %s",
                          what);
            cJSON_Delete(j);
            return -1;
        }
        const cJSON *e = get(j, "error");
        if (!unset(e)) {
            const char *text = error_text(e);
            upstream_fail(err, backend_name, "failed: %.250s", text ? text : "(no message)");
            cJSON_Delete(j);
            return -1;
        }
        const cJSON *content, *thinking;
        why = read_message(j, &content, &thinking, &c.tcs);
        if (why) {
            upstream_fail(err, backend_name, "answered with %s.", why);
            cJSON_Delete(j);
            return -1;
        }
        c.content.text = cJSON_IsString(content) ? content->valuestring : "";
        c.thinking.text = cJSON_IsString(thinking) ? thinking->valuestring : NULL;
        c.logprobs = get(j, "logprobs");
        c.finish_reason = finish_reason(j, has_entries(c.tcs));
        c.pt = count_of(j, "prompt_eval_count");
        c.ct = count_of(j, "eval_count");
    }
    int rc = put_completion(out, &c, client_model, id, created);
    cJSON_Delete(j);
    if (rc) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        apierr_set(err, 500, APIERR_API, "internal_error", NULL,
                   "The gateway could not buffer the answer (out of memory or over the output "
                   "limit).");
        return -1;
    }
    if (prompt_tokens)
        *prompt_tokens = c.pt;
    if (completion_tokens)
        *completion_tokens = c.ct;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Upstream errors                                                           */

static bool has(const char *text, const char *needle)
{
    return text && strcasestr(text, needle) != NULL;
}

void chat_upstream_error(int status, const char *body, size_t len, const char *backend_name,
                         struct apierr *err)
{
    char who[96], reason[200];
    const char *text = NULL; /* Ollama's own error message, when the body is {"error":...} */
    struct buf scratch;
    size_t at;

    backend_label(who, sizeof who, backend_name);
    buf_init(&scratch, SCRATCH_MAX);
    cJSON *j = body && len ? parse_json(&scratch, body, len, &at) : NULL;
    buf_free(&scratch);
    if (cJSON_IsObject(j))
        text = error_text(get(j, "error"));
    /* Only Ollama's own message is quoted: anything else (an HTML error page
     * from a proxy in front of the backend, say) is described, never relayed. */
    if (text)
        excerpt(reason, sizeof reason, text, strlen(text));
    else if (body && len)
        snprintf(reason, sizeof reason, "a %zu-byte answer that is not Ollama's JSON error", len);
    else
        snprintf(reason, sizeof reason, "(empty body)");

    if (status == 400) {
        const char *param = NULL;
        if (has(text, "does not support tools"))
            param = "tools";
        else if (has(text, "does not support thinking") || has(text, "invalid think value"))
            param = "reasoning_effort";
        else if (has(text, "does not support"))
            param = "model";
        else if (has(text, "top_logprobs"))
            param = "top_logprobs";
        else if (has(text, "invalid model name"))
            param = "model";
        apierr_set(err, 400, APIERR_INVALID, NULL, param, "%s rejected the request: %s", who,
                   reason);
    } else if (status == 404 && has(text, "not found")) {
        apierr_set(err, 404, APIERR_INVALID, "model_not_found", "model",
                   "%s does not have this model: %s", who, reason);
    } else if (status == 404) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s answered HTTP 404 (%s); check the backend's URL.", who, reason);
        err->no_retry = true;
    } else if (status == 500 && (has(text, "invalid format") || has(text, "schema"))) {
        apierr_set(err, 400, APIERR_INVALID, NULL, "response_format",
                   "%s could not use the response_format: %s", who, reason);
    } else if (status == 500 && has(text, "does not support")) {
        apierr_set(err, 400, APIERR_INVALID, NULL, "model", "%s rejected the request: %s", who,
                   reason);
    } else if (status == 500 &&
               ((has(text, "option \"") && has(text, "must be of type")) ||
                has(text, "more system memory") || has(text, "unable to allocate"))) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s failed and retrying will not help: %s", who, reason);
        err->no_retry = true;
    } else if (status == 503 || status == 429) {
        apierr_set(err, 503, APIERR_API, "backend_unavailable", NULL, "%s is busy (HTTP %d): %s",
                   who, status, reason);
    } else if (status == 401 || status == 403) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s refused the gateway's request (HTTP %d: %s); check the backend's "
                   "configured headers, and that Ollama accepts the gateway's Host and Origin.",
                   who, status, reason);
        err->no_retry = true;
    } else if (status >= 400 && status < 500 && status != 408 && status != 499) {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL,
                   "%s refused the gateway's request (HTTP %d): %s", who, status, reason);
        err->no_retry = true;
    } else {
        apierr_set(err, 502, APIERR_API, "upstream_error", NULL, "%s failed (HTTP %d): %s", who,
                   status, reason);
    }
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------------ */
