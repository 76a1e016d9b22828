#include "mhd_glue.h"

#include "conntrack.h"
#include "log.h"
#include "tlscreds.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>

#define CONNECTION_MEMORY (8 << 10) /* per connection: read buffer, headers, response block */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    /* Called from inside MHD_run on the worker's thread: a head refused for
     * its Content-Length is still ours to answer (conntrack_bad_length). */
    if (strstr(fmt, "Content-Length' header"))
        conntrack_bad_length(cls);
    mhd_glue_log("libmicrohttpd", fmt, ap);
}

void mhd_glue_log(const char *who, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("%s: %s", who, msg);
}

/*
 * GnuTLS's certificate callback (gnutls_certificate_retrieve_function2), run
 * on the worker's thread inside MHD_run during a handshake. libmicrohttpd
 * 0.9.75 makes the session's pointer its connection (new_connection_prepare_
 * in daemon.c: gnutls_session_set_ptr), whose socket context is our entry.
 * The chain and key stay ours: GnuTLS neither frees nor changes what this
 * callback returns, and the entry's reference keeps them alive until the
 * connection is closed, after the session is gone (libmicrohttpd calls
 * gnutls_deinit before it notifies the close).
 */
static int tls_certificate(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int npk_algos,
                           gnutls_pcert_st **pcert, unsigned int *npcert, gnutls_privkey_t *pkey)
{
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)npk_algos;
    struct MHD_Connection *mc = gnutls_session_get_ptr(session);
    const struct conn *cn = mc ? conntrack_of(mc) : NULL;
    const struct tls_creds *t = cn ? cn->tls : NULL;
    if (!t)
        return -1; /* no entry (out of memory): the handshake fails */
    *pcert = (gnutls_pcert_st *)t->chain;
    *npcert = t->nchain;
    *pkey = t->key;
    return 0;
}

/* The session's reads: recv(2), counted. A read that finds nothing while
 * the handshake is not finished is a stall; any other read that returns
 * bytes, an end or an error moves the connection on. */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
    struct conn *cn = p;
    ssize_t r = recv(cn->fd, buf, n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (gnutls_handshake_get_last_in(cn->tls_session) != GNUTLS_HANDSHAKE_FINISHED)
            cn->w->tls_stalls++;
    } else {
        cn->w->tls_moves++;
    }
    return r;
}

/* The session's writes: one sendmsg(2) per batch of records, as GnuTLS's
 * own, without SIGPIPE. */
static ssize_t tls_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
    struct conn *cn = p;
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t r = sendmsg(cn->fd, &m, MSG_NOSIGNAL);
    if (r >= 0)
        cn->w->tls_moves++;
    return r;
}

void mhd_glue_tls_transport(struct conn *cn, void *session)
{
    gnutls_session_t s = session;
    cn->tls_session = s;
    gnutls_transport_set_ptr(s, cn);
    gnutls_transport_set_pull_function(s, tls_pull);
    gnutls_transport_set_vec_push_function(s, tls_push);
}

struct MHD_Daemon *mhd_glue_start(struct worker *w, int fd, bool tls)
{
    const struct cfg *cfg = w->gw->cfg;
    const struct worker_hooks *h = w->gw->hooks;
    unsigned nworkers = w->gw->nworkers ? w->gw->nworkers : 1;
    unsigned limit = (unsigned)(cfg->limits.max_connections / nworkers);
    if (limit < 4)
        limit = 4;
    /* The TLS options, or none: an array that starts with its end. */
    struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_certificate},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)cfg->tls.priorities},
        {MHD_OPTION_END, 0, NULL},
    };
    const struct MHD_OptionItem *more = tls ? tls_options : &tls_options[2];
    /* No MHD_USE_TURBO with TLS: it leaves a new connection out of the
     * daemon's epoll set until a read of its own finds the socket drained,
     * which the handshake's reads never count as (mhd_glue.h), so a
     * handshake would be driven by runs on a timer instead of by events. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    flags |= tls ? MHD_USE_TLS : MHD_USE_TURBO;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, h->access, w, MHD_OPTION_ARRAY, more, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_NOTIFY_COMPLETED, h->completed, w, MHD_OPTION_NOTIFY_CONNECTION,
        conntrack_notify, w, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->limits.idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, w, MHD_OPTION_END);
}
