/*
 * log: diagnostics on stderr, and the access log.
 *
 * Diagnostics are one line per event:
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
 * The access log is JSON lines built by the server module; this module owns
 * the descriptor and writes the lines.
 *
 * How lines reach their descriptor. While the writer thread runs
 * (log_writer_start(), which `serve` calls before its workers start), no
 * thread that logs ever writes: it copies its whole line into a bounded ring
 * of its own (made on its first line, freed by the writer after the thread
 * exits) and one writer thread drains every ring and does the blocking
 * writes, continuing after short writes. So a stalled reader (a full pipe,
 * a slow journald) stalls only the writer, and lines never split or
 * interleave whatever their length, since only the writer writes. A line
 * that does not fit in its thread's ring is dropped whole and counted; the
 * writer reports the count as a diagnostic ("access log: N lines dropped,
 * the reader is too slow") after its next writes go through. Every thread
 * (workers, main, discovery) goes this way while the writer runs: one rule,
 * and the main thread's rare lines cannot stall on a slow journald either.
 * Lines of one thread keep their order; lines of different threads are in
 * the order the writer finds them.
 *
 * Locks: each ring has a mutex held by its producer for one copy in and by
 * the writer for one copy out, never across I/O; the writer's own mutex is
 * held by producers only to wake it (once per batch, not per line). Before
 * the writer starts and after it stops (the `check` and `key` commands,
 * tests, the last lines at exit) each line is written by its own thread
 * with one write, as before.
 *
 * log_access_open() may be called again (on reload) while other threads
 * log: it first lets the writer write what was queued (bounded wait), then
 * the new target replaces the old one atomically (dup3 onto a descriptor that
 * never changes), so a write lands in either the old or the new file, never
 * in a closed or reused descriptor.
 *
 * All functions are thread-safe unless said otherwise. The module owns its
 * descriptors, the rings and the writer thread.
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
/* Each thread's ring in the gateway: room for a burst of about a hundred
 * access lines while the reader catches up. */
#define LOG_RING_BYTES (256u << 10)
/* How long a reopen or the exit waits for the writer to write what is
 * queued before it goes on anyway (a reader that does not read). */
#define LOG_FLUSH_MS 2000

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
 * Start the writer thread: from now on every line goes through its thread's
 * ring of ring_bytes (at least two maximal diagnostic lines). Call it from
 * the thread whose signal mask the writer should inherit. 0, or -1 with errno
 * (EBUSY if it runs already).
 */
int log_writer_start(size_t ring_bytes);
/*
 * Wait until everything logged before the call has been written, for at most
 * timeout_ms. 0, or -1 when the writer is still blocked on its reader. Returns
 * 0 at once when the writer does not run.
 */
int log_flush(int timeout_ms);
/*
 * Stop queueing (lines are written synchronously again), let the writer write
 * what is queued and join it, waiting at most timeout_ms. -1 when the writer
 * was still blocked on its reader: it is left to die with the process.
 */
int log_writer_stop(int timeout_ms);
/* Lines dropped because their thread's ring was full, since the start of the
 * process: access-log lines (true) or diagnostics (false). */
unsigned long long log_dropped(bool access);

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
 * Log json[0..len) and a '\n' as one line: queued whole for the writer, or,
 * when it does not run, written here. json must not contain a newline.
 * Returns 0 (also when the access log is off), or -1 with errno set: EAGAIN
 * when the line was dropped (counted and reported) because the ring is full.
 */
int log_access_line(const char *json, size_t len);
/* Write what is queued (bounded wait), then close the access log (at exit,
 * or in tests). Not concurrent with log_access_line(). */
void log_access_close(void);

#endif
