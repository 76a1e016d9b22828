#include "models.h"

#include "keys.h"
#include "router.h"
#include "snapshot.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The shape of the list being written: OpenAI's, or Anthropic's for clients
 * that send anthropic-version, which also names its first and last ids. */
struct shape {
    bool anthropic;
    char first_id[512], last_id[512];
};

/* Anthropic's {"type":"model","id","display_name","created_at"}: there is no
 * display name but the id, and created_at is RFC 3339. */
static int anthropic_object(struct buf *out, const char *id, long created)
{
    char when[32];
    struct tm tm;
    time_t t = (time_t)created;
    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(when, sizeof when, "1970-01-01T00:00:00Z");
    int rc = buf_puts(out, "{\"type\":\"model\",\"id\":");
    rc |= buf_json_str(out, id, strlen(id));
    rc |= buf_puts(out, ",\"display_name\":");
    rc |= buf_json_str(out, id, strlen(id));
    rc |= buf_printf(out, ",\"created_at\":\"%s\"}", when);
    return rc ? -1 : 0;
}

static int model_object(struct buf *out, const char *id, long created, const char *owner);

/* One entry of a list in its shape, remembering the ids Anthropic's needs. */
static int list_entry(struct buf *out, struct shape *sh, bool first, const char *id, long created,
                      const char *owner)
{
    if (!first && buf_puts(out, ",") < 0)
        return -1;
    if (!sh || !sh->anthropic)
        return model_object(out, id, created, owner);
    if (first)
        snprintf(sh->first_id, sizeof sh->first_id, "%s", id);
    snprintf(sh->last_id, sizeof sh->last_id, "%s", id);
    return anthropic_object(out, id, created);
}

static int model_object(struct buf *out, const char *id, long created, const char *owner)
{
    if (buf_puts(out, "{\"id\":") < 0 || buf_json_str(out, id, strlen(id)) < 0 ||
        buf_printf(out, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":", created) < 0 ||
        buf_json_str(out, owner, strlen(owner)) < 0 || buf_puts(out, "}") < 0)
        return -1;
    return 0;
}

/* Who "owns" a backend model, as Ollama's own /v1/models says it: the
 * namespace before the last '/', or "library" for official models. */
static void owner_of(const char *name, char *owner, size_t size)
{
    const char *slash = strrchr(name, '/');
    if (!slash) {
        snprintf(owner, size, "library");
        return;
    }
    const char *start = name;
    for (const char *p = name; p < slash; p++)
        if (*p == '/')
            start = p + 1;
    snprintf(owner, size, "%.*s", (int)(slash - start), start);
}

struct list_ctx {
    struct buf *out;
    const struct cfg *cfg;
    const struct key *key; /* NULL = no scope to apply */
    struct shape *shape;
    bool first;
    int rc;
};

static void add_backend_model(void *ud, const struct backend_model *m)
{
    struct list_ctx *c = ud;
    const char *name = m->name;
    long modified = m->modified;
    if (c->key && !key_allows_model(c->key, name))
        return;
    /* An exact alias of the same name already stands for it. */
    for (size_t i = 0; i < c->cfg->naliases; i++)
        if (!c->cfg->aliases[i].glob && strcmp(c->cfg->aliases[i].name, name) == 0)
            return;
    char owner[128];
    owner_of(name, owner, sizeof owner);
    if (list_entry(c->out, c->shape, c->first, name, modified, owner) < 0)
        c->rc = -1;
    c->first = false;
}

static int list_shaped(const struct snapshot *s, const struct key *key, int64_t started_ms,
                       struct shape *sh, struct buf *out)
{
    const struct cfg *cfg = s->cfg;
    struct list_ctx c = {.out = out, .cfg = cfg, .key = key, .shape = sh, .first = true, .rc = 0};
    long created = (long)(started_ms / 1000);
    if (buf_puts(out, sh->anthropic ? "{\"data\":[" : "{\"object\":\"list\",\"data\":[") < 0)
        return -1;
    /* Aliases with an exact name are models a client can ask for; globs are
     * patterns, not names, so they are not listed. */
    for (size_t i = 0; i < cfg->naliases; i++) {
        if (cfg->aliases[i].glob || (key && !key_allows_model(key, cfg->aliases[i].name)))
            continue;
        if (list_entry(out, sh, c.first, cfg->aliases[i].name, created, "ollama-gateway") < 0)
            return -1;
        c.first = false;
    }
    if (cfg->expose_backend_models)
        backends_each_model(s->backends, false, add_backend_model, &c);
    if (c.rc < 0 || buf_puts(out, "]") < 0)
        return -1;
    if (!sh->anthropic)
        return buf_puts(out, "}") < 0 ? -1 : 0;
    /* one page holds every model: there is never more */
    int rc = buf_puts(out, ",\"has_more\":false,\"first_id\":");
    rc |= c.first ? buf_puts(out, "null") : buf_json_str(out, sh->first_id, strlen(sh->first_id));
    rc |= buf_puts(out, ",\"last_id\":");
    rc |= c.first ? buf_puts(out, "null") : buf_json_str(out, sh->last_id, strlen(sh->last_id));
    rc |= buf_puts(out, "}");
    return rc ? -1 : 0;
}

