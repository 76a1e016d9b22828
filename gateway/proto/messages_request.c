#include "messages_request.h"

#include "field.h"
#include "json.h"
#include "ollama.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The parse copy's ceiling; the real bound is the body limit. */
#define SCRATCH_MAX (SIZE_MAX / 4)

/* A field's name for an error message ("messages[2].content[0].source"),
 * cut short if it must be (apierr keeps 95 bytes of it anyway). */
static void pathf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pathf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

/* How many earlier tool_use blocks a tool_result's name is looked up in. */
#define TOOL_MEMORY 64

/* Recent tool_use blocks, to name the tool a tool_result answers (Ollama's
 * tool messages carry the tool's name, Anthropic's results only the id). */
struct tool_memory {
    const char *id[TOOL_MEMORY];   /* borrowed from the client body */
    const char *name[TOOL_MEMORY]; /* borrowed from the client body */
    unsigned n;
};

static void remember(struct tool_memory *t, const char *id, const char *name)
{
    t->id[t->n % TOOL_MEMORY] = id;
    t->name[t->n % TOOL_MEMORY] = name;
    t->n++;
}

static const char *recall(const struct tool_memory *t, const char *id)
{
    unsigned kept = t->n < TOOL_MEMORY ? t->n : TOOL_MEMORY;
    for (unsigned k = 1; k <= kept; k++) {
        unsigned slot = (t->n - k) % TOOL_MEMORY;
        if (strcmp(t->id[slot], id) == 0)
            return t->name[slot];
    }
    return NULL;
}

/* A required string member: the string, or NULL with err set. */
static const char *need_str(const cJSON *o, const char *key, const char *param, bool nonempty,
                            struct apierr *err)
{
    const cJSON *v = json_get(o, key);
    if (!cJSON_IsString(v)) {
        json_unset(v) ? field_missing(err, param) : field_bad_type(err, param, "a string", v);
        return NULL;
    }
    if (nonempty && !v->valuestring[0]) {
        apierr_invalid(err, param, "'%s' must not be empty.", param);
        return NULL;
    }
    return v->valuestring;
}

/* ------------------------------------------------------------------------ */
/* Text gathered from several blocks                                          */

/* Text blocks joined with "\n" (as chat completions joins its parts): one
 * block is borrowed as it stands, several are copied into one string. */
struct joined {
    const char *first; /* borrowed: the only text so far */
    struct buf many;   /* owned: the joined text once there are two */
    unsigned n;
};

static void joined_init(struct joined *j)
{
    memset(j, 0, sizeof *j);
    buf_init(&j->many, SCRATCH_MAX);
}

static int joined_add(struct joined *j, const char *s)
{
    int rc = 0;
    if (j->n == 1)
        rc |= buf_puts(&j->many, j->first);
    if (j->n >= 1)
        rc |= buf_append(&j->many, "\n", 1) | buf_puts(&j->many, s);
    else
        j->first = s;
    j->n++;
    return rc ? -1 : 0;
}

/* The joined text as a member of o (empty when there was none). */
static int joined_put(struct joined *j, cJSON *o, const char *key)
{
    cJSON *v;
    if (j->n <= 1)
        v = json_str_ref(j->first ? j->first : "");
    else
        v = cJSON_CreateString(j->many.p);
    return json_add(o, key, v) ? 0 : -1;
}

static void joined_free(struct joined *j)
{
    buf_free(&j->many);
}

/* ------------------------------------------------------------------------ */
/* Blocks                                                                     */

static bool base64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=' || c == '\r' || c == '\n';
}

