#include "sharedcfg.h"

#include "diag.h"
#include "fileio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[0..n) percent-decoded into out ('\0'-terminated). -1 on a bad escape
 * or an encoded NUL. */
static int decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[k++] = s[i];
            continue;
        }
        if (n - i < 3)
            return -1;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        out[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[k] = '\0';
    return 0;
}

/* A decimal number from lo to hi filling s[0..n). */
static int number(const char *s, size_t n, unsigned long lo, unsigned long hi, unsigned *out)
{
    if (n == 0 || n > 9)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int sharedcfg_parse_url(const char *url, char *buf, struct shared_url *u, char *why, size_t whysz)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) {
        const char *p = url + 5;
        if (strncmp(p, "//", 2) == 0)
            p += 2; /* unix:///run/redis.sock */
        if (!*p) {
            snprintf(why, whysz, "names no socket: write \"unix:/run/redis/redis.sock\"");
            return -1;
        }
        memcpy(buf, p, strlen(p) + 1);
        u->unix_socket = true;
        u->path = buf;
        return 0;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(why, whysz,
                 "asks for TLS, which the gateway does not speak to Redis (Debian 12's hiredis "
                 "0.14 has no TLS): use redis:// on a private network, or a unix: socket");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(why, whysz,
                 "is not a Redis address: write \"redis://host:6379/0\", "
                 "\"redis://:password@host:6379/0\" or \"unix:/path/to/redis.sock\"");
        return -1;
    }
    const char *s = url + 8;
    const char *end = s + strcspn(s, "/?#");
    if (*end == '?' || *end == '#') {
        snprintf(why, whysz, "has a query or fragment, which mean nothing here: remove them");
        return -1;
    }
    char *o = buf;
    /* The last '@' ends the credentials: a password may hold one encoded. */
    const char *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@')
            at = p;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *uend = colon ? colon : at;
        if (uend > s) {
            if (decode(s, (size_t)(uend - s), o) < 0)
                goto bad_escape;
            u->user = o;
            o += strlen(o) + 1;
        }
        if (colon) {
            if (decode(colon + 1, (size_t)(at - colon - 1), o) < 0)
                goto bad_escape;
            u->password = o;
            o += strlen(o) + 1;
        }
        s = at + 1;
    }
    const char *hend;
    const char *port = NULL;
    if (*s == '[') {
        const char *rb = memchr(s, ']', (size_t)(end - s));
        if (!rb) {
            snprintf(why, whysz, "has a '[' with no ']' around an IPv6 address");
            return -1;
        }
        memcpy(o, s + 1, (size_t)(rb - s - 1));
        o[rb - s - 1] = '\0';
        hend = rb + 1;
        if (hend < end && *hend != ':') {
            snprintf(why, whysz, "has text after the IPv6 address's ']'");
            return -1;
        }
    } else {
        hend = memchr(s, ':', (size_t)(end - s));
        if (!hend)
            hend = end;
        memcpy(o, s, (size_t)(hend - s));
        o[hend - s] = '\0';
    }
    u->host = o;
    o += strlen(o) + 1;
    if (!u->host[0]) {
        snprintf(why, whysz, "names no host: write \"redis://host:6379/0\"");
        return -1;
    }
    if (hend < end && *hend == ':')
        port = hend + 1;
    if (port && number(port, (size_t)(end - port), 1, 65535, &u->port) < 0) {
        snprintf(why, whysz, "has a port that is not a number from 1 to 65535");
        return -1;
    }
    if (*end == '/' && end[1] && number(end + 1, strlen(end + 1), 0, 1000000, &u->db) < 0) {
        snprintf(why, whysz, "has a database that is not a number from 0 to 1000000 (\"/0\")");
        return -1;
    }
    return 0;
bad_escape:
    snprintf(why, whysz, "has a bad %%-escape in its user or password (write %%40 for '@')");
    return -1;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool sharedcfg_same(const struct cfg_shared *a, const struct cfg_shared *b)
{
    if (!a->enabled || !b->enabled)
        return a->enabled == b->enabled;
    return same_str(a->unix_path, b->unix_path) && same_str(a->host, b->host) &&
           strcmp(a->addr, b->addr) == 0 && a->port == b->port && a->db == b->db &&
           same_str(a->user, b->user) && same_str(a->password, b->password) &&
           same_str(a->prefix, b->prefix) && a->timeout_ms == b->timeout_ms;
}

