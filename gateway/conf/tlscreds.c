#include "tlscreds.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
}

/* The whole file at path into *text (malloc'd, '\0'-terminated). private:
 * the file holds a private key, which no other user of the machine may read
 * or change. Group access stays allowed, unlike for keys.json: Debian gives
 * keys to the ssl-cert group (0640) and Kubernetes mounts Secrets 0440 with
 * fsGroup. */
static int read_pem(const char *path, bool private, char **text, size_t *len, char *why,
                    size_t whysz)
{
    /* O_NONBLOCK: a FIFO put there would otherwise hold the start or the
     * reload until something writes to it; a regular file ignores it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        say(why, whysz, "%s: cannot open: %s%s", path, strerror(e),
            e == EACCES ? " (is it readable by the user the gateway runs as?)" : "");
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        say(why, whysz, "%s: is not a regular file", path);
    } else if (private && (st.st_mode & 007)) {
        say(why, whysz,
            "%s: may be read or written by other users (mode %04o), but it holds the private "
            "key; fix it with: chmod 600 %s (or 640 with a group of the gateway's user)",
            path, (unsigned)(st.st_mode & 07777), path);
    } else if (fileio_read_all(fd, TLS_MAX_PEM, text, len) < 0) {
        say(why, whysz, "%s: cannot read: %s", path,
            errno == EFBIG ? "larger than 1 MiB, not a PEM file" : strerror(errno));
    } else {
        rc = 0;
    }
    close(fd);
    return rc;
}

static void creds_free(struct tls_creds *c)
{
    for (unsigned i = 0; i < c->nchain; i++)
        gnutls_pcert_deinit(&c->chain[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c);
}

/* The leaf's name, validity and fingerprint, for the log. */
static int describe_leaf(struct tls_creds *c, const char *cert_name, char *why, size_t whysz)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) {
        say(why, whysz, "out of memory");
        return -1;
    }
    int r = gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER);
    if (r < 0) {
        say(why, whysz, "%s: the first certificate: %s", cert_name, gnutls_strerror(r));
        gnutls_x509_crt_deinit(crt);
        return -1;
    }
    size_t n = sizeof c->subject;
    if (gnutls_x509_crt_get_dn(crt, c->subject, &n) < 0)
        snprintf(c->subject, sizeof c->subject, "(no subject)");
    c->not_before = gnutls_x509_crt_get_activation_time(crt);
    c->not_after = gnutls_x509_crt_get_expiration_time(crt);
    unsigned char md[32];
    size_t mdlen = sizeof md;
    if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, md, &mdlen) == 0) {
        for (size_t i = 0; i < mdlen; i++)
            snprintf(c->fingerprint + 3 * i, sizeof c->fingerprint - 3 * i, "%02X%s", md[i],
                     i + 1 < mdlen ? ":" : "");
    }
    gnutls_x509_crt_deinit(crt);
    return 0;
}

/* Is key the private half of the leaf's public key? Both key ids (a hash of
 * the public key) must be the same. */
static bool key_matches(const struct tls_creds *c)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return false;
    unsigned char a[64], b[64];
    size_t alen = sizeof a, blen = sizeof b;
    bool same =
        gnutls_pubkey_import_privkey(pub, c->key, 0, 0) == 0 &&
        gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &alen) == 0 &&
        gnutls_pubkey_get_key_id(c->chain[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &blen) == 0 &&
        alen == blen && memcmp(a, b, alen) == 0;
    gnutls_pubkey_deinit(pub);
    return same;
}