/* An image block -> its base64 data (borrowed), or NULL with err set. */
static const char *image_data(const cJSON *b, const char *param, struct apierr *err)
{
    char p[192];
    const cJSON *src = json_get(b, "source");
    pathf(p, sizeof p, "%s.source", param);
    if (!cJSON_IsObject(src)) {
        json_unset(src) ? field_missing(err, p) : field_bad_type(err, p, "an object", src);
        return NULL;
    }
    pathf(p, sizeof p, "%s.source.type", param);
    const char *type = need_str(src, "type", p, false, err);
    if (!type)
        return NULL;
    if (strcmp(type, "base64") != 0) {
        apierr_invalid(err, p,
                       "Image source type '%.40s' is not supported by this gateway (it fetches "
                       "nothing); send the image inline with source type 'base64'.",
                       type);
        return NULL;
    }
    const cJSON *mt = json_get(src, "media_type");
    pathf(p, sizeof p, "%s.source.media_type", param);
    if (!json_unset(mt) && !(cJSON_IsString(mt) && strncmp(mt->valuestring, "image/", 6) == 0)) {
        apierr_invalid(err, p, "'%s' must be an image media type such as image/png.", p);
        return NULL;
    }
    pathf(p, sizeof p, "%s.source.data", param);
    const char *data = need_str(src, "data", p, true, err);
    if (!data)
        return NULL;
    for (const char *s = data; *s; s++) {
        if (!base64_char((unsigned char)*s)) {
            apierr_invalid(err, p, "'%s' is not valid base64.", p);
            return NULL;
        }
    }
    return data;
}

/* A native message being filled from blocks: its text, images, thinking and
 * tool calls, made only when something goes in. */
struct native_msg {
    const char *role;
    struct joined text, thinking;
    cJSON *images, *calls; /* owned until put */
    bool any;
};

static void nm_init(struct native_msg *m, const char *role)
{
    memset(m, 0, sizeof *m);
    m->role = role;
    joined_init(&m->text);
    joined_init(&m->thinking);
}

static void nm_free(struct native_msg *m)
{
    joined_free(&m->text);
    joined_free(&m->thinking);
    cJSON_Delete(m->images);
    cJSON_Delete(m->calls);
    m->images = m->calls = NULL;
}

static int nm_image(struct native_msg *m, const char *data)
{
    m->any = true;
    if (!m->images && !(m->images = cJSON_CreateArray()))
        return -1;
    return json_push(m->images, json_str_ref(data)) ? 0 : -1;
}

/* Append m to out (when it holds anything, or always) and start it afresh. */
static int nm_flush(struct native_msg *m, cJSON *out, bool always, struct apierr *err)
{
    int rc = 0;
    if (m->any || always) {
        cJSON *o = cJSON_CreateObject();
        rc = json_push(out, o) && json_add(o, "role", json_str_ref(m->role)) ? 0 : -1;
        if (rc == 0)
            rc = joined_put(&m->text, o, "content");
        if (rc == 0 && m->thinking.n)
            rc = joined_put(&m->thinking, o, "thinking");
        if (rc == 0 && m->images) {
            rc = json_add(o, "images", m->images) ? 0 : -1;
            m->images = NULL;
        }
        if (rc == 0 && m->calls) {
            rc = json_add(o, "tool_calls", m->calls) ? 0 : -1;
            m->calls = NULL;
        }
    }
    const char *role = m->role;
    nm_free(m);
    nm_init(m, role);
    return rc == 0 ? 0 : field_oom(err);
}

/* tool_result content: a string, or text and image blocks. */
static int result_content(const cJSON *c, const char *param, struct native_msg *tm,
                          struct apierr *err)
{
    char p[192];
    if (json_unset(c))
        return 0;
    if (cJSON_IsString(c))
        return joined_add(&tm->text, c->valuestring) < 0 ? field_oom(err) : 0;
    if (!cJSON_IsArray(c))
        return field_bad_type(err, param, "a string or an array of content blocks", c);
    int k = 0;
    for (const cJSON *b = c->child; b; b = b->next, k++) {
        pathf(p, sizeof p, "%s[%d]", param, k);
        if (!cJSON_IsObject(b))
            return field_bad_type(err, p, "an object", b);
        char tp[224];
        pathf(tp, sizeof tp, "%s.type", p);
        const char *type = need_str(b, "type", tp, false, err);
        if (!type)
            return -1;
        if (strcmp(type, "text") == 0) {
            pathf(tp, sizeof tp, "%s.text", p);
            const char *text = need_str(b, "text", tp, false, err);
            if (!text)
                return -1;
            if (joined_add(&tm->text, text) < 0)
                return field_oom(err);
        } else if (strcmp(type, "image") == 0) {
            const char *data = image_data(b, p, err);
            if (!data)
                return -1;
            if (nm_image(tm, data) < 0)
                return field_oom(err);
        } else {
            return apierr_invalid(err, tp,
                                  "Unsupported tool_result content block type '%.40s': this "
                                  "gateway accepts 'text' and 'image'.",
                                  type);
        }
    }
    return 0;
}

