/*
 * fileio: reading a whole file with a ceiling, and writing files so that
 * nothing half-written is ever seen. Any thread; nothing here keeps state.
 */
#ifndef GATEWAY_FILEIO_H
#define GATEWAY_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Read fd to its end into a malloc'd buffer with a '\0' after the bytes
 * (caller frees *text; *len excludes the '\0'). A file of more than max
 * bytes is refused, by its size before reading and by what reading finds
 * (it may grow meanwhile). Returns 0, or -1 with errno: EFBIG (more than
 * max), ENOMEM, or fstat(2)'s or read(2)'s; *text is then NULL.
 */
int fileio_read_all(int fd, size_t max, char **text, size_t *len);

/* Write all of p[0..n) to fd, retrying on EINTR and short writes. 0 or -1 (errno). */
int fileio_write_all(int fd, const char *p, size_t n);

/* Replace the file at path with text in one step: a temporary file in the
 * same folder with the given mode, written, fsync'ed and renamed over path,
 * then the folder fsync'ed. Readers see the old file or the new one, never
 * a mix. 0, or -1 after logging which step failed (the temporary file is
 * removed). */
int fileio_replace(const char *path, const char *text, size_t len, mode_t mode);

#endif
