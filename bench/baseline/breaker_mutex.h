/* bench/baseline/breaker_mutex.h: the mutex circuit breaker, the yardstick
 * weft_breaker_t (weft/breaker.h) is measured against.
 *
 * sony/gobreaker v2 as it is written, in C, under the prefix mbreaker_:
 * one pthread mutex taken twice per call (before the request and after
 * it), the same settings (weft_breaker_settings_t; only gobreaker's fields
 * are read: name, max_requests, interval, bucket_period, timeout,
 * ready_to_trip, on_state_change, is_successful, is_excluded, user,
 * clock), the same counts, generations, lazy transitions and rolling
 * window, the same return codes as weft's breaker (-EBUSY open, -EAGAIN
 * half-open and full, -EINVAL NULL). As in gobreaker, on_state_change and
 * ready_to_trip run under the mutex: they must not call the breaker.
 *
 * Design, as a competent engineer would write it with a lock: the state,
 * the generation and the counts live under one mutex; a call locks, brings
 * the state up to date with the clock (open -> half-open after timeout,
 * interval reset, rolling the window), decides, counts, unlocks; the
 * result locks again and is ignored if the generation changed. The clock
 * is read inside the lock (as gobreaker's time.Now()).
 * Every call may be made from any thread; destroy is the last call.
 */
#ifndef WEFT_BENCH_BREAKER_MUTEX_H
#define WEFT_BENCH_BREAKER_MUTEX_H

#include <weft/breaker.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mbreaker mbreaker_t;

/* 0, -EINVAL (out NULL; more than WEFT_BREAKER_MAX_WINDOW buckets), -ENOMEM */
int mbreaker_create(mbreaker_t **out, const weft_breaker_settings_t *s);
void mbreaker_destroy(mbreaker_t *b);
int mbreaker_execute(mbreaker_t *b, int (*fn)(void *arg), void *arg, int *rc);
int mbreaker_allow(mbreaker_t *b, weft_breaker_ticket_t *t);
int mbreaker_done(mbreaker_t *b, const weft_breaker_ticket_t *t, int rc);
int mbreaker_state(mbreaker_t *b);
int mbreaker_counts(mbreaker_t *b, weft_breaker_counts_t *out);
const char *mbreaker_name(const mbreaker_t *b);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_BREAKER_MUTEX_H */
