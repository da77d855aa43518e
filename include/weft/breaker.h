/* weft/breaker.h: a circuit breaker with sony/gobreaker v2's behaviour, in C.
 *
 * A breaker stands in front of a call that may fail (a downstream service).
 * While it is CLOSED calls go through and their results are counted; when
 * ready_to_trip says so it OPENs and every call fails at once with -EBUSY
 * (a few ns, no call made) for `timeout`; then it is HALF_OPEN: it lets
 * max_requests calls through as probes, closes after max_requests
 * successes in a row and opens again on one failure.
 *
 * gobreaker parity (a Go user finds what they know):
 *   - Settings' zero values take gobreaker's defaults: max_requests 0 -> 1,
 *     interval <= 0 -> counts never reset while closed, timeout <= 0 ->
 *     60 s, ready_to_trip NULL -> consecutive_failures > 5, is_successful
 *     NULL -> rc == 0, is_excluded NULL -> nothing excluded.
 *   - Counts (weft_breaker_counts_t) are gobreaker's Counts; they are
 *     cleared on every state change and, while closed, every `interval`.
 *     With bucket_period > 0 they are a rolling window of
 *     interval / bucket_period buckets instead (interval rounded up to a
 *     multiple of bucket_period), as gobreaker v2's.
 *   - Generations: every state change (and every interval reset) starts a
 *     new generation; a result reported for a call admitted in an earlier
 *     generation is ignored. Transitions are lazy: open turns half-open
 *     when a call (or weft_breaker_state) finds the clock strictly past
 *     the moment it opened plus the open timeout; nothing runs in the
 *     background, no thread, no timer.
 *   - Half-open admits a call while requests - exclusions < max_requests
 *     (excluded results free their slot, as gobreaker v2.1); other calls
 *     get -EAGAIN (gobreaker's ErrTooManyRequests).
 *   - A result is judged by is_excluded first (excluded: counted in
 *     total_exclusions only), then is_successful.
 *   - Two-step use: weft_breaker_allow gives a ticket, weft_breaker_done
 *     reports the result (gobreaker's TwoStepCircuitBreaker). A ticket
 *     that is never reported is allowed (as in Go, a dropped done func):
 *     in half-open it keeps its slot until the generation ends.
 *
 * Where gobreaker is silent or differs:
 *   - on_state_change is called once per transition, in order, never on
 *     two threads at once, and from no lock: it may call this breaker
 *     (gobreaker calls it under its mutex, where that deadlocks). A call
 *     that causes a transition returns only after its callback has run,
 *     except a call made from inside on_state_change itself (by the task
 *     or thread running it, also through another breaker's callback): its
 *     transitions are delivered by that same delivery loop right after the
 *     current callback returns. A callback may block (from a weft task it
 *     parks the task); other calls that made transitions wait for it.
 *   - ready_to_trip runs under the breaker's lock, as in gobreaker: it
 *     must not call the breaker. is_successful and is_excluded run on the
 *     calling thread with no lock held (they may call the breaker).
 *   - fn panicking has no C equivalent; a fn that longjmps out of execute
 *     leaves its call unreported (as a dropped two-step ticket).
 *   - Counts are uint32 and wrap as gobreaker's do.
 *   - With the default clock (settings.clock NULL) an open breaker reads
 *     CLOCK_MONOTONIC_COARSE first (a few ns) and the precise clock only
 *     within 20 ms of the end of its timeout; the transition is therefore
 *     never early, and never later than the next call after the timeout.
 *
 * Beyond gobreaker (all off when zero, so a zeroed struct is gobreaker):
 *   - failure_rate / slow_call_rate: trip while closed when, over a
 *     sliding window (window_calls: the last N results, or window_time:
 *     the last T ns in window_buckets buckets), failures (or calls slower
 *     than slow_call_duration) make up at least that share of the calls,
 *     and the window holds at least min_calls results. These are checked
 *     beside ready_to_trip; with a rate set and ready_to_trip NULL, the
 *     consecutive-failures default is off (only the rates trip).
 *   - half_open_success_rate: half-open lets max_requests probes through
 *     and closes when at least that share of them succeeded, opens when
 *     that share can no longer be reached (decided as soon as it is
 *     certain), instead of "all max_requests succeed, one failure opens".
 *   - backoff_multiplier > 1: each time the breaker opens again without
 *     having closed, its open timeout is multiplied by it (timeout, timeout
 *     * m, timeout * m^2, ...), up to backoff_max (0: no ceiling), then
 *     shortened by a random share of up to backoff_jitter (0..1) so that a
 *     fleet of breakers does not probe in step. Closing resets it.
 *   - manual control: force open, force closed, disable, reset.
 *   - a stats snapshot: state, mode, time in state, calls rejected, opens,
 *     the current open timeout, the window's figures.
 *
 * Cost: in the closed state with no interval, no bucket_period, no rate
 * and no slow-call threshold (gobreaker's default shape), a call is one
 * compare-and-swap to admit it and one to count its success or exclusion,
 * with no lock and no clock read; a failure takes the breaker's lock (it
 * may trip). An open breaker rejects with one atomic increment on a
 * per-thread stripe and a coarse clock read, no lock. Every other path
 * (half-open, intervals, windows, rates, transitions) takes the breaker's
 * internal lock for a few hundred ns at most, callbacks aside.
 *
 * Concurrency: every call may be made from any number of threads at once,
 * except weft_breaker_destroy, which must be the last call on the breaker
 * (no call in flight, no callback running). Nothing here blocks except on
 * the internal locks (and on another thread's on_state_change callback, see
 * above). Memory: the breaker owns a copy of settings.name; callbacks'
 * `user` is the caller's.
 *
 * Errors: 0 on success; -EBUSY open (or forced open); -EAGAIN half-open and
 * its probes all taken; -EINVAL a NULL handle or argument or a setting out
 * of range (then nothing was created or changed); -ENOMEM.
 */
