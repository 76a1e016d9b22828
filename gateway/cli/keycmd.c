/*
 * keycmd.c: `ollama-gateway key ...`.
 *
 * Every subcommand loads the configuration (for keys_file), and those that
 * change something go through the same steps: lock, read and check the file
 * with the daemon's loader, edit its cJSON tree (other records are kept as
 * they are), print it, check the result with the loader again, write it
 * with keys_write_file(), unlock. Exit status: 0 done, 1 the user must fix
 * something (usage, configuration, keys file), 2 the system failed us.
 */
#include "keycmd.h"

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keysfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXIT_BAD 1     /* usage, configuration, keys file */
#define EXIT_RUNTIME 2 /* I/O, memory */

#define NAME_MAX_BYTES 128 /* as keysfile.c checks */
#define MODEL_MAX_BYTES 512
#define MODELS_MAX 1000
#define LIMIT_MAX 1000000000ull

enum sub { SUB_CREATE, SUB_LIST, SUB_REVOKE, SUB_DISABLE, SUB_ENABLE, SUB_INIT };

enum opt_bit {
    O_MODELS = 1 << 0,
    O_RPM = 1 << 1,
    O_TPM = 1 << 2,
    O_INFLIGHT = 1 << 3,
    O_EXPIRES = 1 << 4,
    O_ADMIN = 1 << 5,
    O_JSON = 1 << 6,
    O_CONFIG = 1 << 7,
};

