#include "chat_request.h"

#include "dataurl.h"
#include "effort.h"
#include "field.h"
#include "json.h"
#include "ollama.h"
#include "sampling.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Ceiling for the parse copy; the real bound is the body limit the server
 * enforces before calling us. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* How many earlier assistant tool calls a tool message's name is looked up in. */
#define TOOL_NAME_MEMORY 64

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
            return field_bad_type(err, param, "an object", p);
        const cJSON *type = json_get(p, "type");
        if (!cJSON_IsString(type)) {
            snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
            return json_unset(type) ? field_missing(err, param)
                                    : field_bad_type(err, param, "a string", type);
        }
        const char *t = type->valuestring;
        if (strcmp(t, "text") == 0 || strcmp(t, "refusal") == 0) {
            const cJSON *text = json_get(p, t);
            snprintf(param, sizeof param, "messages[%d].content[%d].%s", i, j, t);
            if (!cJSON_IsString(text))
                return json_unset(text) ? field_missing(err, param)
                                        : field_bad_type(err, param, "a string", text);
            if (!ntext)
                first = text->valuestring;
            ntext++;
            total += strlen(text->valuestring) + 1;
        } else if (strcmp(t, "image_url") == 0) {
            const cJSON *iu = json_get(p, "image_url");
            const cJSON *url = cJSON_IsObject(iu) ? json_get(iu, "url") : iu;
            snprintf(param, sizeof param,
                     cJSON_IsObject(iu) ? "messages[%d].content[%d].image_url.url"
                                        : "messages[%d].content[%d].image_url",
                     i, j);
            if (!cJSON_IsString(url))
                return json_unset(url)
                           ? field_missing(err, param)
                           : field_bad_type(err, param, "a string or {\"url\": string}", url);
            const char *payload = dataurl_image(url->valuestring, param, err);
            if (!payload)
                return -1;
            if (!images) {
                images = cJSON_CreateArray();
                if (!json_add(nm, "images", images))
                    return field_oom(err);
            }
            if (!json_push(images, json_str_ref(payload)))
                return field_oom(err);
        } else {
            snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
            return apierr_invalid(err, param,
                                  "Unsupported content part type '%.40s': this gateway "
                                  "accepts 'text' and 'image_url' (base64 data URLs).",
                                  t);
        }
    }
    if (ntext <= 1)
        return json_add(nm, "content", json_str_ref(first ? first : "")) ? 0 : field_oom(err);

    /* Several text parts: one string, parts separated by "\n". */
    struct buf joined;
    buf_init(&joined, total);
    int rc = buf_reserve(&joined, total);
    size_t k = 0;
    for (const cJSON *p = parts->child; p && rc == 0; p = p->next) {
        const char *t = json_get(p, "type")->valuestring;
        if (strcmp(t, "image_url") == 0)
            continue;
        const char *s = json_get(p, t)->valuestring;
        if (k++)
            rc |= buf_append(&joined, "\n", 1);
        rc |= buf_puts(&joined, s);
    }
    if (rc == 0)
        rc = json_add(nm, "content", cJSON_CreateString(joined.p)) ? 0 : -1;
    buf_free(&joined);
    return rc == 0 ? 0 : field_oom(err);
}

static int xlate_content(const cJSON *m, int i, bool may_be_null, cJSON *nm, struct apierr *err)
{
    char param[96];
    const cJSON *c = json_get(m, "content");
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (json_unset(c)) {
        if (!may_be_null)
            return apierr_invalid(err, param,
                                  "Missing content: '%s' must be a string or an array of "
                                  "content parts (null is allowed only on an assistant "
                                  "message with tool_calls).",
                                  param);
        return json_add(nm, "content", json_str_ref("")) ? 0 : field_oom(err);
    }
    if (cJSON_IsString(c))
        return json_add(nm, "content", json_str_ref(c->valuestring)) ? 0 : field_oom(err);
    if (cJSON_IsArray(c))
        return xlate_parts(c, i, nm, err);
    return field_bad_type(err, param, "a string or an array of content parts", c);
}