/* A tool_result block -> a native tool message appended to out. */
static int tool_result(const cJSON *b, const char *param, const struct tool_memory *mem, cJSON *out,
                       struct apierr *err)
{
    char p[192];
    pathf(p, sizeof p, "%s.tool_use_id", param);
    const char *id = need_str(b, "tool_use_id", p, false, err);
    if (!id)
        return -1;
    const cJSON *ie = json_get(b, "is_error");
    pathf(p, sizeof p, "%s.is_error", param);
    if (!json_unset(ie) && !cJSON_IsBool(ie))
        return field_bad_type(err, p, "a boolean", ie);
    struct native_msg tm;
    nm_init(&tm, "tool");
    pathf(p, sizeof p, "%s.content", param);
    int rc = result_content(json_get(b, "content"), p, &tm, err);
    if (rc == 0)
        rc = nm_flush(&tm, out, true, err);
    nm_free(&tm);
    if (rc < 0)
        return -1;
    cJSON *o = cJSON_GetArrayItem(out, cJSON_GetArraySize(out) - 1);
    const char *name = recall(mem, id);
    if (!json_add(o, "tool_call_id", json_str_ref(id)) ||
        (name && !json_add(o, "tool_name", json_str_ref(name))))
        return field_oom(err);
    return 0;
}

/* A tool_use block -> one native tool call on m. */
static int tool_use(const cJSON *b, const char *param, struct native_msg *m,
                    struct tool_memory *mem, struct apierr *err)
{
    char p[192];
    pathf(p, sizeof p, "%s.id", param);
    const char *id = need_str(b, "id", p, false, err);
    if (!id)
        return -1;
    pathf(p, sizeof p, "%s.name", param);
    const char *name = need_str(b, "name", p, true, err);
    if (!name)
        return -1;
    const cJSON *input = json_get(b, "input");
    pathf(p, sizeof p, "%s.input", param);
    if (!json_unset(input) && !cJSON_IsObject(input))
        return field_bad_type(err, p, "an object", input);
    m->any = true;
    if (!m->calls && !(m->calls = cJSON_CreateArray()))
        return field_oom(err);
    cJSON *tc = cJSON_CreateObject(), *fn = NULL;
    if (!json_push(m->calls, tc) || !json_add(tc, "id", json_str_ref(id)) ||
        !json_add(tc, "function", fn = cJSON_CreateObject()) ||
        !json_add(fn, "name", json_str_ref(name)) ||
        !json_add(fn, "arguments", cJSON_IsObject(input) ? json_ref(input) : cJSON_CreateObject()))
        return field_oom(err);
    remember(mem, id, name);
    return 0;
}