enum arg_rule { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

static const struct subcmd {
    const char *name;
    enum sub sub;
    unsigned opts;
    enum arg_rule arg;
    const char *argname;
    const char *synopsis;
} subcmds[] = {
    {"create", SUB_CREATE, O_MODELS | O_RPM | O_TPM | O_INFLIGHT | O_EXPIRES | O_ADMIN | O_CONFIG,
     ARG_REQUIRED, "NAME",
     "key create NAME [--models GLOB,...] [--rpm N] [--tpm N] [--max-inflight N]\n"
     "                                 [--expires YYYY-MM-DD] [--admin] [-c FILE]"},
    {"list", SUB_LIST, O_JSON | O_CONFIG, ARG_NONE, NULL, "key list [--json] [-c FILE]"},
    {"revoke", SUB_REVOKE, O_CONFIG, ARG_REQUIRED, "ID", "key revoke ID [-c FILE]"},
    {"disable", SUB_DISABLE, O_CONFIG, ARG_REQUIRED, "ID", "key disable ID [-c FILE]"},
    {"enable", SUB_ENABLE, O_CONFIG, ARG_REQUIRED, "ID", "key enable ID [-c FILE]"},
    {"init", SUB_INIT, O_CONFIG, ARG_OPTIONAL, "NAME", "key init [NAME] [-c FILE]"},
};
#define NSUBCMDS (sizeof subcmds / sizeof subcmds[0])

static const struct keyopt {
    const char *name;
    enum opt_bit bit;
    bool value;
} options[] = {
    {"--models", O_MODELS, true},   {"--rpm", O_RPM, true},
    {"--tpm", O_TPM, true},         {"--max-inflight", O_INFLIGHT, true},
    {"--expires", O_EXPIRES, true}, {"--admin", O_ADMIN, false},
    {"--json", O_JSON, false},      {"-c", O_CONFIG, true},
    {"--config", O_CONFIG, true},
};
#define NOPTIONS (sizeof options / sizeof options[0])

struct opts {
    const struct subcmd *sc;
    const char *config;
    const char *arg;         /* NAME or ID */
    char id[KEY_ID_LEN + 1]; /* the ID taken from a whole secret */
    const char *models;
    unsigned rpm, tpm, max_inflight;
    const char *expires;
    int64_t expires_at;
    bool admin, json;
};

/* What a running subcommand holds; released by ctx_free(). */
struct ctx {
    const struct opts *o;
    char cmd[32]; /* "key create", for messages */
    struct cfg *cfg;
    const char *file; /* cfg->keys_file */
    int lockfd;
    struct keyring *kr; /* the file as it is now */
    cJSON *root;        /* the same, to edit */
    cJSON *keys;        /* root's "keys" array */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ollama-gateway key SUBCOMMAND ...\n");
    for (size_t i = 0; i < NSUBCMDS; i++)
        fprintf(f, "       ollama-gateway %s\n", subcmds[i].synopsis);
    fprintf(f, "\nFILE is the configuration (it names keys_file). A new key's secret is\n"
               "printed once, on stdout; messages go to stderr.\n");
}

/* ---- arguments ---- */

static bool bad_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int parse_limit(const char *s, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
        return -1;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v > LIMIT_MAX)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* --models: non-empty globs separated by commas. */
static int check_models(const char *cmd, const char *s)
{
    size_t count = 0;
    for (const char *p = s;; count++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0) {
            fprintf(stderr,
                    "ollama-gateway %s: --models: an empty model name in \"%s\"; give model "
                    "names or globs separated by commas, e.g. --models 'llama3*,qwen2.5:14b'\n",
                    cmd, s);
            return -1;
        }
        if (n > MODEL_MAX_BYTES) {
            fprintf(stderr, "ollama-gateway %s: --models: a name longer than %d bytes\n", cmd,
                    MODEL_MAX_BYTES);
            return -1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (count + 1 > MODELS_MAX) {
        fprintf(stderr,
                "ollama-gateway %s: --models: more than %d names; use globs like 'llama3*'\n", cmd,
                MODELS_MAX);
        return -1;
    }
    return 0;
}

static int check_name(const char *cmd, const char *name)
{
    const char *why = NULL;
    if (!*name)
        why = "is empty";
    else if (strlen(name) > NAME_MAX_BYTES)
        why = "is longer than 128 bytes";
    else if (bad_text(name))
        why = "contains control characters";
    if (!why)
        return 0;
    fprintf(stderr, "ollama-gateway %s: the NAME %s; give the key a short label, like \"ci\"\n",
            cmd, why);
    return -1;
}

/* Parse argv[2..] for o->sc. 0, or -1 after saying what is wrong. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    const struct subcmd *sc = o->sc;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "key %s", sc->name);
    unsigned given = 0;
    bool only_args = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!only_args && strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        if (only_args || a[0] != '-' || a[1] == '\0') {
            if (sc->arg == ARG_NONE || o->arg) {
                fprintf(stderr,
                        "ollama-gateway %s: unexpected argument \"%s\"\nusage: ollama-gateway %s\n",
                        cmd, a, sc->synopsis);
                return -1;
            }
            o->arg = a;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const struct keyopt *opt = NULL;
        for (size_t k = 0; k < NOPTIONS; k++)
            if (strlen(options[k].name) == nlen && strncmp(options[k].name, a, nlen) == 0)
                opt = &options[k];
        if (!opt || !(sc->opts & opt->bit)) {
            fprintf(stderr,
                    "ollama-gateway %s: unknown option \"%.*s\"\nusage: ollama-gateway %s\n", cmd,
                    (int)nlen, a, sc->synopsis);
            return -1;
        }
        const char *val = NULL;
        if (opt->value) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "ollama-gateway %s: %s needs a value\nusage: ollama-gateway %s\n",
                        cmd, opt->name, sc->synopsis);
                return -1;
            }
        } else if (eq) {
            fprintf(stderr, "ollama-gateway %s: %s takes no value\n", cmd, opt->name);
            return -1;
        }
        if (given & opt->bit) {
            fprintf(stderr, "ollama-gateway %s: %s is given twice; give it once\n", cmd, opt->name);
            return -1;
        }
        given |= opt->bit;
        unsigned *limit = NULL;
        switch (opt->bit) {
        case O_MODELS:
            if (check_models(cmd, val) < 0)
                return -1;
            o->models = val;
            break;
        case O_RPM:
            limit = &o->rpm;
            break;
        case O_TPM:
            limit = &o->tpm;
            break;
        case O_INFLIGHT:
            limit = &o->max_inflight;
            break;
        case O_EXPIRES:
            if (keys_parse_day(val, &o->expires_at) < 0) {
                fprintf(stderr,
                        "ollama-gateway %s: --expires: \"%s\" is not a date YYYY-MM-DD (the "
                        "key works until the end of that day, UTC)\n",
                        cmd, val);
                return -1;
            }
            if (o->expires_at <= (int64_t)time(NULL)) {
                fprintf(stderr,
                        "ollama-gateway %s: --expires: %s is already over (UTC): the key would "
                        "never work; give a later date\n",
                        cmd, val);
                return -1;
            }
            o->expires = val;
            break;
        case O_ADMIN:
            o->admin = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_CONFIG:
            if (!*val) {
                fprintf(stderr, "ollama-gateway %s: -c needs a file name\n", cmd);
                return -1;
            }
            o->config = val;
            break;
        }
        if (limit && parse_limit(val, limit) < 0) {
            fprintf(stderr,
                    "ollama-gateway %s: %s: \"%s\" is not a whole number from 0 to 1000000000 "
                    "(0 = no limit)\n",
                    cmd, opt->name, val);
            return -1;
        }
    }
    if (sc->arg == ARG_REQUIRED && !o->arg) {
        fprintf(stderr, "ollama-gateway %s: missing %s\nusage: ollama-gateway %s\n", cmd,
                sc->argname, sc->synopsis);
        return -1;
    }
    if ((sc->sub == SUB_CREATE || sc->sub == SUB_INIT) && o->arg && check_name(cmd, o->arg) < 0)
        return -1;
    if (sc->sub == SUB_REVOKE || sc->sub == SUB_DISABLE || sc->sub == SUB_ENABLE) {
        /* The whole secret names its key too: og-<id>-... */
        const char *id = o->arg;
        if (strncmp(id, "og-", 3) == 0 && strlen(id) == KEY_SECRET_LEN) {
            memcpy(o->id, id + 3, KEY_ID_LEN);
            o->id[KEY_ID_LEN] = '\0';
            id = o->id;
        }
        if (!keys_is_id(id, strlen(id))) {
            /* never echo what may be a mistyped secret */
            bool secretish = strncmp(o->arg, "og-", 3) == 0;
            fprintf(stderr,
                    "ollama-gateway %s: %s%s%s is not a key id (12 characters a-z and 0-9, as "
                    "`ollama-gateway key list` shows)\n",
                    cmd, secretish ? "the argument" : "\"", secretish ? "" : o->arg,
                    secretish ? "" : "\"");
            return -1;
        }
        o->arg = id;
    }
    return 0;
}