static int xlate_tool_calls(const cJSON *tcs, int i, cJSON *nm, struct tool_names *names,
                            struct buf *scratch, struct apierr *err)
{
    char param[96];
    cJSON *out = cJSON_CreateArray();
    if (!json_add(nm, "tool_calls", out))
        return field_oom(err);
    int j = 0;
    for (const cJSON *tc = tcs->child; tc; tc = tc->next, j++) {
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d]", i, j);
        if (!cJSON_IsObject(tc))
            return field_bad_type(err, param, "an object", tc);
        const cJSON *type = json_get(tc, "type");
        if (!json_unset(type) &&
            !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
            snprintf(param, sizeof param, "messages[%d].tool_calls[%d].type", i, j);
            return apierr_invalid(err, param, "Only 'function' tool calls are supported.");
        }
        const cJSON *id = json_get(tc, "id");
        if (!json_unset(id) && !cJSON_IsString(id)) {
            snprintf(param, sizeof param, "messages[%d].tool_calls[%d].id", i, j);
            return field_bad_type(err, param, "a string", id);
        }
        const cJSON *fn = json_get(tc, "function");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function", i, j);
        if (!cJSON_IsObject(fn))
            return json_unset(fn) ? field_missing(err, param)
                                  : field_bad_type(err, param, "an object", fn);
        const cJSON *name = json_get(fn, "name");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function.name", i, j);
        if (!cJSON_IsString(name))
            return json_unset(name) ? field_missing(err, param)
                                    : field_bad_type(err, param, "a string", name);
        if (!name->valuestring[0])
            return apierr_invalid(err, param, "'%s' must not be empty.", param);

        const cJSON *args = json_get(fn, "arguments");
        snprintf(param, sizeof param, "messages[%d].tool_calls[%d].function.arguments", i, j);
        cJSON *nargs;
        if (cJSON_IsString(args)) {
            size_t at;
            const char *s = args->valuestring;
            nargs = json_parse(scratch, s, strlen(s), &at);
            if (!nargs && at == JSON_NOMEM)
                return field_oom(err);
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
            nargs = json_ref(args); /* lenient: some clients send the object itself */
        } else {
            return json_unset(args)
                       ? field_missing(err, param)
                       : field_bad_type(err, param, "a string holding a JSON object", args);
        }

        cJSON *ntc = cJSON_CreateObject(), *nfn = NULL;
        if (!json_push(out, ntc) ||
            (cJSON_IsString(id) && !json_add(ntc, "id", json_str_ref(id->valuestring))) ||
            !json_add(ntc, "function", nfn = cJSON_CreateObject()) ||
            !json_add(nfn, "name", json_str_ref(name->valuestring))) {
            cJSON_Delete(nargs);
            return field_oom(err);
        }
        if (!json_add(nfn, "arguments", nargs))
            return field_oom(err);
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
        return field_bad_type(err, param, "an object", m);