#ifndef WEFT_BREAKER_H
#define WEFT_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_breaker weft_breaker_t;

enum { WEFT_BREAKER_CLOSED = 0, WEFT_BREAKER_HALF_OPEN = 1, WEFT_BREAKER_OPEN = 2 };

/* Manual modes (weft_breaker_stats_t.mode). */
enum {
	WEFT_BREAKER_NORMAL = 0,        /* the state machine runs */
	WEFT_BREAKER_FORCED_OPEN = 1,   /* open until reset / force_closed / disable */
	WEFT_BREAKER_FORCED_CLOSED = 2, /* closed, counting, never trips */
	WEFT_BREAKER_DISABLED = 3,      /* every call goes through, nothing counted */
};

typedef struct weft_breaker_counts {
	uint32_t requests, total_successes, total_failures, total_exclusions,
		consecutive_successes, consecutive_failures;
} weft_breaker_counts_t;

typedef struct weft_breaker_settings { /* zeroed fields take gobreaker's defaults */
	const char *name;      /* copied; NULL: "" */
	uint32_t max_requests; /* half-open: calls let through, and successes to close; 0: 1 */
	int64_t interval;      /* closed: ns between count resets; <= 0: never */
	int64_t bucket_period; /* > 0: rolling window of interval/bucket_period buckets */
	int64_t timeout;       /* open -> half-open after this (ns); <= 0: 60 s */
	bool (*ready_to_trip)(const weft_breaker_counts_t *c, void *user); /* NULL: consecutive_failures > 5 */
	void (*on_state_change)(const char *name, int from, int to, void *user);
	bool (*is_successful)(int rc, void *user); /* NULL: rc == 0 */
	bool (*is_excluded)(int rc, void *user);   /* NULL: nothing excluded */
	void *user;
	int64_t (*clock)(void *user); /* ns, monotonic; NULL: weft_now (tests inject a fake) */

	/* ---- beyond gobreaker: each off (gobreaker's behaviour) when zero ---- */

	/* Trip while closed when failures / calls over the window >= this
	 * (0 < rate <= 1). Excluded results are not calls. */
	double failure_rate;
	/* A call slower than this (ns, measured with `clock` from admission to
	 * its result) is slow. Alone it only feeds the stats and the two rates
	 * below; 0: no call is slow. */
	int64_t slow_call_duration;
	/* Trip while closed when slow calls / calls over the window >= this
	 * (0 < rate <= 1; needs slow_call_duration). Slow successes count. */
	double slow_call_rate;
	/* The rates' window: the last window_calls results (count-based), or,
	 * when window_time > 0, the results of the last window_time ns in
	 * window_buckets buckets (time-based; 0 buckets: 10). Both 0 with a
	 * rate set: the last 100 results. At most WEFT_BREAKER_MAX_WINDOW
	 * calls or buckets. The window starts empty at every state change
	 * (and mode change); `interval` resets clear the counts, not it. */
	uint32_t window_calls;
	int64_t window_time;
	uint32_t window_buckets;
	/* No rate trips before the window holds this many results; 0: 100,
	 * or window_calls if that is smaller. */
	uint32_t min_calls;
	/* Half-open: close when successes / max_requests >= this (0 < rate <=
	 * 1), open when that can no longer be reached. 0: gobreaker's rule.
	 * With slow_call_rate set, a slow success counts as a failure here. */
	double half_open_success_rate;
	/* > 1: each reopening without a close multiplies the open timeout by
	 * this; 0 or 1: every open lasts `timeout`. */
	double backoff_multiplier;
	/* Ceiling of the backed-off timeout (ns); 0: none (saturates). */
	int64_t backoff_max;
	/* 0..1: each open timeout (after the ceiling) is shortened by a
	 * uniformly random share in [0, backoff_jitter). 0: none. */
	double backoff_jitter;
	/* Seed of the jitter's generator; 0: from the clock and the breaker's
	 * address. */
	uint64_t seed;
} weft_breaker_settings_t;