struct tls_creds *tls_creds_from_pem(const char *cert, size_t cert_len, const char *cert_name,
                                     const char *key, size_t key_len, const char *key_name,
                                     char *why, size_t whysz)
{
    struct tls_creds *c = calloc(1, sizeof *c);
    if (!c) {
        say(why, whysz, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    if (!memmem(cert, cert_len, "-----BEGIN CERTIFICATE-----", 27)) {
        say(why, whysz, "%s: holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
            cert_name);
        goto fail;
    }
    gnutls_datum_t d = {.data = (unsigned char *)cert, .size = (unsigned)cert_len};
    unsigned n = TLS_MAX_CHAIN;
    int r = gnutls_pcert_list_import_x509_raw(c->chain, &n, &d, GNUTLS_X509_FMT_PEM,
                                              GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (r < 0) {
        if (r == GNUTLS_E_CERTIFICATE_LIST_UNSORTED)
            say(why, whysz,
                "%s: the certificates are not in order: the server's own comes first, then "
                "each one is followed by the one that issued it",
                cert_name);
        else if (r == GNUTLS_E_SHORT_MEMORY_BUFFER)
            say(why, whysz, "%s: holds more than %d certificates", cert_name, TLS_MAX_CHAIN);
        else
            say(why, whysz, "%s: not a valid PEM certificate chain: %s", cert_name,
                gnutls_strerror(r));
        goto fail;
    }
    c->nchain = n;
    if (n == 0) {
        say(why, whysz, "%s: holds no certificate", cert_name);
        goto fail;
    }
    if (describe_leaf(c, cert_name, why, whysz) < 0)
        goto fail;

    if (gnutls_privkey_init(&c->key) < 0) {
        say(why, whysz, "out of memory");
        goto fail;
    }
    if (memmem(key, key_len, "ENCRYPTED", 9)) {
        say(why, whysz,
            "%s: the private key is encrypted; the gateway needs it in clear (openssl pkey "
            "-in KEY -out KEY.clear), readable only by the gateway's user",
            key_name);
        goto fail;
    }
    d = (gnutls_datum_t){.data = (unsigned char *)key, .size = (unsigned)key_len};
    r = gnutls_privkey_import_x509_raw(c->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (r < 0) {
        say(why, whysz, "%s: not a valid PEM private key: %s", key_name, gnutls_strerror(r));
        goto fail;
    }
    if (!key_matches(c)) {
        say(why, whysz,
            "%s is not the private key of the certificate in %s (%s): they do not belong "
            "together",
            key_name, cert_name, c->subject);
        goto fail;
    }
    return c;
fail:
    creds_free(c);
    return NULL;
}

struct tls_creds *tls_creds_load(const char *cert_path, const char *key_path, char *why,
                                 size_t whysz)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    struct tls_creds *c = NULL;
    if (read_pem(cert_path, false, &cert, &cert_len, why, whysz) == 0 &&
        read_pem(key_path, true, &key, &key_len, why, whysz) == 0)
        c = tls_creds_from_pem(cert, cert_len, cert_path, key, key_len, key_path, why, whysz);
    free(cert);
    if (key) {
        /* The key's bytes do not outlive the load in our memory. */
        sodium_memzero(key, key_len);
        free(key);
    }
    return c;
}

struct tls_creds *tls_creds_ref(struct tls_creds *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void tls_creds_unref(struct tls_creds *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        creds_free(c);
}

static void utc(time_t t, char *out, size_t n)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(out, n, "?");
}

void tls_creds_describe(const struct tls_creds *c, time_t now, char *out, size_t outsz, char *warn,
                        size_t warnsz)
{
    char until[32], from[32];
    utc(c->not_after, until, sizeof until);
    utc(c->not_before, from, sizeof from);
    snprintf(out, outsz, "certificate \"%s\" (SHA-256 %s, %u in its chain), valid until %s",
             c->subject, c->fingerprint, c->nchain, until);
    warn[0] = '\0';
    if (now > c->not_after)
        snprintf(warn, warnsz, "the certificate \"%s\" expired on %s: clients refuse it",
                 c->subject, until);
    else if (now < c->not_before)
        snprintf(warn, warnsz, "the certificate \"%s\" is not valid before %s: clients refuse it",
                 c->subject, from);
}

int tls_priorities_check(const char *prio, char *why, size_t whysz)
{
    gnutls_priority_t p;
    const char *at = NULL;
    int r = gnutls_priority_init(&p, prio, &at);
    if (r < 0) {
        if (at && r == GNUTLS_E_INVALID_REQUEST)
            say(why, whysz, "GnuTLS does not accept it at \"%.40s\"", at);
        else
            say(why, whysz, "GnuTLS does not accept it: %s", gnutls_strerror(r));
        return -1;
    }
    gnutls_priority_deinit(p);
    return 0;
}