/* ---- shared steps ---- */

static void fmt_time(int64_t t, char *out, size_t n)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, n, "?");
}

/* The day an expires value ends, YYYY-MM-DD. */
static void fmt_day(int64_t end, char *out, size_t n)
{
    time_t s = (time_t)(end - 1);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, n, "%Y-%m-%d", &tm))
        snprintf(out, n, "?");
}

static const char *state_of(const struct key *k, int64_t now)
{
    if (k->revoked)
        return "revoked";
    if (k->disabled)
        return "disabled";
    if (k->expires && now >= k->expires)
        return "expired";
    return "active";
}

static int load_config(struct ctx *c)
{
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    c->cfg = cfg_load(c->o->config, &errs);
    if (errs.text.len)
        fwrite(errs.text.p, 1, errs.text.len, stderr);
    cfg_errors_free(&errs);
    if (!c->cfg)
        return EXIT_BAD;
    c->file = c->cfg->keys_file;
    return 0;
}

/* Serialise with other `key` commands (keys_lock()). */
static int lock_keys(struct ctx *c)
{
    char why[PATH_MAX + 256];
    c->lockfd = keys_lock(c->file, why, sizeof why);
    if (c->lockfd < 0) {
        fprintf(stderr, "ollama-gateway %s: %s\n", c->cmd, why);
        return EXIT_RUNTIME;
    }
    return 0;
}

