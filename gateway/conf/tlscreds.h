/*
 * tlscreds: a TLS certificate chain and its private key, read from PEM files
 * and judged before they are ever served: the chain parses and is in order
 * (each certificate issued by the next), the key parses, and the key is the
 * one the first certificate was issued for. Also the check of a GnuTLS
 * priority string, and the gateway's default one.
 *
 * config.c loads the credentials of "tls" with every cfg_load() (start,
 * `check`, SIGHUP), so a bad new certificate fails the load and a reload
 * keeps the configuration, and the certificate, in force.
 *
 * Ownership and threads: a struct tls_creds is immutable once loaded and
 * reference-counted (atomic). The configuration that loaded it holds one
 * reference; each TLS connection holds one from its accept to its close
 * (event/conntrack.c), because GnuTLS borrows the chain and the key that the
 * certificate callback hands it for as long as the session may use them.
 * Any thread may take or drop a reference; the last drop frees.
 */
#ifndef GATEWAY_TLSCREDS_H
#define GATEWAY_TLSCREDS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

/* TLS 1.3 and 1.2 only; for 1.2, ECDHE key exchange and AEAD ciphers only
 * (AES-GCM, ChaCha20-Poly1305), which is Mozilla's "intermediate" profile
 * without finite-field DHE; the server's order of preference wins. X25519
 * comes first among the groups because it is the key share clients send
 * first (OpenSSL, curl, browsers): preferring another one would cost every
 * TLS 1.3 handshake a HelloRetryRequest round trip. */
#define TLS_DEFAULT_PRIORITIES                                                                     \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:"                \
    "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:%SERVER_PRECEDENCE"

#define TLS_MAX_CHAIN 16        /* certificates in one chain file */
#define TLS_MAX_PEM (1u << 20)  /* bytes in a certificate or key file */
#define TLS_FINGERPRINT_SIZE 96 /* "AB:CD:..." of a SHA-256, with its '\0' */

struct tls_creds {
    atomic_uint refs;
    gnutls_pcert_st chain[TLS_MAX_CHAIN]; /* owned: the leaf first */
    unsigned nchain;
    gnutls_privkey_t key; /* owned */
    /* Of the leaf, for the log: */
    char subject[256];                      /* its distinguished name */
    char fingerprint[TLS_FINGERPRINT_SIZE]; /* SHA-256 of its DER, "AB:CD:..." */
    time_t not_before, not_after;
};

/*
 * Read and judge cert_path (a PEM chain, leaf first) and key_path (a PEM
 * private key, not encrypted). Returns credentials holding one reference, or
 * NULL with why[] saying what is wrong (naming the file).
 */
struct tls_creds *tls_creds_load(const char *cert_path, const char *key_path, char *why,
                                 size_t whysz);

/* The same from memory (the names are only for messages). */
struct tls_creds *tls_creds_from_pem(const char *cert, size_t cert_len, const char *cert_name,
                                     const char *key, size_t key_len, const char *key_name,
                                     char *why, size_t whysz);

struct tls_creds *tls_creds_ref(struct tls_creds *c);
void tls_creds_unref(struct tls_creds *c);

/* One line for the log: the leaf's subject, SHA-256 fingerprint and the
 * last day it is valid; and, when it is not valid at time now, why (a
 * warning clients will refuse it), else "" in warn. */
void tls_creds_describe(const struct tls_creds *c, time_t now, char *out, size_t outsz, char *warn,
                        size_t warnsz);

/* Does GnuTLS accept prio? 0, or -1 with why[] naming where it stops. */
int tls_priorities_check(const char *prio, char *why, size_t whysz);

#endif
