#include "shared_dns.h"

#include "sharedcfg.h"
#include "snapshot.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char entry_host[256];              /* under mu */
static unsigned entry_port;               /* under mu */
static char entry_addr[INET6_ADDRSTRLEN]; /* under mu */

static bool numeric(const char *host)
{
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

void shared_dns_refresh(void)
{
    struct snapshot *s = snapshot_acquire();
    if (!s)
        return;
    const struct cfg_shared *c = &s->cfg->shared;
    char host[sizeof entry_host], addr[INET6_ADDRSTRLEN];
    unsigned port = c->port;
    bool want = c->enabled && c->host && strlen(c->host) < sizeof host && !numeric(c->host);
    if (want)
        snprintf(host, sizeof host, "%s", c->host);
    snapshot_unref(s);
    if (!want || !sharedcfg_resolve(host, port, addr, sizeof addr))
        return; /* keep what was found before: a DNS hiccup is not a new address */
    pthread_mutex_lock(&mu);
    snprintf(entry_host, sizeof entry_host, "%s", host);
    entry_port = port;
    snprintf(entry_addr, sizeof entry_addr, "%s", addr);
    pthread_mutex_unlock(&mu);
}

bool shared_dns_get(const char *host, unsigned port, char *out, size_t size)
{
    bool found = false;
    pthread_mutex_lock(&mu);
    if (entry_addr[0] && entry_port == port && strcmp(entry_host, host) == 0) {
        snprintf(out, size, "%s", entry_addr);
        found = true;
    }
    pthread_mutex_unlock(&mu);
    return found;
}

void shared_dns_reset(void)
{
    pthread_mutex_lock(&mu);
    entry_host[0] = entry_addr[0] = '\0';
    entry_port = 0;
    pthread_mutex_unlock(&mu);
}
