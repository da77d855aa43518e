/* weft/common.h: time, deadlines, errors and tuning shared by every module.
 *
 * Errors: every weft call returns 0 (or a count/index) on success and a
 * negative errno on failure, never through errno:
 *   -EAGAIN     would block (the _try calls)
 *   -ETIMEDOUT  the deadline passed (the _until calls)
 *   -ECANCELED  the context was canceled (the _ctx calls)
 *   -EPIPE      closed: channel closed (and drained, for receivers), pool or
 *               group shut down
 *   -EBUSY      circuit open / resource in use
 *   -ENOMEM     out of memory, or a size too large to allocate
 *   -EINVAL     bad argument (NULL handle, size out of range, misuse)
 *   -EOWNERDEAD a job, group task or stage fn ended its thread (pthread_exit,
 *               or a pthread_cancel acted on inside it) instead of returning:
 *               the result weft gives it (on_error, wait, the pipeline's
 *               error); see weft/pool.h
 * A call that fails changes nothing. EINTR is retried inside, never returned.
 * Cancellation: weft's blocking calls are not cancellation points (a
 * pthread_cancel is acted on at the caller's next one, outside weft), and
 * weft turns cancellation off around the few it makes itself; weft_sleep in
 * a plain thread is one (clock_nanosleep), holding nothing.
 *
 * Deadlines are absolute CLOCK_MONOTONIC times in nanoseconds; WEFT_FOREVER
 * never passes. All functions here are thread-safe and never block.
 */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A deadline that never passes. */
#define WEFT_FOREVER INT64_MAX

/* Contexts are declared here so every module can take one (weft/ctx.h). */
typedef struct weft_ctx weft_ctx_t;

/* CLOCK_MONOTONIC now, in ns. */
WEFT_API int64_t weft_now(void);

/* now + timeout_ns, saturating at WEFT_FOREVER; a timeout <= 0 gives a
 * deadline that has already passed. */
WEFT_API int64_t weft_deadline(int64_t timeout_ns);

/* A static text for any int: each weft error code (negative or positive
 * errno) has its own; another errno value gets libc's description (so an
 * application's -EIO reads well); anything else "unknown error". Never NULL,
 * thread-safe. */
WEFT_API const char *weft_strerror(int err);

/* The longest spin weft_set_spin_ns accepts (1 s). */
#define WEFT_SPIN_NS_MAX 1000000000LL

/* Parking tunables. Every blocking weft call spins for at most spin_ns
 * (polling its condition) before it sleeps on a futex; it does not spin at
 * all while runnable threads outnumber cores. The default is 4000 ns, or
 * the environment variable WEFT_SPIN_NS read at first use. 0 disables
 * spinning; values above 1 s (WEFT_SPIN_NS_MAX) are taken as 1 s.
 * Returns the previous value; negative values are ignored (pass -1 to
 * read the value). Thread-safe; takes effect for later waits. */
WEFT_API int64_t weft_set_spin_ns(int64_t spin_ns);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_COMMON_H */
