#include "reload.h"

#include "keys.h"
#include "keysfile.h"
#include "keystate.h"
#include "log.h"
#include "tlscreds.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static struct cfg *started; /* the start-up configuration: what needs a restart */
static unsigned generation; /* reloads put in force since the start */

/* Say that a reload is in force, numbered, so that one reload can be told
 * from the next in the log (the tests wait for this line). */
static void log_in_force(const char *what, const char *path)
{
    log_info("reload %u in force: %s from %s", ++generation, what, path);
}

static struct {
    int fd;     /* inotify descriptor, -1 = none */
    int wd;     /* the keys file's folder */
    char *path; /* the keys file watched */
    const char *base;
} watch = {.fd = -1, .wd = -1};

static void watch_close(void)
{
    if (watch.fd >= 0)
        close(watch.fd);
    free(watch.path);
    watch.fd = watch.wd = -1;
    watch.path = NULL;
    watch.base = NULL;
}

/* Point the watch at cfg's keys file (a no-op when it already is). A failure
 * only costs the automatic reload: SIGHUP still works, so it is a warning. */
static void watch_aim(const struct cfg *cfg)
{
    if (cfg->auth != CFG_AUTH_KEYS) {
        watch_close();
        return;
    }
    if (watch.path && strcmp(watch.path, cfg->keys_file) == 0)
        return;
    watch_close();
    watch.path = strdup(cfg->keys_file);
    if (!watch.path)
        return;
    char *slash = strrchr(watch.path, '/');
    watch.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch.fd < 0 || !slash) {
        log_warn_errno("cannot watch %s for changes; send SIGHUP after editing it", cfg->keys_file);
        watch_close();
        return;
    }
    watch.base = slash + 1;
    *slash = '\0';
    watch.wd = inotify_add_watch(watch.fd, slash == watch.path ? "/" : watch.path,
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                     IN_DELETE | IN_ATTRIB);
    *slash = '/';
    if (watch.wd < 0) {
        log_warn_errno("cannot watch %s for changes; send SIGHUP after editing it", cfg->keys_file);
        watch_close();
    }
}

int reload_watch_fd(void)
{
    return watch.fd;
}

bool reload_watch_changed(void)
{
    bool hit = false;
    char ev[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    for (int rounds = 0; watch.fd >= 0 && rounds < 64; rounds++) {
        ssize_t n = read(watch.fd, ev, sizeof ev);
        if (n <= 0)
            break;
        for (char *p = ev; p < ev + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if ((e->mask & IN_Q_OVERFLOW) || (e->len && strcmp(e->name, watch.base) == 0))
                hit = true;
            p += sizeof *e + e->len;
        }
    }
    return hit;
}

/* The keys for cfg. A keys file that does not exist yet is no keys at all
 * (every request gets 401) rather than a refusal to start, so that a service
 * can be started first and given its first key later: the watch picks the
 * new file up. A file that exists but is unsafe or broken is refused. */
static struct keyring *load_keys(const struct cfg *cfg)
{
    if (cfg->auth != CFG_AUTH_KEYS) {
        log_warn("auth is \"none\": every request is served without an API key");
        return keyring_empty();
    }
    char why[512];
    if (keys_check_mode(cfg->keys_file, why, sizeof why) < 0 && errno == ENOENT) {
        log_warn("%s does not exist: every API request gets 401 until a key is created "
                 "with: ollama-gateway key create NAME -c %s",
                 cfg->keys_file, cfg->path);
        return keyring_empty();
    }
    return keyring_load(cfg->keys_file, cfg->path, NULL);
}

static void log_keys(const struct keyring *k)
{
    if (!k->path)
        return; /* no file: load_keys said so */
    size_t usable = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < k->n; i++)
        usable +=
            !k->v[i].revoked && !k->v[i].disabled && (!k->v[i].expires || now < k->v[i].expires);
    log_info("%s: %zu keys, %zu usable", k->path, k->n, usable);
    if (!usable)
        log_warn("%s holds no usable key: every API request gets 401; create one with "
                 "ollama-gateway key create NAME",
                 k->path);
}

/* Which certificate new TLS connections get from now on. */
static void log_tls(const struct cfg *c)
{
    if (!c->tls.creds)
        return;
    char line[700], warn[400];
    tls_creds_describe(c->tls.creds, time(NULL), line, sizeof line, warn, sizeof warn);
    log_info("tls: %s, from %s", line, c->tls.cert);
    if (warn[0])
        log_warn("tls: %s (%s)", warn, c->tls.cert);
}

/* A new backend table for cfg, polled once and with discovery running. */
static struct backends *backends_for(struct cfg *cfg)
{
    struct backends *b = backends_new(cfg);
    if (!b)
        return NULL;
    backends_poll_all(b);
    if (backends_start(b) < 0) {
        log_error_errno("cannot start backend discovery");
        backends_unref(b);
        return NULL;
    }
    return b;
}

int reload_start(struct cfg *cfg, bool *bad_input)
{
    *bad_input = false;
    struct keyring *keys = load_keys(cfg);
    if (!keys) {
        *bad_input = true;
        cfg_unref(cfg);
        return -1;
    }
    if (cfg->auth == CFG_AUTH_KEYS)
        log_keys(keys);
    struct backends *b = backends_for(cfg);
    if (!b) {
        keyring_unref(keys);
        cfg_unref(cfg);
        return -1;
    }
    started = cfg_ref(cfg);
    log_tls(cfg);
    struct snapshot *s = snapshot_new(cfg, keys, b); /* on failure it drops all three */
    if (!s)
        return -1;
    snapshot_publish(s);
    watch_aim(cfg);
    return 0;
}