static int xlate_blocks(const cJSON *blocks, int i, bool assistant, cJSON *out,
                        struct tool_memory *mem, struct apierr *err)
{
    char param[96], p[128];
    struct native_msg m;
    nm_init(&m, assistant ? "assistant" : "user");
    int k = 0, rc = 0, results = 0;
    for (const cJSON *b = blocks->child; b && rc == 0; b = b->next, k++) {
        pathf(param, sizeof param, "messages[%d].content[%d]", i, k);
        if (!cJSON_IsObject(b)) {
            rc = field_bad_type(err, param, "an object", b);
            break;
        }
        pathf(p, sizeof p, "%s.type", param);
        const char *type = need_str(b, "type", p, false, err);
        if (!type) {
            rc = -1;
        } else if (strcmp(type, "text") == 0) {
            pathf(p, sizeof p, "%s.text", param);
            const char *text = need_str(b, "text", p, false, err);
            m.any = true;
            rc = !text ? -1 : joined_add(&m.text, text) < 0 ? field_oom(err) : 0;
        } else if (strcmp(type, "image") == 0) {
            const char *data = image_data(b, param, err);
            rc = !data ? -1 : nm_image(&m, data) < 0 ? field_oom(err) : 0;
        } else if (assistant && strcmp(type, "thinking") == 0) {
            pathf(p, sizeof p, "%s.thinking", param);
            const char *th = need_str(b, "thinking", p, false, err);
            m.any = true;
            rc = !th ? -1 : th[0] && joined_add(&m.thinking, th) < 0 ? field_oom(err) : 0;
        } else if (assistant && strcmp(type, "redacted_thinking") == 0) {
            /* encrypted by Anthropic: nothing a local model can read */
        } else if (assistant && strcmp(type, "tool_use") == 0) {
            rc = tool_use(b, param, &m, mem, err);
        } else if (!assistant && strcmp(type, "tool_result") == 0) {
            /* Ollama answers a tool call with a message of its own: what
             * came before it in this turn goes first, in order */
            rc = nm_flush(&m, out, false, err);
            if (rc == 0)
                rc = tool_result(b, param, mem, out, err);
            results++;
        } else {
            rc = apierr_invalid(err, p,
                                "Unsupported content block type '%.40s' in a%s message: this "
                                "gateway accepts %s.",
                                type, assistant ? "n assistant" : " user",
                                assistant ? "'text', 'thinking', 'redacted_thinking' and "
                                            "'tool_use'"
                                          : "'text', 'image' and 'tool_result'");
        }
    }
    /* A turn made only of tool results has been sent already; any other turn
     * is sent even when empty, so that turns keep alternating. */
    bool only_results = results > 0 && !m.any;
    if (rc == 0)
        rc = nm_flush(&m, out, !only_results, err);
    nm_free(&m);
    return rc;
}

static int xlate_message(const cJSON *msg, int i, cJSON *out, struct tool_memory *mem,
                         struct apierr *err)
{
    char param[96];
    pathf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(msg))
        return field_bad_type(err, param, "an object", msg);
    pathf(param, sizeof param, "messages[%d].role", i);
    const char *role = need_str(msg, "role", param, false, err);
    if (!role)
        return -1;
    bool assistant = strcmp(role, "assistant") == 0;
    if (!assistant && strcmp(role, "user") != 0)
        return apierr_invalid(err, param,
                              "Invalid value for '%s': '%.40s'. Supported values are 'user' and "
                              "'assistant' (send system text in the top-level 'system').",
                              param, role);
    const cJSON *c = json_get(msg, "content");
    pathf(param, sizeof param, "messages[%d].content", i);
    if (cJSON_IsString(c)) {
        cJSON *o = cJSON_CreateObject();
        if (!json_push(out, o) || !json_add(o, "role", json_str_ref(role)) ||
            !json_add(o, "content", json_str_ref(c->valuestring)))
            return field_oom(err);
        return 0;
    }
    if (!cJSON_IsArray(c))
        return json_unset(c)
                   ? field_missing(err, param)
                   : field_bad_type(err, param, "a string or an array of content blocks", c);
    return xlate_blocks(c, i, assistant, out, mem, err);
}

