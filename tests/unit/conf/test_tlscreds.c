/* Unit tests for tlscreds.c: PEM chains and keys read and judged, with
 * certificates the test makes itself (tls_fixture.h); the priority check. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tls_fixture.h"
#include "tlscreds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct tls_fixture fx;

static int setup(void **state)
{
    (void)state;
    tls_fixture_make(&fx, -3600, 86400);
    return 0;
}

static struct tls_creds *from(const char *cert, const char *key, char *why, size_t n)
{
    why[0] = '\0';
    return tls_creds_from_pem(cert, strlen(cert), "c.pem", key, strlen(key), "k.pem", why, n);
}

static void expect_refused(const char *cert, const char *key, const char *needle)
{
    char why[1024];
    struct tls_creds *c = from(cert, key, why, sizeof why);
    if (c) {
        tls_creds_unref(c);
        fail_msg("expected a refusal with \"%s\"", needle);
    }
    if (!strstr(why, needle))
        fail_msg("missing \"%s\" in: %s", needle, why);
}

static void test_leaf_and_key(void **state)
{
    (void)state;
    char why[1024];
    struct tls_creds *c = from(fx.leaf, fx.leaf_key, why, sizeof why);
    if (!c)
        fail_msg("refused: %s", why);
    assert_int_equal(c->nchain, 1);
    assert_string_equal(c->subject, "CN=localhost");
    /* 32 bytes, "AB:" each, the last without its colon */
    assert_int_equal(strlen(c->fingerprint), 32 * 3 - 1);
    assert_true(c->not_after > time(NULL));
    char line[700], warn[400];
    tls_creds_describe(c, time(NULL), line, sizeof line, warn, sizeof warn);
    assert_non_null(strstr(line, "certificate \"CN=localhost\" (SHA-256 "));
    assert_non_null(strstr(line, c->fingerprint));
    assert_non_null(strstr(line, "valid until 20"));
    assert_string_equal(warn, "");
    /* the same certificate a day and a half later: expired */
    tls_creds_describe(c, time(NULL) + 86400 * 3 / 2, line, sizeof line, warn, sizeof warn);
    assert_non_null(strstr(warn, "expired on"));
    tls_creds_describe(c, time(NULL) - 7200, line, sizeof line, warn, sizeof warn);
    assert_non_null(strstr(warn, "is not valid before"));
    /* references: the last drop frees (ASan sees a leak or a double free) */
    assert_ptr_equal(tls_creds_ref(c), c);
    tls_creds_unref(c);
    tls_creds_unref(c);
    tls_creds_unref(NULL);
    assert_null(tls_creds_ref(NULL));
}

static void test_chain(void **state)
{
    (void)state;
    char chain[16384], why[1024];
    snprintf(chain, sizeof chain, "%s%s", fx.leaf, fx.ca);
    struct tls_creds *c = from(chain, fx.leaf_key, why, sizeof why);
    if (!c)
        fail_msg("refused: %s", why);
    assert_int_equal(c->nchain, 2);
    assert_string_equal(c->subject, "CN=localhost"); /* the leaf, first */
    tls_creds_unref(c);
    /* the issuer first: out of order */
    snprintf(chain, sizeof chain, "%s%s", fx.ca, fx.leaf);
    expect_refused(chain, fx.leaf_key, "c.pem: the certificates are not in order");
}

static void test_key_mismatch(void **state)
{
    (void)state;
    expect_refused(fx.leaf, fx.other_key,
                   "k.pem is not the private key of the certificate in c.pem (CN=localhost)");
    /* the CA's certificate with the server's key */
    expect_refused(fx.ca, fx.leaf_key, "k.pem is not the private key of the certificate in c.pem");
}

static void test_bad_pem(void **state)
{
    (void)state;
    expect_refused("", fx.leaf_key, "c.pem: holds no PEM certificate");
    expect_refused(fx.leaf_key, fx.leaf_key, "c.pem: holds no PEM certificate");
    /* damaged base64 inside the markers */
    char broken[8192];
    snprintf(broken, sizeof broken, "%s", fx.leaf);
    char *body = strchr(broken, '\n') + 1;
    memset(body + 10, '*', 20);
    expect_refused(broken, fx.leaf_key, "c.pem: not a valid PEM certificate chain");
    expect_refused(fx.leaf, "", "k.pem: not a valid PEM private key");
    expect_refused(fx.leaf, fx.leaf, "k.pem: not a valid PEM private key");
    expect_refused(fx.leaf,
                   "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n"
                   "-----END ENCRYPTED PRIVATE KEY-----\n",
                   "k.pem: the private key is encrypted");
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_tlscreds.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[128], key[128], why[1024];
    tls_fixture_file(dir, "cert.pem", fx.leaf, cert, sizeof cert);
    tls_fixture_file(dir, "key.pem", fx.leaf_key, key, sizeof key);
    /* a key other users may read is refused, whatever the umask made it */
    assert_int_equal(chmod(key, 0644), 0);
    assert_null(tls_creds_load(cert, key, why, sizeof why));
    assert_non_null(strstr(why, "key.pem: may be read or written by other users (mode 0644)"));
    assert_non_null(strstr(why, "chmod 600"));
    assert_int_equal(chmod(key, 0602), 0);
    assert_null(tls_creds_load(cert, key, why, sizeof why));
    /* the owner alone, or its group too (ssl-cert, a Kubernetes fsGroup) */
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(chmod(cert, 0644), 0); /* a certificate is public */
    struct tls_creds *c = tls_creds_load(cert, key, why, sizeof why);
    if (!c)
        fail_msg("refused: %s", why);
    tls_creds_unref(c);
    assert_int_equal(chmod(key, 0600), 0);
    c = tls_creds_load(cert, key, why, sizeof why);
    if (!c)
        fail_msg("refused: %s", why);
    tls_creds_unref(c);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.pem", dir);
    assert_null(tls_creds_load(missing, key, why, sizeof why));
    assert_non_null(strstr(why, "nope.pem: cannot open: No such file or directory"));
    assert_null(tls_creds_load(cert, dir, why, sizeof why));
    assert_non_null(strstr(why, "is not a regular file"));
    if (geteuid() != 0) { /* root reads any file */
        chmod(key, 0);
        assert_null(tls_creds_load(cert, key, why, sizeof why));
        assert_non_null(strstr(why, "is it readable by the user the gateway runs as?"));
    }
    /* a FIFO is refused at once: opening it must not wait for a writer
     * (alarm: a hang fails the test instead of stalling it) */
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo.pem", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_null(tls_creds_load(cert, fifo, why, sizeof why));
    assert_null(tls_creds_load(fifo, key, why, sizeof why));
    alarm(0);
    assert_non_null(strstr(why, "fifo.pem: is not a regular file"));
    unlink(fifo);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_priorities(void **state)
{
    (void)state;
    char why[200];
    assert_int_equal(tls_priorities_check(TLS_DEFAULT_PRIORITIES, why, sizeof why), 0);
    assert_int_equal(tls_priorities_check("SECURE128:-VERS-TLS1.0", why, sizeof why), 0);
    assert_int_equal(tls_priorities_check("NORMAL:+NONSENSE", why, sizeof why), -1);
    assert_non_null(strstr(why, "GnuTLS does not accept it at \"+NONSENSE\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_and_key), cmocka_unit_test(test_chain),
        cmocka_unit_test(test_key_mismatch), cmocka_unit_test(test_bad_pem),
        cmocka_unit_test(test_files),        cmocka_unit_test(test_priorities),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