    const cJSON *role = json_get(m, "role");
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!cJSON_IsString(role))
        return json_unset(role) ? field_missing(err, param)
                                : field_bad_type(err, param, "a string", role);
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
    if (!json_push(out, nm) || !json_add(nm, "role", json_str_ref(nrole)))
        return field_oom(err);

    bool assistant = nrole[0] == 'a';
    const cJSON *tcs = assistant ? json_get(m, "tool_calls") : NULL;
    if (!json_unset(tcs) && !cJSON_IsArray(tcs)) {
        snprintf(param, sizeof param, "messages[%d].tool_calls", i);
        return field_bad_type(err, param, "an array", tcs);
    }
    bool has_calls = cJSON_IsArray(tcs) && tcs->child;
    if (xlate_content(m, i, has_calls, nm, err) < 0)
        return -1;

    if (assistant) {
        const cJSON *th = json_get(m, "reasoning_content");
        if (!cJSON_IsString(th) || !th->valuestring[0])
            th = json_get(m, "reasoning");
        if (cJSON_IsString(th) && th->valuestring[0] &&
            !json_add(nm, "thinking", json_str_ref(th->valuestring)))
            return field_oom(err);
        if (has_calls && xlate_tool_calls(tcs, i, nm, names, scratch, err) < 0)
            return -1;
    }

    if (nrole[0] == 't') {
        const cJSON *id = json_get(m, "tool_call_id");
        const cJSON *name = json_get(m, "name");
        if (!json_unset(id) && !cJSON_IsString(id)) {
            snprintf(param, sizeof param, "messages[%d].tool_call_id", i);
            return field_bad_type(err, param, "a string", id);
        }
        if (!json_unset(name) && !cJSON_IsString(name)) {
            snprintf(param, sizeof param, "messages[%d].name", i);
            return field_bad_type(err, param, "a string", name);
        }
        const char *tool = cJSON_IsString(name) && name->valuestring[0] ? name->valuestring : NULL;
        if (cJSON_IsString(id)) {
            if (!json_add(nm, "tool_call_id", json_str_ref(id->valuestring)))
                return field_oom(err);
            if (!tool)
                tool = tool_names_find(names, id->valuestring);
        }
        if (tool && !json_add(nm, "tool_name", json_str_ref(tool)))
            return field_oom(err);
    }
    return 0;
}

static int xlate_messages(const cJSON *msgs, cJSON *native, struct buf *scratch, struct apierr *err)
{
    if (json_unset(msgs))
        return field_missing(err, "messages");
    if (!cJSON_IsArray(msgs))
        return field_bad_type(err, "messages", "an array", msgs);
    if (!msgs->child)
        return apierr_invalid(err, "messages", "'messages' must contain at least one message.");
    cJSON *out = cJSON_CreateArray();
    if (!json_add(native, "messages", out))
        return field_oom(err);
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
        return field_bad_type(err, param, "an object", t);
    const cJSON *type = json_get(t, "type");
    if (!json_unset(type) &&
        !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
        snprintf(param, sizeof param, "tools[%d].type", k);
        return apierr_invalid(err, param, "Only tools of type 'function' are supported.");
    }
    const cJSON *fn = json_get(t, "function");
    snprintf(param, sizeof param, "tools[%d].function", k);
    if (!cJSON_IsObject(fn))
        return json_unset(fn) ? field_missing(err, param)
                              : field_bad_type(err, param, "an object", fn);
    const cJSON *name = json_get(fn, "name");
    snprintf(param, sizeof param, "tools[%d].function.name", k);
    if (!cJSON_IsString(name))
        return json_unset(name) ? field_missing(err, param)
                                : field_bad_type(err, param, "a string", name);
    if (!name->valuestring[0])
        return apierr_invalid(err, param, "'%s' must not be empty.", param);
    const cJSON *desc = json_get(fn, "description");
    if (!json_unset(desc) && !cJSON_IsString(desc)) {
        snprintf(param, sizeof param, "tools[%d].function.description", k);
        return field_bad_type(err, param, "a string", desc);
    }
    const cJSON *params = json_get(fn, "parameters");
    if (!json_unset(params) && !cJSON_IsObject(params)) {
        snprintf(param, sizeof param, "tools[%d].function.parameters", k);
        return field_bad_type(err, param, "an object (a JSON Schema)", params);
    }
    return 0;
}

static const char *tool_name(const cJSON *t)
{
    return json_get(json_get(t, "function"), "name")->valuestring;
}