static int xlate_system(const cJSON *sys, cJSON *out, struct apierr *err)
{
    if (json_unset(sys))
        return 0;
    struct joined j;
    joined_init(&j);
    int rc = 0, k = 0;
    if (cJSON_IsString(sys)) {
        rc = joined_add(&j, sys->valuestring) < 0 ? field_oom(err) : 0;
    } else if (cJSON_IsArray(sys)) {
        for (const cJSON *b = sys->child; b && rc == 0; b = b->next, k++) {
            char p[64];
            pathf(p, sizeof p, "system[%d]", k);
            if (!cJSON_IsObject(b)) {
                rc = field_bad_type(err, p, "an object", b);
                break;
            }
            pathf(p, sizeof p, "system[%d].type", k);
            const char *type = need_str(b, "type", p, false, err);
            if (type && strcmp(type, "text") != 0) {
                rc = apierr_invalid(err, p, "System blocks must be of type 'text'.");
                break;
            }
            pathf(p, sizeof p, "system[%d].text", k);
            const char *text = type ? need_str(b, "text", p, false, err) : NULL;
            rc = !text ? -1 : joined_add(&j, text) < 0 ? field_oom(err) : 0;
        }
    } else {
        rc = field_bad_type(err, "system", "a string or an array of text blocks", sys);
    }
    if (rc == 0 && j.n) {
        cJSON *o = cJSON_CreateObject();
        if (!json_push(out, o) || !json_add(o, "role", json_str_ref("system")) ||
            joined_put(&j, o, "content") < 0)
            rc = field_oom(err);
    }
    joined_free(&j);
    return rc;
}

