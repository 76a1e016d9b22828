/*
 * clock: monotonic milliseconds, the one time base of timeouts, queues and
 * limits (and microseconds for what metrics measure). Any thread.
 */
#ifndef GATEWAY_CLOCK_H
#define GATEWAY_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
int64_t now_ms(void);
/* Monotonic microseconds, on the same clock (metrics' histograms). */
int64_t now_us(void);

#endif