/* The name in a {type:"function", function:{name}} object, or NULL with err set. */
static const char *choice_name(const cJSON *c, const char *param, struct apierr *err)
{
    char p[96];
    const cJSON *type = json_get(c, "type");
    if (!json_unset(type) &&
        !(cJSON_IsString(type) && strcmp(type->valuestring, "function") == 0)) {
        snprintf(p, sizeof p, "%s.type", param);
        apierr_invalid(err, p, "Only 'function' tool choices are supported.");
        return NULL;
    }
    const cJSON *fn = json_get(c, "function");
    snprintf(p, sizeof p, "%s.function", param);
    if (!cJSON_IsObject(fn)) {
        json_unset(fn) ? field_missing(err, p) : field_bad_type(err, p, "an object", fn);
        return NULL;
    }
    const cJSON *name = json_get(fn, "name");
    snprintf(p, sizeof p, "%s.function.name", param);
    if (!cJSON_IsString(name)) {
        json_unset(name) ? field_missing(err, p) : field_bad_type(err, p, "a string", name);
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
    if (json_unset(choice))
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
        return field_bad_type(err, "tool_choice", "a string or an object", choice);
    if (!tools)
        return apierr_invalid(err, "tool_choice",
                              "'tool_choice' is only allowed when 'tools' are specified.");

    const cJSON *type = json_get(choice, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "allowed_tools") == 0) {
        const cJSON *at = json_get(choice, "allowed_tools");
        if (!cJSON_IsObject(at))
            return json_unset(at)
                       ? field_missing(err, "tool_choice.allowed_tools")
                       : field_bad_type(err, "tool_choice.allowed_tools", "an object", at);
        const cJSON *mode = json_get(at, "mode");
        if (!json_unset(mode) &&
            !(cJSON_IsString(mode) && (strcmp(mode->valuestring, "auto") == 0 ||
                                       strcmp(mode->valuestring, "required") == 0)))
            return apierr_invalid(err, "tool_choice.allowed_tools.mode",
                                  "Invalid value for 'tool_choice.allowed_tools.mode': expected "
                                  "'auto' or 'required'.");
        const cJSON *list = json_get(at, "tools");
        if (!cJSON_IsArray(list))
            return json_unset(list)
                       ? field_missing(err, "tool_choice.allowed_tools.tools")
                       : field_bad_type(err, "tool_choice.allowed_tools.tools", "an array", list);
        int k = 0;
        for (const cJSON *t = list->child; t; t = t->next, k++) {
            char param[96];
            snprintf(param, sizeof param, "tool_choice.allowed_tools.tools[%d]", k);
            if (!cJSON_IsObject(t))
                return field_bad_type(err, param, "an object", t);
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
        if (strcmp(json_get(json_get(t, "function"), "name")->valuestring, name) == 0)
            return true;
    return false;
}

static int xlate_tools(const cJSON *root, cJSON *native, bool *has_tools, struct apierr *err)
{
    const cJSON *tools = json_get(root, "tools");
    *has_tools = false;
    if (!json_unset(tools) && !cJSON_IsArray(tools))
        return field_bad_type(err, "tools", "an array", tools);
    if (json_unset(tools) || !tools->child)
        tools = NULL;
    int k = 0;
    for (const cJSON *t = tools ? tools->child : NULL; t; t = t->next, k++)
        if (check_tool(t, k, err) < 0)
            return -1;

    bool none;
    const char *only;
    const cJSON *allowed;
    if (read_tool_choice(json_get(root, "tool_choice"), tools, &none, &only, &allowed, err) < 0)
        return -1;
    if (!tools || none)
        return 0;

    cJSON *out = cJSON_CreateArray();
    if (!json_add(native, "tools", out))
        return field_oom(err);
    for (const cJSON *t = tools->child; t; t = t->next) {
        const char *name = tool_name(t);
        if ((only && strcmp(only, name) != 0) || (allowed && !allowed_has(allowed, name)))
            continue;
        const cJSON *fn = json_get(t, "function");
        const cJSON *desc = json_get(fn, "description"), *params = json_get(fn, "parameters");
        cJSON *nt = cJSON_CreateObject(), *nfn = NULL;
        if (!json_push(out, nt) || !json_add(nt, "type", json_str_ref("function")) ||
            !json_add(nt, "function", nfn = cJSON_CreateObject()) ||
            !json_add(nfn, "name", json_str_ref(name)) ||
            (cJSON_IsString(desc) &&
             !json_add(nfn, "description", json_str_ref(desc->valuestring))) ||
            (cJSON_IsObject(params) && !json_add(nfn, "parameters", json_ref(params))))
            return field_oom(err);
    }
    *has_tools = out->child != NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Request: options, format, thinking                                        */

static int xlate_format(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *rf = json_get(root, "response_format");
    if (json_unset(rf))
        return 0;
    if (!cJSON_IsObject(rf))
        return field_bad_type(err, "response_format", "an object", rf);
    const cJSON *type = json_get(rf, "type");
    if (!cJSON_IsString(type))
        return json_unset(type) ? field_missing(err, "response_format.type")
                                : field_bad_type(err, "response_format.type", "a string", type);
    const char *t = type->valuestring;
    if (strcmp(t, "text") == 0)
        return 0;
    if (strcmp(t, "json_object") == 0)
        return json_add(native, "format", json_str_ref("json")) ? 0 : field_oom(err);
    if (strcmp(t, "json_schema") == 0) {
        const cJSON *js = json_get(rf, "json_schema");
        if (!cJSON_IsObject(js))
            return json_unset(js)
                       ? field_missing(err, "response_format.json_schema")
                       : field_bad_type(err, "response_format.json_schema", "an object", js);
        const cJSON *schema = json_get(js, "schema");
        if (!cJSON_IsObject(schema))
            return json_unset(schema) ? field_missing(err, "response_format.json_schema.schema")
                                      : field_bad_type(err, "response_format.json_schema.schema",
                                                       "an object (a JSON Schema)", schema);
        return json_add(native, "format", json_ref(schema)) ? 0 : field_oom(err);
    }
    return apierr_invalid(err, "response_format.type",
                          "Invalid value for 'response_format.type': '%.40s'. Supported values "
                          "are: 'text', 'json_object' and 'json_schema'.",
                          t);
}

static int xlate_misc(const cJSON *root, struct chat_req *r, cJSON *native, struct apierr *err)
{
    if (field_stream(root, &r->stream, &r->include_usage, err) < 0 || field_n(root, err) < 0)
        return -1;

    const cJSON *fns = json_get(root, "functions");
    if (!json_unset(fns) && !(cJSON_IsArray(fns) && !fns->child))
        return apierr_invalid(err, "functions",
                              "The legacy 'functions' parameter is not supported; send 'tools' "
                              "instead.");

    const cJSON *lp = json_get(root, "logprobs");
    if (!json_unset(lp) && !cJSON_IsBool(lp))
        return field_bad_type(err, "logprobs", "a boolean", lp);
    r->logprobs = cJSON_IsTrue(lp);
    if (cJSON_IsBool(lp) && !json_add(native, "logprobs", json_ref(lp)))
        return field_oom(err);
    bool present;
    long long top;
    if (field_int(root, "top_logprobs", 0, 20, &present, &top, err) < 0)
        return -1;
    if (present && !json_add(native, "top_logprobs", json_ref(json_get(root, "top_logprobs"))))
        return field_oom(err);
    return 0;
}

int chat_req_parse(struct chat_req *r, const char *body, size_t len, struct apierr *err)
{
    struct buf scratch;
    memset(r, 0, sizeof *r);
    r->max_tokens = -1;
    buf_init(&scratch, SCRATCH_MAX);

    if (field_start(&scratch, body, len, &r->root, &r->model, &r->native, err) < 0)
        goto out_fail;
    const cJSON *root = r->root;
    if (xlate_messages(json_get(root, "messages"), r->native, &scratch, err) < 0 ||
        xlate_misc(root, r, r->native, err) < 0 ||
        sampling_options(root, &r->options, &r->max_tokens, err) < 0 ||
        xlate_format(root, r->native, err) < 0 ||
        xlate_tools(root, r->native, &r->has_tools, err) < 0 ||
        effort_field(root, r->native, err) < 0)
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
    field_free(&r->options, &r->native, &r->root);
    r->model = NULL;
}

int chat_req_to_ollama(const struct chat_req *r, const char *upstream_model,
                       const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    return ollama_body(upstream_model, r->stream, r->native, r->options, alias_options, out, err);
}