static cJSON *empty_file(void)
{
    cJSON *root = cJSON_CreateObject();
    if (root &&
        (!cJSON_AddNumberToObject(root, "version", 1) || !cJSON_AddArrayToObject(root, "keys"))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* Read and check the keys file into c->kr, and into c->root and c->keys for
 * editing. When missing_ok, a file that does not exist yet is an empty one. */
static int read_keys(struct ctx *c, bool missing_ok)
{
    char why[512];
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    switch (keys_read_file(c->file, &text, &len, why, sizeof why)) {
    case KEYS_READ_OK:
        break;
    case KEYS_READ_MISSING:
        if (!missing_ok) {
            fprintf(stderr,
                    "%s: no keys file; create a key with: ollama-gateway key create "
                    "NAME -c %s\n",
                    c->file, c->o->config);
            return EXIT_BAD;
        }
        c->kr = keyring_empty();
        c->root = empty_file();
        goto out;
    case KEYS_READ_REFUSED:
        fprintf(stderr, "%s: %s\n", c->file, why);
        return EXIT_BAD;
    case KEYS_READ_FAILED:
        fprintf(stderr, "%s: %s\n", c->file, why);
        return EXIT_RUNTIME;
    }
    struct cfg_errors errs;
    cfg_errors_init(&errs);
    c->kr = keyring_load_buffer(text, len, c->file, &errs);
    if (errs.text.len)
        fwrite(errs.text.p, 1, errs.text.len, stderr);
    cfg_errors_free(&errs);
    if (!c->kr) {
        if (c->o->sc->sub != SUB_LIST)
            fprintf(stderr, "%s: not changed; correct the problems above first\n", c->file);
        rc = EXIT_BAD;
        goto out;
    }
    c->root = cJSON_ParseWithLength(text, len); /* it just parsed, so only memory can fail */
out:
    free(text);
    if (!rc && (!c->kr || !c->root)) {
        fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
        rc = EXIT_RUNTIME;
    }
    if (!rc)
        c->keys = cJSON_GetObjectItemCaseSensitive(c->root, "keys");
    return rc;
}

/* Print c->root, check it as the daemon would, and replace the file. */
static int write_keys(struct ctx *c)
{
    int rc = EXIT_RUNTIME;
    struct buf b;
    struct cfg_errors errs;
    struct keyring *check = NULL;
    buf_init(&b, KEYS_MAX_FILE_BYTES);
    cfg_errors_init(&errs);
    char *json = cJSON_Print(c->root);
    if (!json) {
        fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
        goto out;
    }
    int added = buf_puts(&b, json) < 0 ? -1 : buf_puts(&b, "\n");
    cJSON_free(json);
    if (added < 0) {
        fprintf(stderr, "%s: not changed: it would be larger than %u MiB\n", c->file,
                KEYS_MAX_FILE_BYTES >> 20);
        rc = EXIT_BAD;
        goto out;
    }
    /* Never write a file the daemon would refuse. */
    check = keyring_load_buffer(b.p, b.len, c->file, &errs);
    if (!check) {
        if (errs.text.len)
            fwrite(errs.text.p, 1, errs.text.len, stderr);
        fprintf(stderr, "%s: not changed: the result would have the problems above\n", c->file);
        rc = EXIT_BAD;
        goto out;
    }
    if (keys_write_file(c->file, b.p, b.len) < 0) { /* it said why */
        fprintf(stderr, "%s: not changed\n", c->file);
        goto out;
    }
    rc = 0;
out:
    keyring_unref(check);
    cfg_errors_free(&errs);
    buf_free(&b);
    return rc;
}

static cJSON *record_of(cJSON *keys, const char *id)
{
    cJSON *r;
    cJSON_ArrayForEach(r, keys)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "id");
        if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0)
            return r;
    }
    return NULL;
}

/* Set rec[name] = value (value is consumed). */
static int set_field(cJSON *rec, const char *name, cJSON *value)
{
    if (!value)
        return -1;
    bool ok = cJSON_GetObjectItemCaseSensitive(rec, name)
                  ? cJSON_ReplaceItemInObjectCaseSensitive(rec, name, value)
                  : cJSON_AddItemToObject(rec, name, value);
    if (!ok)
        cJSON_Delete(value);
    return ok ? 0 : -1;
}

static void ctx_free(struct ctx *c)
{
    cJSON_Delete(c->root);
    keyring_unref(c->kr);
    if (c->lockfd >= 0)
        close(c->lockfd); /* releases the lock */
    cfg_unref(c->cfg);
}

/* ---- create, init ---- */

