#include "target.h"

#include <stdlib.h>
#include <string.h>

/* Append line to *list; on failure free the whole list (curl leaves it). */
static int header_append(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l) {
        curl_slist_free_all(*list);
        *list = NULL;
        return -1;
    }
    *list = l;
    return 0;
}

static const char *const parsed_paths[TARGET_NPARSED] = TARGET_PARSED_PATHS;

/* base + path parsed as libcurl parses a CURLOPT_URL string. NULL on OOM
 * (the base was checked when the configuration was read). */
static CURLU *parse(const struct target *t, const char *path)
{
    char url[4096];
    CURLU *u = curl_url();
    if (!u || target_url(t, path, strlen(path), url, sizeof url) < 0 ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL;
    }
    return u;
}

struct target *target_array_new(const struct cfg *cfg)
{
    struct target *t = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof *t);
    if (!t)
        return NULL;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const struct cfg_backend *be = &cfg->backends[i];
        t[i].base = be->url;
        t[i].base_len = strlen(be->url);
        /* Expect: off, so a large body does not wait for 100-continue. */
        if (header_append(&t[i].headers, "Content-Type: application/json") < 0 ||
            header_append(&t[i].headers, "Expect:") < 0)
            goto fail;
        for (const char *const *h = be->headers; h && *h; h++)
            if (header_append(&t[i].headers, *h) < 0)
                goto fail;
        for (size_t k = 0; k < TARGET_NPARSED; k++)
            if (!(t[i].parsed[k] = parse(&t[i], parsed_paths[k])))
                goto fail;
    }
    return t;
fail:
    target_array_free(t, cfg);
    return NULL;
}

void target_array_free(struct target *t, const struct cfg *cfg)
{
    if (!t)
        return;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        curl_slist_free_all(t[i].headers);
        for (size_t k = 0; k < TARGET_NPARSED; k++)
            curl_url_cleanup(t[i].parsed[k]);
    }
    free(t);
}

int target_url(const struct target *t, const char *path, size_t path_len, char *out, size_t outsz)
{
    if (t->base_len + path_len >= outsz) {
        if (outsz)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, t->base, t->base_len);
    memcpy(out + t->base_len, path, path_len);
    out[t->base_len + path_len] = '\0';
    return (int)(t->base_len + path_len);
}

CURLU *target_parsed(const struct target *t, const char *path)
{
    for (size_t k = 0; k < TARGET_NPARSED; k++)
        if (strcmp(path, parsed_paths[k]) == 0)
            return t->parsed[k];
    return NULL;
}