static bool addrs_differ(const struct cfg *a, const struct cfg *b)
{
    if (a->nlisten != b->nlisten)
        return true;
    for (size_t i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i].text, b->listen[i].text) != 0 ||
            a->listen[i].tls != b->listen[i].tls)
            return true;
    return false;
}

static bool str_differ(const char *a, const char *b)
{
    return (a || b) && (!a || !b || strcmp(a, b) != 0);
}

/* Name what the new configuration changes that only a restart applies. */
static void warn_restart_only(const struct cfg *now, const struct cfg *c)
{
    char what[256] = "";
    size_t n = 0;
#define NOTE(cond, name)                                                                           \
    if ((cond) && n < sizeof what)                                                                 \
        n += (size_t)snprintf(what + n, sizeof what - n, "%s%s", n ? ", " : "", name);
    NOTE(addrs_differ(now, c), "listen");
    NOTE(now->workers != c->workers, "workers");
    /* The certificate and key are reloaded (new connections get them); which
     * listeners speak TLS, and how, is fixed when their daemons start. */
    NOTE(!now->tls.cert != !c->tls.cert, "tls");
    NOTE(now->tls.cert && c->tls.cert && str_differ(now->tls.priorities, c->tls.priorities),
         "tls.priorities");
    NOTE(now->metrics.enabled != c->metrics.enabled ||
             (c->metrics.enabled && strcmp(now->metrics.listen.text, c->metrics.listen.text)),
         "metrics.listen");
    NOTE(now->limits.max_connections != c->limits.max_connections, "limits.max_connections");
    NOTE(now->limits.max_connections_per_address != c->limits.max_connections_per_address,
         "limits.max_connections_per_address");
    NOTE(now->limits.header_timeout_s != c->limits.header_timeout_s, "limits.header_timeout_s");
    NOTE(now->limits.body_timeout_s != c->limits.body_timeout_s, "limits.body_timeout_s");
    NOTE(now->limits.idle_timeout_s != c->limits.idle_timeout_s, "limits.idle_timeout_s");
#undef NOTE
    if (n)
        log_warn("%s: changes to %s take effect at the next restart; the rest is applied now",
                 c->path, what);
}

int reload_all(const char *path)
{
    struct cfg *c = cfg_load(path, NULL);
    if (!c) {
        log_error("reload refused: %s has problems (above); the configuration in force stays",
                  path);
        return -1;
    }
    struct keyring *keys = load_keys(c);
    if (!keys) {
        log_error("reload refused: the keys file has problems (above); the configuration and "
                  "keys in force stay");
        cfg_unref(c);
        return -1;
    }
    struct snapshot *cur = snapshot_acquire();
    bool same = backends_same_config(cur->cfg, c);
    struct backends *b = same ? backends_ref(cur->backends) : backends_for(c);
    if (!b) {
        log_error("reload refused: cannot set up the new backends");
        keyring_unref(keys);
        cfg_unref(c);
        snapshot_unref(cur);
        return -1;
    }
    if (same)
        backends_set_limits(b, c); /* max_inflight, max_queue, weight: live */
    warn_restart_only(started, c);
    if (c->log.level != log_get_level())
        log_set_level(c->log.level);
    /* Reopened every time, so that SIGHUP after a log rotation writes to the
     * new file. */
    if (log_access_open(c->log.access) < 0)
        log_error_errno("cannot open the access log %s; it stays where it was", c->log.access);
    cfg_features_not_in_force(c, NULL, NULL);
    log_tls(c);
    size_t nkeys = keys->n, nbackends = c->nbackends, naliases = c->naliases;
    if (c->auth == CFG_AUTH_KEYS)
        log_keys(keys);
    watch_aim(c);
    struct snapshot *s = snapshot_new(c, keys, b); /* on failure it drops all three */
    if (!s) {
        snapshot_unref(cur);
        return -1;
    }
    snapshot_publish(s);
    /* Requests that started before keep the old table, frozen: only its
     * discovery stops. */
    if (!same)
        backends_stop(cur->backends);
    keystate_share(c, cur->keys, keys);
    snapshot_unref(cur);
    log_info("reloaded %s: %zu keys, %zu backends%s, %zu aliases", path, nkeys, nbackends,
             same ? " (unchanged)" : "", naliases);
    log_in_force("configuration and keys", path);
    return 0;
}

int reload_keys(void)
{
    struct snapshot *cur = snapshot_acquire();
    if (!cur || cur->cfg->auth != CFG_AUTH_KEYS) {
        snapshot_unref(cur);
        return 0;
    }
    struct keyring *keys = load_keys(cur->cfg);
    if (!keys) {
        log_error("%s changed but has problems (above): the keys in force stay",
                  cur->cfg->keys_file);
        snapshot_unref(cur);
        return -1;
    }
    log_keys(keys);
    struct snapshot *s = snapshot_new(cfg_ref(cur->cfg), keys, backends_ref(cur->backends));
    if (!s) {
        snapshot_unref(cur);
        return -1;
    }
    snapshot_publish(s);
    log_in_force("keys", s->cfg->keys_file);
    /* s is published: the publish holds it while this reads it */
    keystate_share(s->cfg, cur->keys, s->keys);
    snapshot_unref(cur);
    return 0;
}

void reload_stop(void)
{
    keystate_forget();
    struct snapshot *cur = snapshot_acquire();
    if (cur)
        backends_stop(cur->backends);
    snapshot_unref(cur);
    snapshot_publish(NULL);
    cfg_unref(started);
    started = NULL;
    watch_close();
}