/* The record for a new key, or NULL when memory ran out. */
static cJSON *new_record(const struct opts *o, const char *name, const char *id,
                         const unsigned char hash[KEY_HASH_LEN])
{
    char hex[sizeof "blake2b:" + 2 * KEY_HASH_LEN], created[32];
    memcpy(hex, "blake2b:", 8);
    sodium_bin2hex(hex + 8, sizeof hex - 8, hash, KEY_HASH_LEN);
    fmt_time((int64_t)time(NULL), created, sizeof created);
    cJSON *rec = cJSON_CreateObject();
    bool ok = rec && cJSON_AddStringToObject(rec, "id", id) &&
              cJSON_AddStringToObject(rec, "name", name) &&
              cJSON_AddStringToObject(rec, "hash", hex);
    if (ok && o->models) {
        cJSON *arr = cJSON_AddArrayToObject(rec, "models");
        ok = arr != NULL;
        for (const char *p = o->models; ok;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char glob[MODEL_MAX_BYTES + 1];
            snprintf(glob, sizeof glob, "%.*s", (int)n, p);
            cJSON *s = cJSON_CreateString(glob);
            ok = s && cJSON_AddItemToArray(arr, s);
            if (!ok)
                cJSON_Delete(s);
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    if (ok && o->rpm)
        ok = cJSON_AddNumberToObject(rec, "rpm", o->rpm) != NULL;
    if (ok && o->tpm)
        ok = cJSON_AddNumberToObject(rec, "tpm", o->tpm) != NULL;
    if (ok && o->max_inflight)
        ok = cJSON_AddNumberToObject(rec, "max_inflight", o->max_inflight) != NULL;
    if (ok && o->expires)
        ok = cJSON_AddStringToObject(rec, "expires", o->expires) != NULL;
    if (ok && o->admin)
        ok = cJSON_AddTrueToObject(rec, "admin") != NULL;
    if (ok)
        ok = cJSON_AddStringToObject(rec, "created", created) != NULL;
    if (!ok) {
        cJSON_Delete(rec);
        rec = NULL;
    }
    return rec;
}

/* Add a key named name to the file held in c; on success the secret is in
 * secret[] and its id in id[]. */
static int add_key(struct ctx *c, const char *name, char *id, char *secret)
{
    unsigned char hash[KEY_HASH_LEN];
    /* 36^12 ids make a clash all but impossible; all but is not never. */
    int tries = 0;
    do
        key_generate(id, secret, hash);
    while ((keyring_find(c->kr, id) || record_of(c->keys, id)) && ++tries < 100);
    if (tries == 100) {
        fprintf(stderr, "ollama-gateway %s: cannot find an unused key id\n", c->cmd);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < c->kr->n; i++)
        if (strcmp(c->kr->v[i].name, name) == 0) {
            fprintf(stderr,
                    "warning: key %s is also named \"%s\" (names need not be unique; ids are)\n",
                    c->kr->v[i].id, name);
            break;
        }
    cJSON *rec = new_record(c->o, name, id, hash);
    if (!rec || !cJSON_AddItemToArray(c->keys, rec)) {
        cJSON_Delete(rec);
        fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
        return EXIT_RUNTIME;
    }
    return write_keys(c);
}

/* The secret, on stdout and alone there. */
static int print_secret(struct ctx *c, const char *id, const char *secret)
{
    if (printf("%s\n", secret) < 0 || fflush(stdout) != 0) {
        fprintf(stderr,
                "ollama-gateway %s: cannot print the secret: %s; key %s was created but its "
                "secret is lost: revoke it with: ollama-gateway key revoke %s -c %s\n",
                c->cmd, strerror(errno), id, id, c->o->config);
        return EXIT_RUNTIME;
    }
    return 0;
}

static void auth_note(const struct ctx *c)
{
    if (c->cfg->auth == CFG_AUTH_NONE)
        fprintf(stderr,
                "note: %s has \"auth\": \"none\": the gateway checks no key until it is "
                "\"keys\"\n",
                c->o->config);
}

static int cmd_create(struct ctx *c)
{
    char id[KEY_ID_LEN + 1], secret[KEY_SECRET_SIZE];
    int rc = lock_keys(c);
    if (!rc)
        rc = read_keys(c, true);
    if (!rc)
        rc = add_key(c, c->o->arg, id, secret);
    if (!rc)
        rc = print_secret(c, id, secret);
    if (!rc) {
        fprintf(stderr, "created key %s (%s) in %s\n", id, c->o->arg, c->file);
        auth_note(c);
    }
    sodium_memzero(secret, sizeof secret);
    return rc;
}

/* "http[s]://HOST:PORT" that reaches the first listen address from this machine. */
static void base_url(const struct cfg *cfg, char *out, size_t n)
{
    const struct netaddr *a = &cfg->listen[0];
    const char *scheme = a->tls ? "https" : "http";
    if (!a->wildcard)
        snprintf(out, n, "%s://%s", scheme, a->text);
    else if (a->family == AF_INET6)
        snprintf(out, n, "%s://[::1]:%u", scheme, a->port);
    else
        snprintf(out, n, "%s://127.0.0.1:%u", scheme, a->port);
}

static int cmd_init(struct ctx *c)
{
    char id[KEY_ID_LEN + 1], secret[KEY_SECRET_SIZE];
    const char *name = c->o->arg ? c->o->arg : "default";
    int rc = lock_keys(c);
    if (!rc)
        rc = read_keys(c, true);
    if (rc)
        return rc;
    size_t usable = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < c->kr->n; i++)
        usable += strcmp(state_of(&c->kr->v[i], now), "active") == 0;
    if (usable) {
        fprintf(stderr,
                "keys file %s already holds %zu usable key(s); list them with: ollama-gateway "
                "key list -c %s\n",
                c->file, usable, c->o->config);
        return 0;
    }
    rc = add_key(c, name, id, secret);
    if (!rc)
        rc = print_secret(c, id, secret);
    if (!rc) {
        char url[300];
        base_url(c->cfg, url, sizeof url);
        fprintf(stderr,
                "created key %s (%s) in %s\n"
                "\n"
                "The line above is the key's secret. It is shown only this once (the gateway\n"
                "keeps only its hash): store it now, in a password manager or your client's\n"
                "configuration.\n"
                "\n"
                "Try it:\n"
                "  curl %s/v1/models -H \"Authorization: Bearer %s\"\n"
                "\n"
                "OpenAI SDK for Python:\n"
                "  from openai import OpenAI\n"
                "  client = OpenAI(base_url=\"%s/v1\", api_key=\"%s\")\n"
                "\n"
                "OpenAI SDK for Node:\n"
                "  import OpenAI from \"openai\";\n"
                "  const client = new OpenAI({ baseURL: \"%s/v1\", apiKey: \"%s\" });\n"
                "\n"
                "More keys: ollama-gateway key create NAME -c %s\n",
                id, name, c->file, url, secret, url, secret, url, secret, c->o->config);
        auth_note(c);
    }
    sodium_memzero(secret, sizeof secret);
    return rc;
}

/* ---- revoke, disable, enable ---- */

static int cmd_change(struct ctx *c)
{
    const char *id = c->o->arg;
    int rc = lock_keys(c);
    if (!rc)
        rc = read_keys(c, false);
    if (rc)
        return rc;
    const struct key *k = keyring_find(c->kr, id);
    cJSON *rec = record_of(c->keys, id);
    if (!k || !rec) {
        fprintf(stderr,
                "ollama-gateway %s: no key with id %s in %s; list them with: "
                "ollama-gateway key list -c %s\n",
                c->cmd, id, c->file, c->o->config);
        return EXIT_BAD;
    }
    char when[32];
    const char *done;
    switch (c->o->sc->sub) {
    case SUB_REVOKE:
        if (k->revoked) {
            fmt_time(k->revoked, when, sizeof when);
            fprintf(stderr, "key %s (%s) was already revoked at %s\n", id, k->name, when);
            return 0;
        }
        fmt_time((int64_t)time(NULL), when, sizeof when);
        if (set_field(rec, "revoked", cJSON_CreateString(when)) < 0)
            goto oom;
        done = "revoked";
        break;
    case SUB_DISABLE:
        if (k->revoked || k->disabled) {
            fprintf(stderr, "key %s (%s) is already %s\n", id, k->name,
                    k->revoked ? "revoked" : "disabled");
            return 0;
        }
        if (set_field(rec, "disabled", cJSON_CreateTrue()) < 0)
            goto oom;
        done = "disabled";
        break;
    case SUB_ENABLE:
        if (k->revoked) {
            fprintf(stderr,
                    "ollama-gateway %s: key %s (%s) has been revoked, and a revoked key cannot "
                    "be enabled again; create a new one with: ollama-gateway key create NAME "
                    "-c %s\n",
                    c->cmd, id, k->name, c->o->config);
            return EXIT_BAD;
        }
        if (!k->disabled) {
            fprintf(stderr, "key %s (%s) is not disabled\n", id, k->name);
            return 0;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "disabled");
        done = "enabled";
        break;
    default:
        return EXIT_BAD;
    }
    rc = write_keys(c);
    if (rc)
        return rc;
    fprintf(stderr, "%s key %s (%s) in %s\n", done, id, k->name, c->file);
    if (c->o->sc->sub == SUB_ENABLE && k->expires && (int64_t)time(NULL) >= k->expires) {
        fmt_day(k->expires, when, sizeof when);
        fprintf(stderr, "note: it expired at the end of %s (UTC), so it is still refused\n", when);
    }
    return 0;
oom:
    fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
    return EXIT_RUNTIME;
}

/* ---- list ---- */

enum {
    COL_ID,
    COL_NAME,
    COL_MODELS,
    COL_RPM,
    COL_TPM,
    COL_INFLIGHT,
    COL_EXPIRES,
    COL_STATE,
    COL_CREATED,
    COL_ADMIN,
    NCOLS
};

static const char *const col_titles[NCOLS] = {"ID",       "NAME",    "MODELS", "RPM",     "TPM",
                                              "INFLIGHT", "EXPIRES", "STATE",  "CREATED", "ADMIN"};

/* One row's cells; models in m (which the row borrows). */
struct row {
    const char *cell[NCOLS];
    char rpm[16], tpm[16], inflight[16], expires[16], created[32];
};

static void limit_text(unsigned v, char *out, size_t n)
{
    if (v)
        snprintf(out, n, "%u", v);
    else
        snprintf(out, n, "-");
}

static void fill_row(struct row *r, const struct key *k, int64_t now, struct buf *m)
{
    buf_reset(m);
    for (size_t i = 0; i < k->nmodels; i++) {
        if (i)
            buf_puts(m, ",");
        buf_puts(m, k->models[i]);
    }
    limit_text(k->rpm, r->rpm, sizeof r->rpm);
    limit_text(k->tpm, r->tpm, sizeof r->tpm);
    limit_text(k->max_inflight, r->inflight, sizeof r->inflight);
    if (k->expires)
        fmt_day(k->expires, r->expires, sizeof r->expires);
    else
        snprintf(r->expires, sizeof r->expires, "never");
    if (k->created)
        fmt_time(k->created, r->created, sizeof r->created);
    else
        snprintf(r->created, sizeof r->created, "-");
    r->cell[COL_ID] = k->id;
    r->cell[COL_NAME] = k->name;
    r->cell[COL_MODELS] = k->models ? (m->p ? m->p : "") : "(all)";
    r->cell[COL_RPM] = r->rpm;
    r->cell[COL_TPM] = r->tpm;
    r->cell[COL_INFLIGHT] = r->inflight;
    r->cell[COL_EXPIRES] = r->expires;
    r->cell[COL_STATE] = state_of(k, now);
    r->cell[COL_CREATED] = r->created;
    r->cell[COL_ADMIN] = k->admin ? "yes" : "no";
}

static void print_table(const struct key *const *v, size_t n, int64_t now)
{
    size_t width[NCOLS];
    struct row r;
    struct buf m;
    buf_init(&m, 1u << 20);
    for (size_t j = 0; j < NCOLS; j++)
        width[j] = strlen(col_titles[j]);
    for (size_t i = 0; i < n; i++) {
        fill_row(&r, v[i], now, &m);
        for (size_t j = 0; j < NCOLS; j++) {
            size_t w = strlen(r.cell[j]);
            if (w > width[j])
                width[j] = w;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        const char *const *cells = col_titles;
        if (i > 0) {
            fill_row(&r, v[i - 1], now, &m);
            cells = r.cell;
        }
        for (size_t j = 0; j < NCOLS; j++) {
            if (j + 1 < NCOLS)
                printf("%-*s  ", (int)width[j], cells[j]);
            else
                printf("%s\n", cells[j]);
        }
    }
    buf_free(&m);
}

static cJSON *json_row(const struct key *k, int64_t now)
{
    char day[16], created[32], revoked[32];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok =
        cJSON_AddStringToObject(o, "id", k->id) && cJSON_AddStringToObject(o, "name", k->name);
    if (ok && k->models) {
        cJSON *arr = cJSON_CreateStringArray(k->models, (int)k->nmodels);
        ok = arr && cJSON_AddItemToObject(o, "models", arr);
        if (!ok)
            cJSON_Delete(arr);
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "models") != NULL;
    }
    if (k->expires)
        fmt_day(k->expires, day, sizeof day);
    if (k->created)
        fmt_time(k->created, created, sizeof created);
    if (k->revoked)
        fmt_time(k->revoked, revoked, sizeof revoked);
    ok = ok && cJSON_AddNumberToObject(o, "rpm", k->rpm) &&
         cJSON_AddNumberToObject(o, "tpm", k->tpm) &&
         cJSON_AddNumberToObject(o, "max_inflight", k->max_inflight) &&
         (k->expires ? cJSON_AddStringToObject(o, "expires", day)
                     : cJSON_AddNullToObject(o, "expires")) &&
         cJSON_AddStringToObject(o, "state", state_of(k, now)) &&
         cJSON_AddBoolToObject(o, "disabled", k->disabled) &&
         (k->revoked ? cJSON_AddStringToObject(o, "revoked", revoked)
                     : cJSON_AddNullToObject(o, "revoked")) &&
         cJSON_AddBoolToObject(o, "admin", k->admin) &&
         (k->created ? cJSON_AddStringToObject(o, "created", created)
                     : cJSON_AddNullToObject(o, "created"));
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

static int print_json(const struct key *const *v, size_t n, int64_t now)
{
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *o = json_row(v[i], now);
        ok = o && cJSON_AddItemToArray(arr, o);
        if (!ok)
            cJSON_Delete(o);
    }
    char *text = ok ? cJSON_Print(arr) : NULL;
    cJSON_Delete(arr);
    if (!text)
        return -1;
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

static int cmd_list(struct ctx *c)
{
    /* No lock: keys_write_file() replaces the file in one rename. */
    int rc = read_keys(c, true);
    if (rc)
        return rc;
    if (c->kr->n == 0 && !c->kr->path)
        fprintf(stderr,
                "%s: no keys file yet; create a key with: ollama-gateway key create NAME "
                "-c %s\n",
                c->file, c->o->config);
    /* In file order, which is the order they were created in. */
    const struct key **v = malloc((c->kr->n ? c->kr->n : 1) * sizeof *v);
    if (!v) {
        fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
        return EXIT_RUNTIME;
    }
    size_t n = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, c->keys)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "id");
        const struct key *k = cJSON_IsString(id) ? keyring_find(c->kr, id->valuestring) : NULL;
        if (k && n < c->kr->n)
            v[n++] = k;
    }
    int64_t now = (int64_t)time(NULL);
    if (c->o->json) {
        if (print_json(v, n, now) < 0) {
            fprintf(stderr, "ollama-gateway %s: out of memory\n", c->cmd);
            rc = EXIT_RUNTIME;
        }
    } else {
        print_table(v, n, now);
    }
    free(v);
    if (!rc && fflush(stdout) != 0) {
        fprintf(stderr, "ollama-gateway %s: cannot write to stdout: %s\n", c->cmd, strerror(errno));
        rc = EXIT_RUNTIME;
    }
    return rc;
}

