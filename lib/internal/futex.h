/* lib/internal/futex.h: raw private futex wait/wake.
 *
 * weft__futex_wait sleeps while *word == expected, until woken or until the
 * absolute CLOCK_MONOTONIC deadline (ns; WEFT_FOREVER: none). It returns 0
 * when woken or when *word no longer held expected (the caller re-checks
 * its condition in both cases: wake-ups may be spurious), -ETIMEDOUT when
 * the deadline passed. EINTR is reported as 0 (a spurious wake-up).
 * weft__futex_wake wakes up to n sleepers on word; waking an address
 * nobody sleeps on is harmless. */
#ifndef WEFT_INTERNAL_FUTEX_H
#define WEFT_INTERNAL_FUTEX_H

#include <stdint.h>

int weft__futex_wait(uint32_t *word, uint32_t expected, int64_t deadline);
void weft__futex_wake(uint32_t *word, int n);

/* counters for tests and benchmarks: syscalls made by this process */
uint64_t weft__futex_waits(void);
uint64_t weft__futex_wakes(void);

#endif
