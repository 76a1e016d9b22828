/*
 * log: diagnostics on stderr, and the access log.
 *
 * Diagnostics are one line per event, written with a single write(2) so that
 * lines from different threads never interleave:
 *
 *     2026-11-22T10:00:00.123Z warn: backend gpu1: connection refused
 *
 * (UTC, millisecond precision). Control characters in the message (a stray
 * '\n' from a peer's text, say) are replaced by spaces: one event, one line.
 * Lines longer than LOG_LINE_MAX are cut and end in "...".
 * The level is checked before anything is formatted, so log_debug() with
 * debugging off costs a function call and an atomic load. The *_errno
 * variants append ": " and strerror(errno), like OpenBSD's warn(3); every
 * function here preserves errno.
 *
 * The access log is JSON lines built by the server module; this module only
 * owns the descriptor. log_access_open() may be called again (on reload) while
 * other threads write: the new target replaces the old one atomically (dup3
 * onto a descriptor that never changes), so a writer lands in either the old
 * or the new file, never in a closed or reused descriptor.
 *
 * All functions are thread-safe. The module owns its descriptors; nothing
 * here allocates.
 */
#ifndef GATEWAY_LOG_H
#define GATEWAY_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Levels, most severe first. (Not LOG_ERR & co: those are <syslog.h> macros.) */
enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

#define LOG_LINE_MAX 4096

/* Messages at `level` and more severe are written; default LOG_LEVEL_INFO.
 * Out-of-range values are clamped. */
void log_set_level(int level);
int log_get_level(void);
bool log_enabled(int level);
/* "error", "warn", "info", "debug" -> LOG_LEVEL_*; -1 for anything else. */
int log_level_from_string(const char *s);
/* The inverse; "?" for an unknown level. Static string. */
const char *log_level_name(int level);

/* Where diagnostics go (default 2, stderr). For tests; not thread-safe
 * against concurrent logging. The descriptor stays the caller's. */
void log_set_fd(int fd);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As above, with ": strerror(errno)" appended (errno as it was on entry). */
void log_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Point the access log at `target`: "-" = stdout, NULL or "off" = no access
 * log, anything else = a file path, opened O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC
 * with mode 0640. Returns 0, or -1 with errno set and the previous target
 * still in force.
 */
int log_access_open(const char *target);
/* True when log_access_line() would write somewhere. */
bool log_access_enabled(void);
/*
 * Write json[0..len) and a '\n' as one line with a single writev(2), so that
 * concurrent lines never interleave (O_APPEND makes that hold for files).
 * json must not contain a newline. Returns 0 (also when the access log is
 * off), or -1 with errno set.
 */
int log_access_line(const char *json, size_t len);
/* Close the access log (at exit, or in tests). Not concurrent with writers. */
void log_access_close(void);

#endif
