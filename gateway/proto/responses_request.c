#include "responses_request.h"

#include "dataurl.h"
#include "effort.h"
#include "field.h"
#include "json.h"
#include "ollama.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Ceiling for the parse copies; the real bound is the server's body limit. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* What every stateful feature is told. */
#define STATELESS                                                                                  \
    "This gateway is stateless and stores nothing: send the whole conversation in 'input' "        \
    "instead."

/* ------------------------------------------------------------------------ */
/* Small readers                                                             */

/* A field's name for err->param, made from its parent's ("input[2]" ->
 * "input[2].content"): cut to fit, as err->param is anyway. */
static void __attribute__((format(printf, 3, 4)))
sub_param(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    (void)n;
}

/* An optional string member: 0 and *s (NULL when unset), or -1 with err set. */
static int opt_string(const cJSON *obj, const char *key, const char *param, const char **s,
                      struct apierr *err)
{
    const cJSON *v = json_get(obj, key);
    *s = NULL;
    if (json_unset(v))
        return 0;
    if (!cJSON_IsString(v))
        return field_bad_type(err, param, "a string", v);
    *s = v->valuestring;
    return 0;
}

/* A required string member. */
static int req_string(const cJSON *obj, const char *key, const char *param, const char **s,
                      struct apierr *err)
{
    if (opt_string(obj, key, param, s, err) < 0)
        return -1;
    return *s ? 0 : field_missing(err, param);
}