/* Largest window_calls, window_buckets and interval / bucket_period. */
#define WEFT_BREAKER_MAX_WINDOW (1u << 20)

/* What weft_breaker_allow hands out and weft_breaker_done takes back.
 * `start` is the admission time on the breaker's clock when a slow-call
 * threshold is set (else 0). Plain data: copy it freely. */
typedef struct weft_breaker_ticket {
	uint64_t generation, age;
	int64_t start;
} weft_breaker_ticket_t;

typedef struct weft_breaker_stats {
	int state;             /* WEFT_BREAKER_CLOSED / HALF_OPEN / OPEN */
	int mode;              /* WEFT_BREAKER_NORMAL / FORCED_OPEN / ... */
	uint64_t generation;   /* starts at 1; +1 per state change and interval reset */
	int64_t since;         /* when the state was entered (breaker's clock) */
	int64_t time_in_state; /* now - since */
	int64_t open_until;    /* open: turns half-open once the clock is past this
				* (INT64_MAX when forced open); else 0 */
	int64_t open_timeout;  /* the timeout of the current (open) or next opening */
	uint32_t backoff_level; /* openings since the breaker last closed */
	uint64_t opened;        /* transitions to open since creation (forced ones too) */
	uint64_t rejected;      /* calls refused since creation: rejected_open + rejected_half_open */
	uint64_t rejected_open;      /* -EBUSY */
	uint64_t rejected_half_open; /* -EAGAIN */
	uint64_t slow_calls;         /* results slower than slow_call_duration, ever */
	weft_breaker_counts_t counts;
	/* the rates' window (zero when no rate is set) */
	uint32_t window_results, window_failures, window_slow;
	/* on_state_change calls lost for want of memory, ever: 0 unless more
	 * than 8 transitions queued up while a callback ran (a callback that
	 * changes the breaker's mode, another thread) and the queue could not
	 * grow; each transition is otherwise delivered once */
	uint64_t callbacks_lost;
} weft_breaker_stats_t;

