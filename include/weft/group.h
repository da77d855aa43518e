/* weft/group.h: errgroup (Go's golang.org/x/sync/errgroup) for C.
 *
 * A group runs tasks, each fn(ctx, arg) returning an int (0: success), and
 * collects the first nonzero result. Optionally it derives a context from a
 * parent: that context is canceled, with the first error as its cause, as
 * soon as a task fails, and in any case when weft_group_wait returns.
 *
 * Threads: tasks run on worker threads shared by every group of the
 * process and reused from task to task. A task is handed to an idle worker
 * (the most recently idle first, so few threads stay warm) or, when none is
 * idle, to a new thread. Idle workers sleep on a futex and exit after
 * WEFT_GROUP_IDLE_NS without work. So the number of threads is bounded by
 * the most tasks that were ever in flight at once (across all groups), not
 * by the number of tasks: 1,000,000 tasks under a limit of 100 use at most
 * 100 threads.
 *
 * Limit: set_limit(n) caps the tasks in flight (admitted and not yet
 * returned); go blocks and try_go fails while n run. The limit counts
 * tasks, not threads: an admitted task always gets a thread of its own at
 * once, so a task may block waiting for a sibling that was admitted
 * (through a channel, a WaitGroup, ...) without deadlocking the group.
 * Without a limit, threads grow with the tasks in flight. (Calling
 * weft_group_go from a task at the limit blocks that task until a slot
 * frees, as in Go: if every running task does so, they deadlock.)
 *
 * Errors: the first nonzero task result is recorded before the derived
 * context is canceled, so a sibling that returns -ECANCELED because of
 * that cancellation never becomes the group's error. As in Go, the first
 * error is kept for the life of the group: a reused group's wait still
 * returns it, and the derived context, once canceled, stays canceled.
 *
 * A task that ends its thread. A task fn that calls pthread_exit, or whose
 * thread is canceled (pthread_cancel, acted on at a cancellation point
 * inside fn), never returns; the group counts it as a task that returned
 * -EOWNERDEAD: it is the group's error if it is the first (the derived
 * context is canceled with it as cause), its slot under the limit is
 * freed, and wait sees it finished. The group's worker threads are
 * elastic (one per task in flight, started on demand), so the dying
 * thread is not replaced: it leaves the pool of threads and the next go
 * starts or reuses another. Under weft_group_set_tasks the task's carrier
 * thread is the one that ends, and the task runtime replaces it
 * (weft/task.h). weft notices the end from a thread-specific-data
 * destructor after glibc's unwinding, whatever the fn was compiled with.
 * weft's own waits are not cancellation points (a cancel is acted on only
 * in fn's own code). A task that crashes (SIGSEGV, abort, ...) ends the
 * whole process, like an unrecovered panic in Go: weft does not catch
 * signals to recover from them.
 *
 * Concurrency: go, try_go and wait may be called by any threads at once,
 * also from tasks of the group (except wait: a task that waits for its own
 * group waits for itself). set_limit must not race with go/try_go.
 * destroy is the last call on a group.
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_group weft_group_t;

/* A task: the group's context (see weft_group_create) and the argument
 * given to go; returns 0 or an error (any nonzero int). */
typedef int (*weft_group_fn)(weft_ctx_t *ctx, void *arg);

/* How long an idle worker thread waits for work before it exits (ns). */
#define WEFT_GROUP_IDLE_NS 1000000000LL

/* Create a group. With ctx non-NULL, *ctx receives a context derived from
 * parent (NULL: background) that the group owns (do not release it; it is
 * valid until weft_group_destroy); it is canceled with the first error as
 * its cause, or when wait returns. With ctx NULL there is no derived
 * context (Go's zero Group). Tasks receive the derived context, else the
 * parent, else weft_ctx_background(). The parent must outlive the group.
 * No limit initially. Returns 0, -EINVAL (out NULL) or -ENOMEM. */
WEFT_API int weft_group_create(weft_group_t **out, weft_ctx_t *parent, weft_ctx_t **ctx);

/* Limit the tasks in flight to n (n < 0: no limit; 0: go blocks until the
 * limit is raised, try_go always fails). Returns 0, -EINVAL (NULL), or
 * -EBUSY while any task of the group is in flight (nothing changed). */
WEFT_API int weft_group_set_limit(weft_group_t *g, int n);

/* on nonzero: the group's tasks run as tasks (weft/task.h), one weft_go
 * per go, as Go's errgroup starts a goroutine per Go; 0 (the default):
 * on the process's reused worker threads. A task blocked in weft parks
 * instead of holding a thread. Returns 0, -EINVAL (NULL) or -EBUSY while
 * any task of the group is in flight (nothing changed). */
WEFT_API int weft_group_set_tasks(weft_group_t *g, int on);

/* Run fn(ctx, arg) on a worker thread, blocking while the group is at its
 * limit. Returns 0 once the task is admitted; -EINVAL (NULL g or fn), or
 * -EAGAIN / -ENOMEM when no thread could be started (the task was not
 * admitted and will not run). */
WEFT_API int weft_group_go(weft_group_t *g, weft_group_fn fn, void *arg);

/* As go, but never blocks: -EAGAIN when the group is at its limit. */
WEFT_API int weft_group_try_go(weft_group_t *g, weft_group_fn fn, void *arg);

/* Block until every task admitted so far has returned, then cancel the
 * derived context (if any). Returns the first nonzero task result of the
 * group's life, or 0; -EINVAL for NULL. The group may be used again. */
WEFT_API int weft_group_wait(weft_group_t *g);

/* Wait for any task still in flight, release the derived context, free the
 * group. NULL is a no-op. */
WEFT_API void weft_group_destroy(weft_group_t *g);

/* Counters for tests and tuning. */
typedef struct weft_group_stats {
	uint64_t started;      /* tasks admitted by this group */
	unsigned running;      /* its tasks in flight now */
	unsigned max_running;  /* the most of its tasks ever in flight at once */
	/* the worker threads shared by every group of the process: */
	unsigned threads;         /* alive now */
	unsigned idle;            /* of which idle */
	uint64_t threads_created; /* since the process started */
} weft_group_stats_t;

/* Fill *out (g NULL: only the process-wide fields, the others 0). Returns 0
 * or -EINVAL (out NULL). A snapshot; never blocks. */
WEFT_API int weft_group_stats(const weft_group_t *g, weft_group_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_GROUP_H */