int models_list(const struct snapshot *s, const struct key *key, int64_t started_ms,
                struct buf *out)
{
    struct shape sh = {.anthropic = false};
    return list_shaped(s, key, started_ms, &sh, out);
}

int models_list_anthropic(const struct snapshot *s, const struct key *key, int64_t started_ms,
                          struct buf *out)
{
    struct shape sh = {.anthropic = true};
    return list_shaped(s, key, started_ms, &sh, out);
}

struct find_ctx {
    const char *id;
    char found[512];
    long modified;
};

static void find_model(void *ud, const struct backend_model *m)
{
    struct find_ctx *f = ud;
    const char *name = m->name;
    long modified = m->modified;
    if (!f->found[0] && (strcmp(name, f->id) == 0 || router_model_eq(name, f->id))) {
        snprintf(f->found, sizeof f->found, "%s", name);
        f->modified = modified;
    }
}

static int get_shaped(const struct snapshot *s, int64_t started_ms, const char *id, bool anthropic,
                      struct buf *out)
{
    const struct cfg *cfg = s->cfg;
    for (size_t i = 0; i < cfg->naliases; i++)
        if (!cfg->aliases[i].glob && strcmp(cfg->aliases[i].name, id) == 0)
            return anthropic ? anthropic_object(out, id, (long)(started_ms / 1000))
                             : model_object(out, id, (long)(started_ms / 1000), "ollama-gateway");
    if (!cfg->expose_backend_models)
        return -1;
    struct find_ctx f = {.id = id};
    backends_each_model(s->backends, false, find_model, &f);
    if (!f.found[0])
        return -1;
    char owner[128];
    owner_of(f.found, owner, sizeof owner);
    /* The id is echoed as the client spelled it. */
    return anthropic ? anthropic_object(out, id, f.modified)
                     : model_object(out, id, f.modified, owner);
}

int models_get(const struct snapshot *s, int64_t started_ms, const char *id, struct buf *out)
{
    return get_shaped(s, started_ms, id, false, out);
}

int models_get_anthropic(const struct snapshot *s, int64_t started_ms, const char *id,
                         struct buf *out)
{
    return get_shaped(s, started_ms, id, true, out);
}

/* One native model entry: as the backend described it, or (as) under an
 * alias's name. */
static int native_entry(struct buf *out, const struct backend_model *m, const char *as)
{
    if (!as && m->json)
        return buf_puts(out, m->json);
    cJSON *o = m->json ? cJSON_Parse(m->json) : cJSON_CreateObject();
    int rc = -1;
    const char *name = as ? as : m->name;
    if (cJSON_IsObject(o)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "name");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "model");
        char *text = NULL;
        if (cJSON_AddStringToObject(o, "name", name) && cJSON_AddStringToObject(o, "model", name) &&
            (text = cJSON_PrintUnformatted(o)))
            rc = buf_puts(out, text);
        cJSON_free(text);
    }
    cJSON_Delete(o);
    return rc;
}

struct native_ctx {
    struct buf *out;
    const struct cfg *cfg;
    const struct key *key;
    const struct cfg_alias *alias; /* looking for its model, or NULL: listing backend models */
    bool found;                    /* the alias's model was listed */
    bool first;
    int rc;
};

static void native_add(struct native_ctx *c, const struct backend_model *m, const char *as)
{
    if ((!c->first && buf_puts(c->out, ",") < 0) || native_entry(c->out, m, as) < 0)
        c->rc = -1;
    c->first = false;
}

static void native_model(void *ud, const struct backend_model *m)
{
    struct native_ctx *c = ud;
    if (c->alias) {
        if (c->found)
            return;
        for (size_t i = 0; i < c->alias->nmodels && !c->found; i++)
            c->found = router_model_eq(m->name, c->alias->models[i]);
        if (c->found)
            native_add(c, m, c->alias->name);
        return;
    }
    if (c->key && !key_allows_model(c->key, m->name))
        return;
    for (size_t i = 0; i < c->cfg->naliases; i++)
        if (!c->cfg->aliases[i].glob && strcmp(c->cfg->aliases[i].name, m->name) == 0)
            return; /* the alias of the same name stands for it */
    native_add(c, m, NULL);
}

int models_native_list(const struct snapshot *s, const struct key *key, bool loaded,
                       struct buf *out)
{
    const struct cfg *cfg = s->cfg;
    struct native_ctx c = {.out = out, .cfg = cfg, .key = key, .first = true};
    if (buf_puts(out, "{\"models\":[") < 0)
        return -1;
    for (size_t i = 0; i < cfg->naliases && c.rc == 0; i++) {
        const struct cfg_alias *a = &cfg->aliases[i];
        if (a->glob || (key && !key_allows_model(key, a->name)))
            continue;
        c.alias = a;
        c.found = false;
        backends_each_model(s->backends, loaded, native_model, &c);
    }
    c.alias = NULL;
    if (cfg->expose_backend_models)
        backends_each_model(s->backends, loaded, native_model, &c);
    if (c.rc < 0 || buf_puts(out, "]}") < 0)
        return -1;
    return 0;
}