/* Make a breaker. s NULL: all defaults. 0, -EINVAL (out NULL; a rate or
 * jitter outside [0, 1] or NaN; backoff_multiplier < 0 or NaN;
 * backoff_max, slow_call_duration or window_time < 0; a window or bucket
 * count above WEFT_BREAKER_MAX_WINDOW; slow_call_rate without
 * slow_call_duration), -ENOMEM. On failure *out is NULL. */
WEFT_API int weft_breaker_create(weft_breaker_t **out, const weft_breaker_settings_t *s);

/* Free the breaker: the last call on it. NULL: nothing. */
WEFT_API void weft_breaker_destroy(weft_breaker_t *b);

/* Run fn(arg) if the breaker admits the call, and count its result.
 * 0: fn ran, its result in *rc (rc may be NULL) | -EBUSY: open (fn not
 * run) | -EAGAIN: half-open and its probes are all out | -EINVAL: b or fn
 * NULL. fn's own result never comes back as execute's return value. */
WEFT_API int weft_breaker_execute(weft_breaker_t *b, int (*fn)(void *arg), void *arg, int *rc);

/* Two-step, first step: 0 (the call may proceed; report it with done and
 * this ticket) | -EBUSY | -EAGAIN | -EINVAL (b or t NULL). */
WEFT_API int weft_breaker_allow(weft_breaker_t *b, weft_breaker_ticket_t *t);

/* Two-step, second step: the result rc of the call admitted with t, judged
 * as in execute. 0 (also for a stale ticket, which is ignored, as
 * gobreaker does) | -EINVAL (b or t NULL). Report each ticket once. */
WEFT_API int weft_breaker_done(weft_breaker_t *b, const weft_breaker_ticket_t *t, int rc);

/* The state, after any transition that is due (open -> half-open, an
 * interval reset): WEFT_BREAKER_*, or -EINVAL for NULL. Forced closed and
 * disabled read CLOSED, forced open OPEN. */
WEFT_API int weft_breaker_state(weft_breaker_t *b);

/* The counts as they stand (no due transition applied; weft_breaker_state
 * does). 0 or -EINVAL (b or out NULL). */
WEFT_API int weft_breaker_counts(weft_breaker_t *b, weft_breaker_counts_t *out);

/* settings.name's copy; "" for NULL b. */
WEFT_API const char *weft_breaker_name(const weft_breaker_t *b);

/* "closed", "half-open", "open"; "unknown" for anything else. */
WEFT_API const char *weft_breaker_state_name(int state);

/* ---- manual control (each 0 or -EINVAL for NULL). A change of state is
 * a transition: a new generation, counts and window cleared,
 * on_state_change. A change of mode in the same state (force_closed or
 * disable while closed, force_open while open) starts a new generation
 * too, without a callback. Tickets of earlier generations are ignored. ---- */

/* Open and stay open (calls get -EBUSY) until reset, force_closed or
 * disable; no timeout applies. */
WEFT_API int weft_breaker_force_open(weft_breaker_t *b);

/* Close and stay closed: results are counted but nothing trips, until
 * reset, force_open or disable. */
WEFT_API int weft_breaker_force_closed(weft_breaker_t *b);

/* Let every call through and count nothing (state reads CLOSED) until
 * reset, force_open or force_closed. */
WEFT_API int weft_breaker_disable(weft_breaker_t *b);

/* Back to the normal state machine, closed, counts and window cleared,
 * backoff reset (a new generation even if it was closed already). */
WEFT_API int weft_breaker_reset(weft_breaker_t *b);

/* A snapshot (applies due transitions, as weft_breaker_state). 0 or
 * -EINVAL (b or out NULL). */
WEFT_API int weft_breaker_stats(weft_breaker_t *b, weft_breaker_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BREAKER_H */