static const char *type_of(const cJSON *obj)
{
    const cJSON *t = json_get(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* ------------------------------------------------------------------------ */
/* Input: messages and their parts                                           */

/* Text parts joined with "\n" (chat completions' rule), images collected. */
struct parts {
    struct buf text;
    unsigned ntext;
    cJSON *images; /* native "images", or NULL */
};

static int part_text(struct parts *p, const char *s, struct apierr *err)
{
    if ((p->ntext++ && buf_append(&p->text, "\n", 1) < 0) || buf_puts(&p->text, s) < 0)
        return field_oom(err);
    return 0;
}

static int part_image(struct parts *p, const cJSON *part, const char *param, struct apierr *err)
{
    char sub[128];
    const cJSON *url = json_get(part, "image_url");
    if (json_unset(url) && !json_unset(json_get(part, "file_id"))) {
        sub_param(sub, sizeof sub, "%s.file_id", param);
        return apierr_invalid(err, sub,
                              "File ids are not supported: " STATELESS
                              " Send the image as a base64 data URL in 'image_url'.");
    }
    sub_param(sub, sizeof sub, "%s.image_url", param);
    if (!cJSON_IsString(url))
        return json_unset(url) ? field_missing(err, sub)
                               : field_bad_type(err, sub, "a string (a data URL)", url);
    const char *payload = dataurl_image(url->valuestring, sub, err);
    if (!payload)
        return -1;
    if (!p->images && !(p->images = cJSON_CreateArray()))
        return field_oom(err);
    return json_push(p->images, json_str_ref(payload)) ? 0 : field_oom(err);
}

/* One content part; param names it ("input[2].content[0]"). */
static int read_part(struct parts *p, const cJSON *part, const char *param, struct apierr *err)
{
    char sub[128];
    if (!cJSON_IsObject(part))
        return field_bad_type(err, param, "an object", part);
    const char *t = type_of(part);
    sub_param(sub, sizeof sub, "%s.type", param);
    if (!t)
        return json_unset(json_get(part, "type"))
                   ? field_missing(err, sub)
                   : field_bad_type(err, sub, "a string", json_get(part, "type"));
    const char *key = strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0 ||
                              strcmp(t, "text") == 0 || strcmp(t, "summary_text") == 0
                          ? "text"
                      : strcmp(t, "refusal") == 0 ? "refusal"
                                                  : NULL;
    if (key) {
        const char *s;
        sub_param(sub, sizeof sub, "%s.%s", param, key);
        return req_string(part, key, sub, &s, err) < 0 ? -1 : part_text(p, s, err);
    }
    if (strcmp(t, "input_image") == 0)
        return part_image(p, part, param, err);
    return apierr_invalid(err, sub,
                          "Unsupported content part type '%.40s': this gateway accepts "
                          "'input_text', 'output_text' and 'input_image' (base64 data URLs).",
                          t);
}

/* content (a string or parts) -> nm's native content and images. */
static int read_content(const cJSON *content, const char *param, cJSON *nm, struct apierr *err)
{
    if (cJSON_IsString(content))
        return json_add(nm, "content", json_str_ref(content->valuestring)) ? 0 : field_oom(err);
    if (!cJSON_IsArray(content))
        return json_unset(content)
                   ? field_missing(err, param)
                   : field_bad_type(err, param, "a string or an array of content parts", content);
    struct parts p = {.ntext = 0};
    buf_init(&p.text, SCRATCH_MAX);
    int rc = 0, j = 0;
    char sub[128];
    for (const cJSON *part = content->child; part && rc == 0; part = part->next, j++) {
        sub_param(sub, sizeof sub, "%s[%d]", param, j);
        rc = read_part(&p, part, sub, err);
    }
    if (rc == 0 && !json_add(nm, "content", cJSON_CreateString(p.text.p ? p.text.p : "")))
        rc = field_oom(err);
    if (rc == 0 && p.images) {
        if (!json_add(nm, "images", p.images))
            rc = field_oom(err);
        p.images = NULL;
    }
    cJSON_Delete(p.images);
    buf_free(&p.text);
    return rc;
}

static const char *native_role(const char *r)
{
    if (strcmp(r, "user") == 0)
        return "user";
    if (strcmp(r, "assistant") == 0)
        return "assistant";
    if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0)
        return "system";
    return NULL;
}

static int read_message(const cJSON *it, const char *param, cJSON *msgs, struct apierr *err)
{
    char sub[128];
    const char *role;
    sub_param(sub, sizeof sub, "%s.role", param);
    if (req_string(it, "role", sub, &role, err) < 0)
        return -1;
    const char *nrole = native_role(role);
    if (!nrole)
        return apierr_invalid(err, sub,
                              "Invalid value for '%s': '%.40s'. Supported values are: 'user', "
                              "'assistant', 'system' and 'developer'.",
                              sub, role);
    cJSON *nm = cJSON_CreateObject();
    if (!json_push(msgs, nm) || !json_add(nm, "role", json_str_ref(nrole)))
        return field_oom(err);
    sub_param(sub, sizeof sub, "%s.content", param);
    return read_content(json_get(it, "content"), sub, nm, err);
}

/* The assistant message a function_call item belongs on: the last message if
 * it is the assistant's, else a new empty one. */
static cJSON *call_holder(cJSON *msgs, struct apierr *err)
{
    cJSON *last = msgs->child ? msgs->child->prev : NULL;
    const cJSON *role = last ? json_get(last, "role") : NULL;
    if (role && strcmp(role->valuestring, "assistant") == 0)
        return last;
    cJSON *nm = cJSON_CreateObject();
    if (!json_push(msgs, nm) || !json_add(nm, "role", json_str_ref("assistant")) ||
        !json_add(nm, "content", json_str_ref(""))) {
        field_oom(err);
        return NULL;
    }
    return nm;
}

/* A call item's call_id and name (both required, the name not empty). */
static int read_call_head(const cJSON *it, const char *param, const char **call_id,
                          const char **name, struct apierr *err)
{
    char sub[128];
    sub_param(sub, sizeof sub, "%s.call_id", param);
    if (req_string(it, "call_id", sub, call_id, err) < 0)
        return -1;
    sub_param(sub, sizeof sub, "%s.name", param);
    if (req_string(it, "name", sub, name, err) < 0)
        return -1;
    if (!(*name)[0])
        return apierr_invalid(err, sub, "'%s' must not be empty.", sub);
    return 0;
}

/* Put a native tool call (taking nargs, its arguments object) on the
 * assistant message it belongs to. */
static int add_call(cJSON *msgs, const char *call_id, const char *name, cJSON *nargs,
                    struct apierr *err)
{
    if (!nargs)
        return field_oom(err);
    cJSON *holder = call_holder(msgs, err);
    if (!holder) {
        cJSON_Delete(nargs);
        return -1;
    }
    cJSON *calls = json_get(holder, "tool_calls");
    if (!calls && !json_add(holder, "tool_calls", calls = cJSON_CreateArray())) {
        cJSON_Delete(nargs);
        return field_oom(err);
    }
    cJSON *tc = cJSON_CreateObject(), *fn = NULL;
    if (!json_push(calls, tc) || !json_add(tc, "id", json_str_ref(call_id)) ||
        !json_add(tc, "function", fn = cJSON_CreateObject()) ||
        !json_add(fn, "name", json_str_ref(name))) {
        cJSON_Delete(nargs);
        return field_oom(err);
    }
    return json_add(fn, "arguments", nargs) ? 0 : field_oom(err);
}

static int read_call(const cJSON *it, const char *param, cJSON *msgs, struct buf *scratch,
                     struct apierr *err)
{
    char sub[128];
    const char *call_id, *name, *args;
    if (read_call_head(it, param, &call_id, &name, err) < 0)
        return -1;
    sub_param(sub, sizeof sub, "%s.arguments", param);
    if (opt_string(it, "arguments", sub, &args, err) < 0)
        return -1;
    cJSON *nargs;
    if (!args || !args[0]) {
        nargs = cJSON_CreateObject(); /* a call without arguments */
    } else {
        size_t at;
        nargs = json_parse(scratch, args, strlen(args), &at);
        if (!cJSON_IsObject(nargs)) {
            bool parsed = nargs != NULL;
            cJSON_Delete(nargs);
            return apierr_invalid(err, sub,
                                  "'%s' must be a JSON object encoded as a string; got %s.", sub,
                                  parsed ? "valid JSON that is not an object" : "invalid JSON");
        }
    }
    return add_call(msgs, call_id, name, nargs, err);
}

/* A custom_tool_call item: a call of a custom tool, whose native arguments
 * are {"input": input}, as the tool was offered to Ollama (write_tools). */
static int read_custom_call(const cJSON *it, const char *param, cJSON *msgs, struct apierr *err)
{
    char sub[128];
    const char *call_id, *name, *input;
    if (read_call_head(it, param, &call_id, &name, err) < 0)
        return -1;
    sub_param(sub, sizeof sub, "%s.input", param);
    if (req_string(it, "input", sub, &input, err) < 0)
        return -1;
    cJSON *nargs = cJSON_CreateObject();
    if (nargs && !json_add(nargs, "input", json_str_ref(input))) {
        cJSON_Delete(nargs);
        nargs = NULL;
    }
    return add_call(msgs, call_id, name, nargs, err);
}

static bool is_call(const char *t)
{
    return t && (strcmp(t, "function_call") == 0 || strcmp(t, "custom_tool_call") == 0);
}

/* The name of the earlier function or custom tool call with this call_id
 * (the newest wins). */
static const char *call_name(const cJSON *items, const cJSON *upto, const char *call_id)
{
    const char *name = NULL;
    for (const cJSON *it = items->child; it && it != upto; it = it->next) {
        const cJSON *id = json_get(it, "call_id"), *n = json_get(it, "name");
        if (is_call(type_of(it)) && cJSON_IsString(id) && cJSON_IsString(n) &&
            strcmp(id->valuestring, call_id) == 0)
            name = n->valuestring;
    }
    return name;
}

static int read_call_output(const cJSON *items, const cJSON *it, const char *param, cJSON *msgs,
                            struct apierr *err)
{
    char sub[128];
    const char *call_id;
    sub_param(sub, sizeof sub, "%s.call_id", param);
    if (req_string(it, "call_id", sub, &call_id, err) < 0)
        return -1;
    cJSON *nm = cJSON_CreateObject();
    if (!json_push(msgs, nm) || !json_add(nm, "role", json_str_ref("tool")))
        return field_oom(err);
    sub_param(sub, sizeof sub, "%s.output", param);
    if (read_content(json_get(it, "output"), sub, nm, err) < 0)
        return -1;
    const char *name = call_name(items, it, call_id);
    if (!json_add(nm, "tool_call_id", json_str_ref(call_id)) ||
        (name && !json_add(nm, "tool_name", json_str_ref(name))))
        return field_oom(err);
    return 0;
}

static int read_item(const cJSON *items, const cJSON *it, int i, cJSON *msgs, struct buf *scratch,
                     struct apierr *err)
{
    char param[64], sub[96];
    sub_param(param, sizeof param, "input[%d]", i);
    if (!cJSON_IsObject(it))
        return field_bad_type(err, param, "an object", it);
    const cJSON *type = json_get(it, "type");
    sub_param(sub, sizeof sub, "%s.type", param);
    if (!json_unset(type) && !cJSON_IsString(type))
        return field_bad_type(err, sub, "a string", type);
    const char *t = cJSON_IsString(type) ? type->valuestring : "message";
    if (strcmp(t, "message") == 0)
        return read_message(it, param, msgs, err);
    if (strcmp(t, "function_call") == 0)
        return read_call(it, param, msgs, scratch, err);
    if (strcmp(t, "custom_tool_call") == 0)
        return read_custom_call(it, param, msgs, err);
    if (strcmp(t, "function_call_output") == 0 || strcmp(t, "custom_tool_call_output") == 0)
        return read_call_output(items, it, param, msgs, err);
    if (strcmp(t, "reasoning") == 0)
        return 0;
    if (strcmp(t, "item_reference") == 0)
        return apierr_invalid(err, param, "Item references are not supported: " STATELESS);
    return apierr_invalid(err, sub,
                          "Unsupported input item type '%.40s': this gateway accepts 'message', "
                          "'function_call', 'function_call_output', 'custom_tool_call', "
                          "'custom_tool_call_output' and 'reasoning' items.",
                          t);
}

static int read_input(const cJSON *root, cJSON *native, struct buf *scratch, struct apierr *err)
{
    const char *instructions;
    if (opt_string(root, "instructions", "instructions", &instructions, err) < 0)
        return -1;
    const cJSON *input = json_get(root, "input");
    if (json_unset(input))
        return field_missing(err, "input");
    if (!cJSON_IsString(input) && !cJSON_IsArray(input))
        return field_bad_type(err, "input", "a string or an array of items", input);

    cJSON *msgs = cJSON_CreateArray(), *nm;
    if (!json_add(native, "messages", msgs))
        return field_oom(err);
    if (instructions && instructions[0] &&
        (!json_push(msgs, nm = cJSON_CreateObject()) ||
         !json_add(nm, "role", json_str_ref("system")) ||
         !json_add(nm, "content", json_str_ref(instructions))))
        return field_oom(err);
    if (cJSON_IsString(input)) {
        if (!json_push(msgs, nm = cJSON_CreateObject()) ||
            !json_add(nm, "role", json_str_ref("user")) ||
            !json_add(nm, "content", json_str_ref(input->valuestring)))
            return field_oom(err);
        return 0;
    }
    int i = 0;
    for (const cJSON *it = input->child; it; it = it->next, i++)
        if (read_item(input, it, i, msgs, scratch, err) < 0)
            return -1;
    if (!msgs->child)
        return apierr_invalid(err, "input", "'input' must contain at least one message.");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tools                                                                     */

/* What every tool has: a name (not empty) and maybe a description. */
static int check_named(const cJSON *t, const char *param, struct apierr *err)
{
    char sub[128];
    const char *name, *desc;
    sub_param(sub, sizeof sub, "%s.name", param);
    if (req_string(t, "name", sub, &name, err) < 0)
        return -1;
    if (!name[0])
        return apierr_invalid(err, sub, "'%s' must not be empty.", sub);
    sub_param(sub, sizeof sub, "%s.description", param);
    return opt_string(t, "description", sub, &desc, err);
}

static int check_function(const cJSON *t, const char *param, struct apierr *err)
{
    char sub[128];
    if (check_named(t, param, err) < 0)
        return -1;
    const cJSON *params = json_get(t, "parameters");
    sub_param(sub, sizeof sub, "%s.parameters", param);
    if (!json_unset(params) && !cJSON_IsObject(params))
        return field_bad_type(err, sub, "an object (a JSON Schema)", params);
    return 0;
}

/* A custom tool: a name, maybe a description, maybe a format (an object;
 * a grammar's syntax and definition strings). */
static int check_custom(const cJSON *t, const char *param, struct apierr *err)
{
    char sub[128];
    const char *s;
    if (check_named(t, param, err) < 0)
        return -1;
    const cJSON *f = json_get(t, "format");
    sub_param(sub, sizeof sub, "%s.format", param);
    if (json_unset(f))
        return 0;
    if (!cJSON_IsObject(f))
        return field_bad_type(err, sub, "an object", f);
    sub_param(sub, sizeof sub, "%s.format.syntax", param);
    if (opt_string(f, "syntax", sub, &s, err) < 0)
        return -1;
    sub_param(sub, sizeof sub, "%s.format.definition", param);
    return opt_string(f, "definition", sub, &s, err);
}

/* Append function tool t (checked) to list, a flat array of references. */
static int collect_function(const cJSON *t, const char *param, cJSON *list, struct apierr *err)
{
    if (check_function(t, param, err) < 0)
        return -1;
    return json_push(list, json_ref(t)) ? 0 : field_oom(err);
}

/* Remember that function tool f came from namespace group ns ("name\0ns\0"). */
static int note_namespace(const cJSON *f, const cJSON *ns, struct buf *map, struct apierr *err)
{
    if (!cJSON_IsString(ns) || !ns->valuestring[0])
        return 0;
    const char *name = json_get(f, "name")->valuestring;
    if (buf_append(map, name, strlen(name) + 1) < 0 ||
        buf_append(map, ns->valuestring, strlen(ns->valuestring) + 1) < 0)
        return field_oom(err);
    return 0;
}

/* tools -> a flat array of references to the function and custom tools in
 * them, the namespace of each that came from a group, and the custom tools'
 * names ("name\0" each). */
static int collect_tools(const cJSON *tools, cJSON *list, struct buf *map, struct buf *customs,
                         struct apierr *err)
{
    char param[64], sub[96];
    int k = 0;
    for (const cJSON *t = tools->child; t; t = t->next, k++) {
        sub_param(param, sizeof param, "tools[%d]", k);
        if (!cJSON_IsObject(t))
            return field_bad_type(err, param, "an object", t);
        const char *type = type_of(t);
        if (!type)
            continue; /* judged as a hosted tool: left out */
        if (strcmp(type, "function") == 0) {
            if (collect_function(t, param, list, err) < 0)
                return -1;
        } else if (strcmp(type, "custom") == 0) {
            if (check_custom(t, param, err) < 0)
                return -1;
            const char *name = json_get(t, "name")->valuestring;
            if (!json_push(list, json_ref(t)) || buf_append(customs, name, strlen(name) + 1) < 0)
                return field_oom(err);
        } else if (strcmp(type, "namespace") == 0) {
            const cJSON *inner = json_get(t, "tools");
            sub_param(sub, sizeof sub, "%s.tools", param);
            if (!json_unset(inner) && !cJSON_IsArray(inner))
                return field_bad_type(err, sub, "an array", inner);
            int j = 0;
            for (const cJSON *f = cJSON_IsArray(inner) ? inner->child : NULL; f; f = f->next, j++) {
                sub_param(sub, sizeof sub, "%s.tools[%d]", param, j);
                if (!cJSON_IsObject(f))
                    return field_bad_type(err, sub, "an object", f);
                const char *ft = type_of(f);
                if (ft && strcmp(ft, "function") == 0 &&
                    (collect_function(f, sub, list, err) < 0 ||
                     note_namespace(f, json_get(t, "name"), map, err) < 0))
                    return -1;
            }
        }
        /* every other type is a hosted tool Ollama cannot run: left out */
    }
    return 0;
}

static bool name_in(const cJSON *list, const char *name)
{
    for (const cJSON *t = list->child; t; t = t->next)
        if (strcmp(json_get(t, "name")->valuestring, name) == 0)
            return true;
    return false;
}

/* tool_choice -> *none, or the names to keep (*only, or *allowed: an array
 * of {type:"function", name}). */
static int read_choice(const cJSON *choice, const cJSON *list, bool *none, const char **only,
                       const cJSON **allowed, struct apierr *err)
{
    *none = false;
    *only = NULL;
    *allowed = NULL;
    if (json_unset(choice))
        return 0;
    if (cJSON_IsString(choice)) {
        const char *c = choice->valuestring;
        if (strcmp(c, "none") == 0)
            *none = true;
        else if (strcmp(c, "auto") != 0 && strcmp(c, "required") != 0)
            return apierr_invalid(err, "tool_choice",
                                  "Invalid value for 'tool_choice': '%.40s'. Supported values "
                                  "are: 'none', 'auto', 'required', or a named function.",
                                  c);
        return 0;
    }
    if (!cJSON_IsObject(choice))
        return field_bad_type(err, "tool_choice", "a string or an object", choice);
    const char *t = type_of(choice);
    if (!t)
        return field_missing(err, "tool_choice.type");
    if (strcmp(t, "function") == 0 || strcmp(t, "custom") == 0) {
        const char *name;
        if (req_string(choice, "name", "tool_choice.name", &name, err) < 0)
            return -1;
        if (!name_in(list, name))
            return apierr_invalid(err, "tool_choice.name", "No %s tool named '%.64s' in 'tools'.",
                                  t, name);
        *only = name;
        return 0;
    }
    if (strcmp(t, "allowed_tools") == 0) {
        const cJSON *tools = json_get(choice, "tools");
        if (!cJSON_IsArray(tools))
            return json_unset(tools) ? field_missing(err, "tool_choice.tools")
                                     : field_bad_type(err, "tool_choice.tools", "an array", tools);
        int k = 0;
        for (const cJSON *a = tools->child; a; a = a->next, k++)
            if (!cJSON_IsObject(a)) {
                char param[64];
                sub_param(param, sizeof param, "tool_choice.tools[%d]", k);
                return field_bad_type(err, param, "an object", a);
            }
        *allowed = tools;
        return 0;
    }
    return 0; /* a hosted tool's choice: its tool is left out, so "auto" */
}

static bool allowed_has(const cJSON *allowed, const char *name)
{
    for (const cJSON *a = allowed->child; a; a = a->next) {
        const cJSON *n = json_get(a, "name");
        const char *t = type_of(a);
        if (t && (strcmp(t, "function") == 0 || strcmp(t, "custom") == 0) && cJSON_IsString(n) &&
            strcmp(n->valuestring, name) == 0)
            return true;
    }
    return false;
}

/* The parameters a custom tool is offered to Ollama with: one string,
 * `input`, described by the tool's format (its grammar, when it has one). A
 * new tree, or NULL when memory runs out. */
static cJSON *custom_params(const cJSON *t)
{
    const cJSON *f = json_get(t, "format");
    const cJSON *syntax = json_get(f, "syntax"), *def = json_get(f, "definition");
    struct buf d;
    buf_init(&d, SCRATCH_MAX);
    int rc = buf_puts(&d, "The whole input of the tool, as plain text.");
    if (cJSON_IsString(def) && def->valuestring[0]) {
        rc |= buf_puts(&d, " It must match this ");
        rc |= buf_puts(&d, cJSON_IsString(syntax) ? syntax->valuestring : "");
        rc |= buf_puts(&d, " grammar:\n");
        rc |= buf_puts(&d, def->valuestring);
    }
    cJSON *p = rc ? NULL : cJSON_CreateObject(), *props, *input, *req;
    if (p && (!json_add(p, "type", json_str_ref("object")) ||
              !json_add(p, "properties", props = cJSON_CreateObject()) ||
              !json_add(props, "input", input = cJSON_CreateObject()) ||
              !json_add(input, "type", json_str_ref("string")) ||
              !json_add(input, "description", cJSON_CreateString(d.p)) ||
              !json_add(p, "required", req = cJSON_CreateArray()) ||
              !json_push(req, json_str_ref("input")))) {
        cJSON_Delete(p);
        p = NULL;
    }
    buf_free(&d);
    return p;
}

static int write_tools(const cJSON *list, const char *only, const cJSON *allowed, cJSON *native,
                       struct apierr *err)
{
    cJSON *out = cJSON_CreateArray();
    if (!out)
        return field_oom(err);
    for (const cJSON *t = list->child; t; t = t->next) {
        const char *name = json_get(t, "name")->valuestring;
        if ((only && strcmp(only, name) != 0) || (allowed && !allowed_has(allowed, name)))
            continue;
        const cJSON *desc = json_get(t, "description"), *params = json_get(t, "parameters");
        bool custom = strcmp(type_of(t), "custom") == 0;
        cJSON *nt = cJSON_CreateObject(), *fn = NULL;
        if (!json_push(out, nt) || !json_add(nt, "type", json_str_ref("function")) ||
            !json_add(nt, "function", fn = cJSON_CreateObject()) ||
            !json_add(fn, "name", json_str_ref(name)) ||
            (cJSON_IsString(desc) &&
             !json_add(fn, "description", json_str_ref(desc->valuestring))) ||
            (custom && !json_add(fn, "parameters", custom_params(t))) ||
            (!custom && cJSON_IsObject(params) && !json_add(fn, "parameters", json_ref(params)))) {
            cJSON_Delete(out);
            return field_oom(err);
        }
    }
    if (!out->child) {
        cJSON_Delete(out);
        return 0;
    }
    return json_add(native, "tools", out) ? 0 : field_oom(err);
}

static int read_tools(const cJSON *root, cJSON *native, struct buf *map, struct buf *customs,
                      struct apierr *err)
{
    const cJSON *tools = json_get(root, "tools");
    if (!json_unset(tools) && !cJSON_IsArray(tools))
        return field_bad_type(err, "tools", "an array", tools);
    cJSON *list = cJSON_CreateArray();
    if (!list)
        return field_oom(err);
    bool none;
    const char *only;
    const cJSON *allowed;
    int rc = cJSON_IsArray(tools) ? collect_tools(tools, list, map, customs, err) : 0;
    if (rc == 0)
        rc = read_choice(json_get(root, "tool_choice"), list, &none, &only, &allowed, err);
    if (rc == 0 && !none && list->child)
        rc = write_tools(list, only, allowed, native, err);
    cJSON_Delete(list);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Options, format, thinking, what is refused                                */

static int opt_number(const cJSON *root, const char *key, double max, cJSON *opts,
                      struct apierr *err)
{
    const cJSON *v = json_get(root, key);
    if (json_unset(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return field_bad_type(err, key, "a number", v);
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d > max)
        return apierr_invalid(err, key, "Invalid '%s': %g is outside the range 0 to %g.", key, d,
                              max);
    return json_add(opts, key, json_ref(v)) ? 0 : field_oom(err);
}

static int read_options(const cJSON *root, cJSON **options, struct apierr *err)
{
    cJSON *opts = cJSON_CreateObject();
    bool present;
    long long n = 0;
    if (!opts)
        return field_oom(err);
    if (opt_number(root, "temperature", 1e9, opts, err) < 0 ||
        opt_number(root, "top_p", 1, opts, err) < 0 ||
        field_int(root, "max_output_tokens", 1, 2147483647, &present, &n, err) < 0) {
        cJSON_Delete(opts);
        return -1;
    }
    if (present && !json_add(opts, "num_predict", cJSON_CreateNumber((double)n))) {
        cJSON_Delete(opts);
        return field_oom(err);
    }
    if (opts->child)
        *options = opts;
    else
        cJSON_Delete(opts);
    return 0;
}

static int read_format(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *text = json_get(root, "text");
    if (json_unset(text))
        return 0;
    if (!cJSON_IsObject(text))
        return field_bad_type(err, "text", "an object", text);
    const cJSON *f = json_get(text, "format");
    if (json_unset(f))
        return 0;
    if (!cJSON_IsObject(f))
        return field_bad_type(err, "text.format", "an object", f);
    const char *t;
    if (req_string(f, "type", "text.format.type", &t, err) < 0)
        return -1;
    if (strcmp(t, "text") == 0)
        return 0;
    if (strcmp(t, "json_object") == 0)
        return json_add(native, "format", json_str_ref("json")) ? 0 : field_oom(err);
    if (strcmp(t, "json_schema") == 0) {
        const cJSON *schema = json_get(f, "schema");
        if (!cJSON_IsObject(schema))
            return json_unset(schema) ? field_missing(err, "text.format.schema")
                                      : field_bad_type(err, "text.format.schema",
                                                       "an object (a JSON Schema)", schema);
        return json_add(native, "format", json_ref(schema)) ? 0 : field_oom(err);
    }
    return apierr_invalid(err, "text.format.type",
                          "Invalid value for 'text.format.type': '%.40s'. Supported values are: "
                          "'text', 'json_object' and 'json_schema'.",
                          t);
}

static int read_reasoning(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *reasoning = json_get(root, "reasoning");
    if (json_unset(reasoning))
        return 0;
    if (!cJSON_IsObject(reasoning))
        return field_bad_type(err, "reasoning", "an object", reasoning);
    const char *effort;
    if (opt_string(reasoning, "effort", "reasoning.effort", &effort, err) < 0)
        return -1;
    if (!effort)
        return 0;
    cJSON *think;
    int rc = effort_think(effort, &think);
    if (rc == -1)
        return effort_bad(err, "reasoning.effort", effort);
    if (rc < 0)
        return field_oom(err);
    return !think || json_add(native, "think", think) ? 0 : field_oom(err);
}

static int refuse_stateful(const cJSON *root, struct apierr *err)
{
    if (!json_unset(json_get(root, "previous_response_id")))
        return apierr_invalid(err, "previous_response_id",
                              "'previous_response_id' is not supported: " STATELESS);
    if (!json_unset(json_get(root, "conversation")))
        return apierr_invalid(err, "conversation", "'conversation' is not supported: " STATELESS);
    const cJSON *bg = json_get(root, "background");
    if (!json_unset(bg) && !cJSON_IsBool(bg))
        return field_bad_type(err, "background", "a boolean", bg);
    if (cJSON_IsTrue(bg))
        return apierr_invalid(err, "background",
                              "Background responses are not supported: they must be stored and "
                              "fetched later. " STATELESS);
    return 0;
}

int responses_req_parse(struct responses_req *r, const char *body, size_t len, struct apierr *err)
{
    struct buf scratch;
    memset(r, 0, sizeof *r);
    buf_init(&scratch, SCRATCH_MAX);
    buf_init(&r->namespaces, SCRATCH_MAX);
    buf_init(&r->customs, SCRATCH_MAX);
    bool unused;
    if (field_start(&scratch, body, len, &r->root, &r->model, &r->native, err) < 0 ||
        refuse_stateful(r->root, err) < 0 || field_stream(r->root, &r->stream, &unused, err) < 0 ||
        read_input(r->root, r->native, &scratch, err) < 0 ||
        read_tools(r->root, r->native, &r->namespaces, &r->customs, err) < 0 ||
        read_format(r->root, r->native, err) < 0 || read_reasoning(r->root, r->native, err) < 0 ||
        read_options(r->root, &r->options, err) < 0) {
        buf_free(&scratch);
        responses_req_free(r);
        return -1;
    }
    buf_free(&scratch);
    return 0;
}

int responses_req_to_ollama(const struct responses_req *r, const char *upstream_model,
                            const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    return ollama_body(upstream_model, r->stream, r->native, r->options, alias_options, out, err);
}

void responses_req_free(struct responses_req *r)
{
    field_free(&r->options, &r->native, &r->root);
    buf_free(&r->namespaces);
    buf_free(&r->customs);
    r->model = NULL;
}
