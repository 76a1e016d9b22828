/*
 * reload: build the snapshot in force (snapshot.h) from the files, at start
 * and again on SIGHUP (configuration and keys) or when the keys file changes
 * on disk (inotify). A new configuration or keys file with any problem is
 * refused with its problems logged, and the snapshot in force stays.
 *
 * What a reload can change: keys, aliases, backends, limits, log level and
 * access log (which is also reopened, for log rotation), CORS, discovery
 * interval, "auth", the TLS certificate and key (read again from their
 * files: new connections get them). What only a restart changes, because
 * sockets and threads are made at start: listen, workers, whether there is
 * "tls", tls.listen, tls.priorities, metrics.listen,
 * limits.max_connections, limits.max_connections_per_address and the client
 * deadlines limits.header_timeout_s, body_timeout_s and idle_timeout_s (a
 * reload that changes them says so and applies the rest).
 *
 * Main thread only.
 */
#ifndef GATEWAY_RELOAD_H
#define GATEWAY_RELOAD_H

#include "config.h"
#include "snapshot.h"

#include <stdbool.h>

/*
 * The first snapshot for cfg (a reference the call takes over): keys loaded
 * when auth is "keys", backends polled once and discovery started. Publishes
 * it and returns 0, or logs why not and returns -1 (exit code 1 for a bad keys
 * file, see *bad_input; 2 otherwise).
 */
int reload_start(struct cfg *cfg, bool *bad_input);

/* SIGHUP: reload the configuration at path and its keys. 0, or -1 (old in force). */
int reload_all(const char *path);

/* The keys file changed: reload only the keys. 0, or -1 (old in force). */
int reload_keys(void);

/* Stop discovery, drop the published snapshot, close the watch (at exit). */
void reload_stop(void);

/*
 * Watching the keys file for changes: an inotify descriptor on its folder (a
 * rename over the file replaces its inode, so the file itself cannot be
 * watched), re-aimed by every reload; -1 when auth is not "keys". The
 * descriptor can change after a reload: ask again before each wait.
 * reload_watch_changed() drains it and says whether any event concerned the
 * keys file.
 */
int reload_watch_fd(void);
bool reload_watch_changed(void);

#endif