static int xlate_messages(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *msgs = json_get(root, "messages");
    if (json_unset(msgs))
        return field_missing(err, "messages");
    if (!cJSON_IsArray(msgs))
        return field_bad_type(err, "messages", "an array", msgs);
    if (!msgs->child)
        return apierr_invalid(err, "messages", "'messages' must contain at least one message.");
    cJSON *out = cJSON_CreateArray();
    if (!json_add(native, "messages", out))
        return field_oom(err);
    if (xlate_system(json_get(root, "system"), out, err) < 0)
        return -1;
    struct tool_memory mem = {.n = 0};
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++)
        if (xlate_message(m, i, out, &mem, err) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tools                                                                      */

/* Is tools[k] one Ollama can be shown (a client tool with a schema of its
 * own)? 1 yes, 0 leave it out, -1 a 400. */
static int tool_kept(const cJSON *t, int k, struct apierr *err)
{
    char p[64];
    pathf(p, sizeof p, "tools[%d]", k);
    if (!cJSON_IsObject(t))
        return field_bad_type(err, p, "an object", t);
    const cJSON *type = json_get(t, "type");
    pathf(p, sizeof p, "tools[%d].type", k);
    if (!json_unset(type) && !cJSON_IsString(type))
        return field_bad_type(err, p, "a string", type);
    if (cJSON_IsString(type) && strcmp(type->valuestring, "custom") != 0)
        return 0;
    pathf(p, sizeof p, "tools[%d].name", k);
    if (!need_str(t, "name", p, true, err))
        return -1;
    const cJSON *desc = json_get(t, "description");
    pathf(p, sizeof p, "tools[%d].description", k);
    if (!json_unset(desc) && !cJSON_IsString(desc))
        return field_bad_type(err, p, "a string", desc);
    const cJSON *schema = json_get(t, "input_schema");
    pathf(p, sizeof p, "tools[%d].input_schema", k);
    if (!json_unset(schema) && !cJSON_IsObject(schema))
        return field_bad_type(err, p, "an object (a JSON Schema)", schema);
    return 1;
}

/* tool_choice -> *none (send no tools) or *only (send that one). */
static int read_choice(const cJSON *tc, bool *none, const char **only, struct apierr *err)
{
    *none = false;
    *only = NULL;
    if (json_unset(tc))
        return 0;
    if (!cJSON_IsObject(tc))
        return field_bad_type(err, "tool_choice", "an object", tc);
    const char *type = need_str(tc, "type", "tool_choice.type", false, err);
    if (!type)
        return -1;
    const cJSON *dp = json_get(tc, "disable_parallel_tool_use");
    if (!json_unset(dp) && !cJSON_IsBool(dp))
        return field_bad_type(err, "tool_choice.disable_parallel_tool_use", "a boolean", dp);
    if (strcmp(type, "auto") == 0 || strcmp(type, "any") == 0)
        return 0;
    if (strcmp(type, "none") == 0) {
        *none = true;
        return 0;
    }
    if (strcmp(type, "tool") == 0) {
        *only = need_str(tc, "name", "tool_choice.name", true, err);
        return *only ? 0 : -1;
    }
    return apierr_invalid(err, "tool_choice.type",
                          "Invalid value for 'tool_choice.type': '%.40s'. Supported values are "
                          "'auto', 'any', 'tool' and 'none'.",
                          type);
}

static int xlate_tools(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *tools = json_get(root, "tools");
    if (!json_unset(tools) && !cJSON_IsArray(tools))
        return field_bad_type(err, "tools", "an array", tools);
    bool none;
    const char *only;
    if (read_choice(json_get(root, "tool_choice"), &none, &only, err) < 0)
        return -1;
    cJSON *out = cJSON_CreateArray();
    if (!json_add(native, "tools", out))
        return field_oom(err);
    bool found = false;
    int k = 0;
    for (const cJSON *t = cJSON_IsArray(tools) ? tools->child : NULL; t; t = t->next, k++) {
        int kept = tool_kept(t, k, err);
        if (kept < 0)
            return -1;
        if (!kept)
            continue;
        const char *name = json_get(t, "name")->valuestring;
        if (only && strcmp(only, name) != 0)
            continue;
        found = true;
        if (none)
            continue;
        const cJSON *desc = json_get(t, "description"), *schema = json_get(t, "input_schema");
        cJSON *nt = cJSON_CreateObject(), *fn = NULL;
        if (!json_push(out, nt) || !json_add(nt, "type", json_str_ref("function")) ||
            !json_add(nt, "function", fn = cJSON_CreateObject()) ||
            !json_add(fn, "name", json_str_ref(name)) ||
            (cJSON_IsString(desc) &&
             !json_add(fn, "description", json_str_ref(desc->valuestring))) ||
            (cJSON_IsObject(schema) && !json_add(fn, "parameters", json_ref(schema))))
            return field_oom(err);
    }
    if (only && !found)
        return apierr_invalid(err, "tool_choice.name", "No tool named '%.64s' in 'tools'.", only);
    if (!out->child)
        cJSON_DeleteItemFromObjectCaseSensitive(native, "tools");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Options and thinking                                                       */

static int opt_number(const cJSON *root, const char *key, double max, cJSON *opts,
                      struct apierr *err)
{
    const cJSON *v = json_get(root, key);
    if (json_unset(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return field_bad_type(err, key, "a number", v);
    if (!isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > max)
        return apierr_invalid(err, key, "Invalid '%s': it must be a number from 0 to %g.", key,
                              max);
    return json_add(opts, key, json_ref(v)) ? 0 : field_oom(err);
}

static int read_options(const cJSON *root, cJSON *opts, struct apierr *err)
{
    if (opt_number(root, "temperature", INFINITY, opts, err) < 0 ||
        opt_number(root, "top_p", 1, opts, err) < 0)
        return -1;
    bool present;
    long long v;
    if (field_int(root, "top_k", 0, 2147483647, &present, &v, err) < 0)
        return -1;
    if (present && !json_add(opts, "top_k", json_ref(json_get(root, "top_k"))))
        return field_oom(err);
    if (field_int(root, "max_tokens", 1, 2147483647, &present, &v, err) < 0)
        return -1;
    if (present && !json_add(opts, "num_predict", json_ref(json_get(root, "max_tokens"))))
        return field_oom(err);
    const cJSON *stop = json_get(root, "stop_sequences");
    if (json_unset(stop))
        return 0;
    if (!cJSON_IsArray(stop))
        return field_bad_type(err, "stop_sequences", "an array of strings", stop);
    int k = 0;
    for (const cJSON *s = stop->child; s; s = s->next, k++) {
        if (!cJSON_IsString(s)) {
            char p[48];
            pathf(p, sizeof p, "stop_sequences[%d]", k);
            return field_bad_type(err, p, "a string", s);
        }
    }
    if (stop->child && !json_add(opts, "stop", json_ref(stop)))
        return field_oom(err);
    return 0;
}

static int xlate_thinking(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *th = json_get(root, "thinking");
    if (json_unset(th))
        return 0;
    if (!cJSON_IsObject(th))
        return field_bad_type(err, "thinking", "an object", th);
    const char *type = need_str(th, "type", "thinking.type", false, err);
    if (!type)
        return -1;
    cJSON *think;
    if (strcmp(type, "enabled") == 0 || strcmp(type, "adaptive") == 0)
        think = cJSON_CreateTrue();
    else if (strcmp(type, "disabled") == 0)
        think = cJSON_CreateFalse();
    else
        return apierr_invalid(err, "thinking.type",
                              "Invalid value for 'thinking.type': '%.40s'. Supported values are "
                              "'enabled', 'adaptive' and 'disabled'.",
                              type);
    return json_add(native, "think", think) ? 0 : field_oom(err);
}

/* One {type:"json_schema", schema} format object -> native format. */
static int put_format(const cJSON *f, const char *param, cJSON *native, struct apierr *err)
{
    char p[64];
    if (!cJSON_IsObject(f))
        return field_bad_type(err, param, "an object", f);
    pathf(p, sizeof p, "%s.type", param);
    const char *type = need_str(f, "type", p, false, err);
    if (!type)
        return -1;
    if (strcmp(type, "json_schema") != 0)
        return apierr_invalid(err, p, "Invalid value for '%s': '%.40s'. Supported: 'json_schema'.",
                              p, type);
    const cJSON *schema = json_get(f, "schema");
    pathf(p, sizeof p, "%s.schema", param);
    if (!cJSON_IsObject(schema))
        return json_unset(schema) ? field_missing(err, p)
                                  : field_bad_type(err, p, "an object (a JSON Schema)", schema);
    return json_add(native, "format", json_ref(schema)) ? 0 : field_oom(err);
}

/* Structured output: output_config.format, or the older beta's output_format
 * (the same object), becomes Ollama's format; output_config.effort is
 * ignored. */
static int xlate_format(const cJSON *root, cJSON *native, struct apierr *err)
{
    const cJSON *oc = json_get(root, "output_config");
    if (!json_unset(oc) && !cJSON_IsObject(oc))
        return field_bad_type(err, "output_config", "an object", oc);
    const cJSON *f = cJSON_IsObject(oc) ? json_get(oc, "format") : NULL;
    if (!json_unset(f))
        return put_format(f, "output_config.format", native, err);
    f = json_get(root, "output_format");
    if (!json_unset(f))
        return put_format(f, "output_format", native, err);
    return 0;
}

int messages_req_parse(struct messages_req *r, const char *body, size_t len, struct apierr *err)
{
    struct buf scratch;
    memset(r, 0, sizeof *r);
    buf_init(&scratch, SCRATCH_MAX);
    if (field_start(&scratch, body, len, &r->root, &r->model, &r->native, err) < 0)
        goto out_fail;
    const cJSON *root = r->root;
    const cJSON *st = json_get(root, "stream");
    if (!json_unset(st) && !cJSON_IsBool(st)) {
        field_bad_type(err, "stream", "a boolean", st);
        goto out_fail;
    }
    r->stream = cJSON_IsTrue(st);
    r->options = cJSON_CreateObject();
    if (!r->options) {
        field_oom(err);
        goto out_fail;
    }
    if (xlate_messages(root, r->native, err) < 0 || read_options(root, r->options, err) < 0 ||
        xlate_tools(root, r->native, err) < 0 || xlate_thinking(root, r->native, err) < 0 ||
        xlate_format(root, r->native, err) < 0)
        goto out_fail;
    if (!r->options->child) {
        cJSON_Delete(r->options);
        r->options = NULL;
    }
    buf_free(&scratch);
    return 0;

out_fail:
    buf_free(&scratch);
    messages_req_free(r);
    return -1;
}

void messages_req_free(struct messages_req *r)
{
    field_free(&r->options, &r->native, &r->root);
    r->model = NULL;
}

int messages_req_to_ollama(const struct messages_req *r, const char *upstream_model,
                           const cJSON *alias_options, struct buf *out, struct apierr *err)
{
    return ollama_body(upstream_model, r->stream, r->native, r->options, alias_options, out, err);
}
