/*
 * Certificates made by the unit tests themselves, with GnuTLS: a CA, a
 * server certificate for "localhost" it issued, the server's key, and
 * another key that belongs to no certificate. PEM text, so the tests judge
 * exactly what an operator's files would hold. Include after <cmocka.h>.
 */
#ifndef GATEWAY_TEST_TLS_FIXTURE_H
#define GATEWAY_TEST_TLS_FIXTURE_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct tls_fixture {
    char ca[8192];        /* the CA's certificate */
    char leaf[8192];      /* the server's certificate, issued by the CA */
    char leaf_key[8192];  /* the server's key */
    char other_key[8192]; /* a key of no certificate here */
};

static inline gnutls_x509_privkey_t tls_fixture_key(void)
{
    gnutls_x509_privkey_t k;
    assert_int_equal(gnutls_x509_privkey_init(&k), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         k, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    return k;
}

/* A certificate for key named cn, valid from `from` to `until`, signed by
 * issuer (NULL: itself). */
static inline gnutls_x509_crt_t tls_fixture_crt(gnutls_x509_privkey_t key, const char *cn, bool ca,
                                                time_t from, time_t until, gnutls_x509_crt_t issuer,
                                                gnutls_x509_privkey_t issuer_key)
{
    static unsigned serial = 1;
    gnutls_x509_crt_t c;
    assert_int_equal(gnutls_x509_crt_init(&c), 0);
    assert_int_equal(gnutls_x509_crt_set_version(c, 3), 0);
    unsigned char sn[4] = {0, 0, 0, (unsigned char)serial++};
    assert_int_equal(gnutls_x509_crt_set_serial(c, sn, sizeof sn), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(c, from), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(c, until), 0);
    assert_int_equal(
        gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)),
        0);
    assert_int_equal(gnutls_x509_crt_set_key(c, key), 0);
    assert_int_equal(gnutls_x509_crt_set_basic_constraints(c, ca, -1), 0);
    if (ca)
        assert_int_equal(gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_CERT_SIGN), 0);
    else
        assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                             c, GNUTLS_SAN_DNSNAME, cn, (unsigned)strlen(cn), GNUTLS_FSAN_SET),
                         0);
    assert_int_equal(gnutls_x509_crt_sign2(c, issuer ? issuer : c, issuer_key ? issuer_key : key,
                                           GNUTLS_DIG_SHA256, 0),
                     0);
    return c;
}

static inline void tls_fixture_pem_crt(gnutls_x509_crt_t c, char *out, size_t n)
{
    size_t len = n - 1;
    assert_int_equal(gnutls_x509_crt_export(c, GNUTLS_X509_FMT_PEM, out, &len), 0);
    out[len] = '\0';
}

static inline void tls_fixture_pem_key(gnutls_x509_privkey_t k, char *out, size_t n)
{
    size_t len = n - 1;
    assert_int_equal(gnutls_x509_privkey_export(k, GNUTLS_X509_FMT_PEM, out, &len), 0);
    out[len] = '\0';
}

/* A fresh set; the server's certificate valid from now + from_s to now +
 * until_s (seconds, either may be negative). */
static inline void tls_fixture_make(struct tls_fixture *f, long from_s, long until_s)
{
    time_t now = time(NULL);
    gnutls_x509_privkey_t ca_key = tls_fixture_key(), key = tls_fixture_key(),
                          other = tls_fixture_key();
    gnutls_x509_crt_t ca =
        tls_fixture_crt(ca_key, "Test CA", true, now - 3600, now + 86400 * 2, NULL, NULL);
    gnutls_x509_crt_t leaf =
        tls_fixture_crt(key, "localhost", false, now + from_s, now + until_s, ca, ca_key);
    tls_fixture_pem_crt(ca, f->ca, sizeof f->ca);
    tls_fixture_pem_crt(leaf, f->leaf, sizeof f->leaf);
    tls_fixture_pem_key(key, f->leaf_key, sizeof f->leaf_key);
    tls_fixture_pem_key(other, f->other_key, sizeof f->other_key);
    gnutls_x509_crt_deinit(ca);
    gnutls_x509_crt_deinit(leaf);
    gnutls_x509_privkey_deinit(ca_key);
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_privkey_deinit(other);
}

/* Write text to dir/name; the path into out. */
static inline void tls_fixture_file(const char *dir, const char *name, const char *text, char *out,
                                    size_t n)
{
    snprintf(out, n, "%s/%s", dir, name);
    FILE *fp = fopen(out, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    /* owner only, as a deployment keeps a key (tlscreds refuses one others may read) */
    assert_int_equal(chmod(out, 0600), 0);
}

#endif