/* ---- entry ---- */

int keycmd_main(int argc, char **argv, const char *default_config)
{
    if (argc < 2 ||
        (argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)) {
        fprintf(stderr, "ollama-gateway key: missing subcommand\n");
        usage(stderr);
        return EXIT_BAD;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    struct opts o = {.config = default_config ? default_config : CFG_DEFAULT_PATH};
    for (size_t i = 0; i < NSUBCMDS; i++)
        if (strcmp(argv[1], subcmds[i].name) == 0)
            o.sc = &subcmds[i];
    if (!o.sc) {
        fprintf(stderr, "ollama-gateway key: unknown subcommand \"%s\"\n", argv[1]);
        usage(stderr);
        return EXIT_BAD;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: ollama-gateway %s\n", o.sc->synopsis);
            return 0;
        }
    if (parse_args(argc, argv, &o) < 0)
        return EXIT_BAD;

    struct ctx c = {.o = &o, .lockfd = -1};
    snprintf(c.cmd, sizeof c.cmd, "key %s", o.sc->name);
    int rc = load_config(&c);
    if (!rc) {
        switch (o.sc->sub) {
        case SUB_CREATE:
            rc = cmd_create(&c);
            break;
        case SUB_INIT:
            rc = cmd_init(&c);
            break;
        case SUB_LIST:
            rc = cmd_list(&c);
            break;
        case SUB_REVOKE:
        case SUB_DISABLE:
        case SUB_ENABLE:
            rc = cmd_change(&c);
            break;
        }
    }
    ctx_free(&c);
    return rc;
}
