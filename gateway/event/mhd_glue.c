#include "mhd_glue.h"

#include "conntrack.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define CONNECTION_MEMORY (8 << 10) /* per connection: read buffer, headers, response block */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    /* Called from inside MHD_run on the worker's thread: a head refused for
     * its Content-Length is still ours to answer (conntrack_bad_length). */
    if (strstr(fmt, "Content-Length' header"))
        conntrack_bad_length(cls);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("libmicrohttpd: %s", msg);
}

struct MHD_Daemon *mhd_glue_start(struct worker *w, int fd)
{
    const struct cfg *cfg = w->gw->cfg;
    const struct worker_hooks *h = w->gw->hooks;
    unsigned nworkers = w->gw->nworkers ? w->gw->nworkers : 1;
    unsigned limit = (unsigned)(cfg->limits.max_connections / nworkers);
    if (limit < 4)
        limit = 4;
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        h->access, w, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, h->completed, w,
        MHD_OPTION_NOTIFY_CONNECTION, conntrack_notify, w, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->limits.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, w, MHD_OPTION_END);
}
