/*
 * target: how to reach one backend, built once per configuration rather than
 * once per request: its base URL and the header list every request to it
 * carries (ours, then the backend's configured ones). The native path is
 * appended per request (target_url), since one backend serves /api/chat,
 * /api/generate, /api/embed and the rest; for those three, the translated
 * routes' paths, the whole URL is also kept parsed (target_parsed), because
 * libcurl otherwise parses the URL string of every transfer and then prints
 * it back (about 11,000 instructions, 8 % of a small request's cost).
 *
 * Ownership: an array of targets belongs to the snapshot that built it and
 * is immutable after target_array_new; any thread may read it while it holds
 * the snapshot.
 */
#ifndef GATEWAY_TARGET_H
#define GATEWAY_TARGET_H

#include "config.h"

#include <curl/curl.h>
#include <stddef.h>

/* The native paths kept parsed, in the order of struct target's parsed[]. */
#define TARGET_PARSED_PATHS                                                                        \
    {                                                                                              \
        "/api/chat", "/api/generate", "/api/embed"                                                 \
    }
#define TARGET_NPARSED 3

struct target {
    const char *base; /* borrowed from cfg: "http://host:port" (no '/' at the end) */
    size_t base_len;
    struct curl_slist *headers;    /* owned */
    CURLU *parsed[TARGET_NPARSED]; /* owned: base + each of TARGET_PARSED_PATHS */
};

/* One target per cfg->backends entry; NULL on OOM. */
struct target *target_array_new(const struct cfg *cfg);
void target_array_free(struct target *t, const struct cfg *cfg);

/* base + path, '\0'-terminated, into out. Returns its length, or -1 when it
 * does not fit in outsz (out is then ""). */
int target_url(const struct target *t, const char *path, size_t path_len, char *out, size_t outsz);

/* base + path already parsed, for libcurl's CURLOPT_CURLU (which copies it
 * per transfer and reads it only; shared by every worker), or NULL when path
 * is not one of TARGET_PARSED_PATHS. */
CURLU *target_parsed(const struct target *t, const char *path);

#endif