/* The password in file `p`: its first line, without the line end. */
static const char *read_password(struct walk *w, const cJSON *item, const char *path, const char *p)
{
    char d[DIAG_SHOWBUF];
    /* O_NONBLOCK: a FIFO put there would otherwise hold the start or the
     * reload until something writes to it; a regular file ignores it */
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        jf_error(w->jf, item, path, "%s: cannot open: %s", DIAG_SHOW(d, p), strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        jf_error(w->jf, item, path, "%s: is not a regular file", DIAG_SHOW(d, p));
        close(fd);
        return NULL;
    }
    /* a secret, as keys.json and the TLS key: other users may not read it */
    if (st.st_mode & 007) {
        jf_error(w->jf, item, path,
                 "%s: other users may read or write it (mode %04o): chmod o-rwx it",
                 DIAG_SHOW(d, p), (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = fileio_read_all(fd, SHARED_SECRET_MAX + 2, &text, &len);
    close(fd);
    if (rc < 0) {
        jf_error(w->jf, item, path, "%s: cannot read it, or it is over %d bytes", DIAG_SHOW(d, p),
                 SHARED_SECRET_MAX);
        free(text);
        return NULL;
    }
    size_t n = strcspn(text, "\r\n");
    const char *out = NULL;
    if (n == 0 || n > SHARED_SECRET_MAX || memchr(text, '\0', n))
        jf_error(w->jf, item, path, "%s: its first line must hold the password (1 to %d bytes)",
                 DIAG_SHOW(d, p), SHARED_SECRET_MAX);
    else
        out = walk_strndup(w, text, n);
    explicit_bzero(text, len);
    free(text);
    return out;
}

static void key_prefix(struct walk *w, const cJSON *v, const char *path, void *base,
                       const struct walk_key *k)
{
    const char *s = walk_string(w, v, path, "a key prefix like \"ogw:\"");
    if (!s)
        return;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
            jf_error(w->jf, v, path,
                     "holds a space or control character: use letters, digits "
                     "and ':' (e.g. \"ogw:\")");
            return;
        }
    }
    if (n > SHARED_PREFIX_MAX) {
        jf_error(w->jf, v, path, "is %zu bytes; at most %d", n, SHARED_PREFIX_MAX);
        return;
    }
    const char *r = walk_strdup(w, s);
    memcpy((char *)base + k->off, &r, sizeof r);
}

static void key_redis(struct walk *w, const cJSON *v, const char *path, void *base,
                      const struct walk_key *k)
{
    (void)k;
    (void)base;
    /* Stored as written: sharedcfg_key() parses it once the rest is known. */
    walk_text(w, v, path, "\"redis://host:6379/0\" or \"unix:/path/to/redis.sock\"");
}

static const struct walk_key shared_keys[] = {
    {.name = "redis",
     .fn = key_redis,
     .required = "the server, e.g. \"redis\": \"redis://127.0.0.1:6379/0\""},
    {.name = "prefix",
     .fn = key_prefix,
     .off = offsetof(struct cfg_shared, prefix),
     .sdef = "ogw:"},
    {.name = "password_file",
     .fn = walk_set_path,
     .off = offsetof(struct cfg_shared, password_file)},
    {.name = "timeout_ms",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg_shared, timeout_ms),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 10000,
     .def = 100},
    {.name = "lease_s",
     .fn = walk_set_uint,
     .off = offsetof(struct cfg_shared, lease_s),
     .width = sizeof(unsigned),
     .min = 1,
     .max = 3600,
     .def = 30},
};
const struct walk_table sharedcfg_table = WALK_TABLE(shared_keys);

bool sharedcfg_resolve(const char *host, unsigned port, char *out, size_t size)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    char serv[8];
    snprintf(serv, sizeof serv, "%u", port);
    if (getaddrinfo(host, serv, &hints, &res) != 0)
        return false;
    bool ok = false;
    for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
        const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                        : a->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                            : NULL;
        ok = p && inet_ntop(a->ai_family, p, out, (socklen_t)size) != NULL;
    }
    freeaddrinfo(res);
    return ok;
}

void sharedcfg_key(struct walk *w, const cJSON *v, const char *path, void *base,
                   const struct walk_key *k)
{
    struct cfg_shared *c = (struct cfg_shared *)((char *)base + k->off);
    memset(c, 0, sizeof *c);
    walk_defaults(w, &sharedcfg_table, c);
    uint64_t seen = walk_object(w, v, path, &sharedcfg_table, c);
    const cJSON *item = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "redis") : NULL;
    if (!(seen & walk_bit(&sharedcfg_table, "redis")) || !cJSON_IsString(item) ||
        !item->valuestring[0])
        return;
    char sub[WALK_PATH_MAX], why[320];
    snprintf(sub, sizeof sub, "%s.redis", path);
    const char *url = item->valuestring;
    char *buf = walk_alloc(w, strlen(url) + 1);
    struct shared_url u;
    if (!buf)
        return;
    if (sharedcfg_parse_url(url, buf, &u, why, sizeof why) < 0) {
        char d[DIAG_SHOWBUF];
        /* Never echo a URL that may carry a password. */
        if (strchr(url, '@'))
            jf_error(w->jf, item, sub, "the address %s", why);
        else
            jf_error(w->jf, item, sub, "%s %s", DIAG_SHOW(d, url), why);
        return;
    }
    if (u.password && c->password_file) {
        jf_error(w->jf, item, sub,
                 "holds a password and \"password_file\" names another: keep one (the file "
                 "keeps it out of gateway.json)");
        return;
    }
    c->password = u.password;
    c->user = u.user;
    if (c->password_file) {
        const cJSON *pf = cJSON_GetObjectItemCaseSensitive(v, "password_file");
        char psub[WALK_PATH_MAX];
        snprintf(psub, sizeof psub, "%s.password_file", path);
        c->password = read_password(w, pf, psub, c->password_file);
        if (!c->password)
            return;
    }
    if (c->user && !c->password) {
        jf_error(w->jf, item, sub,
                 "names the user \"%.64s\" but no password: write redis://user:password@host, "
                 "or give the password in \"password_file\"",
                 c->user);
        return;
    }
    char shown[WALK_PATH_MAX + 32];
    if (u.unix_socket) {
        c->unix_path = walk_resolve(w, u.path);
        snprintf(shown, sizeof shown, "unix:%s", c->unix_path ? c->unix_path : "");
    } else {
        c->host = u.host;
        c->port = u.port;
        c->db = u.db;
        if (!sharedcfg_resolve(u.host, u.port, c->addr, sizeof c->addr)) {
            c->addr[0] = '\0';
            jf_note(w->jf, item, sub,
                    "the host \"%.64s\" does not resolve now: limits stay local to each "
                    "replica until it does (it is looked up again every discovery_interval_s)",
                    u.host);
        }
        snprintf(shown, sizeof shown, strchr(u.host, ':') ? "[%s]:%u/%u" : "%s:%u/%u", u.host,
                 u.port, u.db);
    }
    c->redis = walk_strdup(w, shown);
    c->enabled = c->redis && (c->unix_path || c->host);
}
