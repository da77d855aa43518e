/* lib/group.c: errgroup on shared, reused worker threads.
 *
 * A group counts its tasks in flight twice: `active` (admission against the
 * limit) and a WaitGroup (for wait). Admission raises `active` with a CAS
 * while it is below the limit; a go that finds the group at its limit
 * parks in `slotq`. Admitted tasks go to the process-wide worker pool: the
 * most recently idle worker is popped and handed the task, or a new
 * detached thread is started. Workers that stay idle for
 * WEFT_GROUP_IDLE_NS leave.
 *
 * Ordering:
 * - Slots (Dekker): a finishing task lowers `active` with an RMW, fences
 *   and loads slotq's count; a blocked go pushes itself on slotq (an RMW
 *   on the count, under g->lock), fences and re-checks `active`. One of
 *   the two sees the other, so no freed slot is missed.
 * - Handoff to an idle worker: under the pool lock the dispatcher unlinks
 *   the worker, writes the task into it and CASes the worker's waiter
 *   state from WAITING/SLEEPING to DONE (release); the worker reads the
 *   task after its acquire load of DONE in weft__waiter_wait. A worker
 *   whose idle wait timed out aborts with a CAS on the same word: exactly
 *   one of the two wins, and the loser backs off (the dispatcher tries the
 *   next worker; the worker finds itself unlinked or unlinks itself under
 *   the pool lock and exits).
 * - A worker puts itself back on the idle list before it frees its task's
 *   slot, so a worker is either idle or bound to an admitted task: the
 *   threads alive never exceed the most tasks in flight (plus leavers).
 * - Errors: the first nonzero result wins a CAS on g->err from 0, and only
 *   then is the derived context canceled, so a sibling's -ECANCELED can
 *   never be first. wait reads err after weft_wg_wait, whose acquire pairs
 *   with every task's done (each done follows its err CAS).
 * - Lifetime: a finishing task's weft_wg_done is its last access to the
 *   group (weft_wg_wait returns only once that done is finished with the
 *   WaitGroup), so the group may be destroyed as soon as wait returns.
 *
 * Deaths (a task fn that ends its thread: pthread_exit, or pthread_cancel
 * acted on; internal/death.h): a worker thread runs each fn under its
 * death note (pushed for the thread's life; `running` says whether a fn
 * runs), a weft task under the note in its task_call. If the fn never
 * returns, the note runs on the dying thread (or carrier) after glibc's
 * unwinding and finishes the task as if it had returned -EOWNERDEAD:
 * recorded (first error wins), slot freed, done. A worker thread that
 * died is not replaced: the worker threads are elastic (one per task in
 * flight, started on demand), so the next go starts or finds one; the
 * dying thread frees its worker and leaves the count.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal/death.h"
#include "internal/park.h"
#include "internal/sys.h"
#include <weft/ctx.h>
#include <weft/group.h>
#include <weft/task.h>
#include <weft/sync.h>

struct weft_group {
	weft_ctx_t *ctx;      /* derived and owned, or NULL */
	weft_ctx_t *task_ctx; /* what tasks receive */
	uint32_t limit;       /* (int32_t) < 0: none */
	uint32_t active;      /* tasks admitted and not yet returned */
	uint32_t err;         /* (int) the first nonzero result */
	uint32_t max_active;
	uint64_t started;
	uint32_t tasks;      /* run them as weft tasks (set_tasks) */
	weft_wg_t wg;        /* tasks in flight, for wait */
	weft__mutex_t lock;  /* guards slotq */
	weft__waitq_t slotq; /* go callers waiting for a slot */
};

/* ---- the worker pool (process-wide) ---- */

struct worker {
	weft__waiter_t w;   /* DONE: a task was handed over */
	struct worker *next, *prev;
	bool linked;        /* on the idle list (pool.lock) */
	weft_group_t *g;    /* the task, written before DONE */
	weft_group_fn fn;
	void *arg;
	weft__death_note_t note; /* the thread's (worker_died) */
	bool running;       /* in fn (the thread's own) */
};

static struct {
	weft__mutex_t lock;
	struct worker *idle; /* LIFO: the most recently idle first */
	uint32_t nidle, nthreads;
	uint64_t created;
} pool;

/* pool.lock held */
static void idle_push(struct worker *wk)
{
	wk->prev = NULL;
	wk->next = pool.idle;
	if (pool.idle)
		pool.idle->prev = wk;
	pool.idle = wk;
	wk->linked = true;
	weft__st32_rlx(&pool.nidle, pool.nidle + 1);
}

/* pool.lock held */
static void idle_unlink(struct worker *wk)
{
	if (wk->prev)
		wk->prev->next = wk->next;
	else
		pool.idle = wk->next;
	if (wk->next)
		wk->next->prev = wk->prev;
	wk->next = wk->prev = NULL;
	wk->linked = false;
	weft__st32_rlx(&pool.nidle, pool.nidle - 1);
}

static void group_record(weft_group_t *g, int rc)
{
	uint32_t zero = 0;
	/* full RMW: the first error is recorded before the cancel; pairs
	 * with wait's read after weft_wg_wait (acquire through the wg) */
	if (weft__cas32(&g->err, &zero, (uint32_t)rc) && g->ctx)
		weft_ctx_cancel_cause(g->ctx, rc);
}

/* A task of g has returned (or was never started): free its slot, then
 * done. The done is the last access to g. */
static void group_finish(weft_group_t *g)
{
	/* full RMW: the slot free before we look for parked go callers;
	 * Dekker with their registration (see Ordering) */
	weft__faa32(&g->active, (uint32_t)-1);
	weft__fence_rmw_load();
	if (weft__waitq_count(&g->slotq) != 0) {
		uint32_t notified, old;
		weft__mutex_lock(&g->lock);
		weft__waiter_t *w = weft__waitq_notify_one(&g->slotq, &notified, &old);
		weft__mutex_unlock(&g->lock);
		if (w)
			weft__waiter_wake(w, old);
	}
	weft_wg_done(&g->wg);
}

/* A worker thread ended inside a task's fn (see Deaths): on the dying
 * thread. The task ends as if it had returned -EOWNERDEAD; the thread
 * leaves (not replaced: see Deaths). */
static void worker_died(weft__death_note_t *n)
{
	struct worker *wk = (struct worker *)((char *)n - offsetof(struct worker, note));
	if (wk->running) {
		group_record(wk->g, -EOWNERDEAD);
		group_finish(wk->g);
	}
	weft__mutex_lock(&pool.lock);
	if (wk->linked)
		idle_unlink(wk); /* (cannot be: it was running a task) */
	weft__st32_rlx(&pool.nthreads, pool.nthreads - 1);
	weft__mutex_unlock(&pool.lock);
	free(wk);
}

static void *worker_main(void *p)
{
	struct worker *wk = p;
	wk->note.died = worker_died;
	weft__death_push(&wk->note);
	for (;;) {
		/* our own copies: once idle, a dispatcher may rewrite wk */
		weft_group_t *g = wk->g;
		wk->running = true;
		int rc = wk->fn(g->task_ctx, wk->arg);
		wk->running = false;
		if (rc)
			group_record(g, rc);

		/* idle before the slot frees (see Ordering) */
		weft__st32_rlx(&wk->w.state, WEFT__W_WAITING);
		weft__mutex_lock(&pool.lock);
		idle_push(wk);
		weft__mutex_unlock(&pool.lock);
		group_finish(g);

		uint32_t st = weft__waiter_wait(&wk->w, weft_deadline(WEFT_GROUP_IDLE_NS), true);
		if (st == WEFT__W_TIMEOUT)
			st = weft__waiter_abort(&wk->w);
		if (st == WEFT__W_ABORT) {
			weft__mutex_lock(&pool.lock);
			if (wk->linked)
				idle_unlink(wk);
			weft__st32_rlx(&pool.nthreads, pool.nthreads - 1);
			weft__mutex_unlock(&pool.lock);
			weft__death_pop(&wk->note);
			free(wk);
			return NULL;
		}
		/* DONE: the acquire in waiter_wait/abort pairs with the
		 * dispatcher's CAS; wk->g, fn, arg are ours */
	}
}

/* A group task run as a weft task: its own small record (and death
 * note), freed at its end */
struct task_call {
	weft_group_t *g;
	weft_group_fn fn;
	void *arg;
	weft__death_note_t note;
};

/* The task's fn ended its carrier thread (see Deaths): on that thread. */
static void task_died(weft__death_note_t *n)
{
	struct task_call *c = (struct task_call *)((char *)n - offsetof(struct task_call, note));
	group_record(c->g, -EOWNERDEAD);
	group_finish(c->g);
	free(c);
}

static void task_main(void *p)
{
	struct task_call *c = p;
	weft_group_t *g = c->g;
	c->note.died = task_died;
	weft__death_push(&c->note);
	int rc = c->fn(g->task_ctx, c->arg);
	weft__death_pop(&c->note);
	free(c);
	if (rc)
		group_record(g, rc);
	group_finish(g);
}

static int dispatch_task(weft_group_t *g, weft_group_fn fn, void *arg)
{
	struct task_call *c = weft__sys_malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	*c = (struct task_call){.g = g, .fn = fn, .arg = arg};
	int rc = weft_go(task_main, c);
	if (rc) {
		free(c);
		return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
	}
	return 0;
}

/* Hand fn(arg) of g to a worker. 0, or -EAGAIN / -ENOMEM. */
static int dispatch(weft_group_t *g, weft_group_fn fn, void *arg)
{
	struct worker *wk;
	uint32_t s = 0;

	if (weft__ld32_rlx(&g->tasks))
		return dispatch_task(g, fn, arg);

	weft__mutex_lock(&pool.lock);
	while ((wk = pool.idle) != NULL) {
		idle_unlink(wk);
		wk->g = g;
		wk->fn = fn;
		wk->arg = arg;
		/* the worker's WAITING reset before it pushed; the task
		 * fields before DONE (weft__waiter_end's acquire and RMW) */
		if (weft__waiter_end(&wk->w, WEFT__W_DONE, &s))
			break;
		/* the worker timed out and is leaving: try the next */
	}
	if (wk) {
		weft__mutex_unlock(&pool.lock);
		weft__waiter_wake(&wk->w, s);
		return 0;
	}
	weft__st32_rlx(&pool.nthreads, pool.nthreads + 1);
	weft__st64_rlx(&pool.created, pool.created + 1);
	weft__mutex_unlock(&pool.lock);

	int rc = -ENOMEM;
	wk = weft__sys_calloc(1, sizeof *wk);
	if (wk) {
		wk->g = g;
		wk->fn = fn;
		wk->arg = arg;
		pthread_attr_t attr;
		pthread_t tid;
		rc = -EAGAIN;
		if (pthread_attr_init(&attr) == 0) {
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			int e = weft__sys_thread_create(&tid, &attr, worker_main, wk);
			pthread_attr_destroy(&attr);
			rc = e == 0 ? 0 : e == ENOMEM ? -ENOMEM : -EAGAIN;
		}
		if (rc)
			free(wk);
	}
	if (rc) {
		weft__mutex_lock(&pool.lock);
		weft__st32_rlx(&pool.nthreads, pool.nthreads - 1);
		weft__mutex_unlock(&pool.lock);
	}
	return rc;
}

/* ---- admission ---- */

static inline bool slot_free(weft_group_t *g, uint32_t a)
{
	int32_t lim = (int32_t)weft__ld32_rlx(&g->limit);
	return lim < 0 || a < (uint32_t)lim;
}

/* Park until a slot may be free (register, re-check, sleep). */
static void wait_slot(weft_group_t *g)
{
	weft__waiter_t w = {WEFT__W_WAITING};
	weft__wnode_t node = {.w = &w};

	weft__mutex_lock(&g->lock);
	weft__waitq_push(&g->slotq, &node);
	weft__mutex_unlock(&g->lock);
	/* store-load: our registration before the re-check; pairs with the
	 * finisher's decrement + fence + count load */
	weft__fence_rmw_load();
	if (slot_free(g, weft__ld32_rlx(&g->active))) {
		uint32_t st = weft__waiter_abort(&w);
		if (st == WEFT__W_ABORT) {
			weft__mutex_lock(&g->lock);
			weft__waitq_unlink(&g->slotq, &node);
			weft__mutex_unlock(&g->lock);
		} else {
			/* a notification we may not use: pass it on */
			uint32_t notified, old;
			weft__mutex_lock(&g->lock);
			weft__waiter_t *o = weft__waitq_notify_one(&g->slotq, &notified, &old);
			weft__mutex_unlock(&g->lock);
			if (o)
				weft__waiter_wake(o, old);
		}
		return;
	}
	/* NOTIFY: the notifier unlinked us */
	weft__waiter_wait(&w, WEFT_FOREVER, true);
}

static int group_go(weft_group_t *g, weft_group_fn fn, void *arg, bool block)
{
	if (!g || !fn)
		return -EINVAL;
	uint32_t a = weft__ld32_rlx(&g->active);
	for (;;) {
		if (!slot_free(g, a)) {
			if (!block)
				return -EAGAIN;
			wait_slot(g);
			a = weft__ld32_rlx(&g->active);
			continue;
		}
		/* full RMW: take the slot; pairs with group_finish */
		if (weft__cas32(&g->active, &a, a + 1))
			break;
	}
	uint32_t m = weft__ld32_rlx(&g->max_active);
	/* relaxed: a statistic */
	while (a + 1 > m && !weft__cas32(&g->max_active, &m, a + 1))
		;
	weft_wg_add(&g->wg, 1);
	int rc = dispatch(g, fn, arg);
	if (rc) {
		group_finish(g); /* give the slot and the count back */
		return rc;
	}
	weft__faa64(&g->started, 1);
	return 0;
}

/* ---- public ---- */

int weft_group_create(weft_group_t **out, weft_ctx_t *parent, weft_ctx_t **ctx)
{
	if (!out)
		return -EINVAL;
	weft_group_t *g = weft__sys_calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	weft_wg_init(&g->wg);
	g->limit = (uint32_t)-1;
	if (ctx) {
		int rc = weft_ctx_with_cancel(&g->ctx, parent ? parent : weft_ctx_background());
		if (rc) {
			free(g);
			return rc;
		}
		*ctx = g->ctx;
	}
	g->task_ctx = g->ctx ? g->ctx : parent ? parent : weft_ctx_background();
	*out = g;
	return 0;
}

int weft_group_set_limit(weft_group_t *g, int n)
{
	if (!g)
		return -EINVAL;
	if (weft__ld32_rlx(&g->active) != 0)
		return -EBUSY;
	weft__st32_rlx(&g->limit, (uint32_t)(n < 0 ? -1 : n));
	/* wake go callers parked at the old limit; the lock orders the new
	 * limit before any later registration's re-check */
	weft__mutex_lock(&g->lock);
	weft__waitq_notify_all(&g->slotq);
	weft__mutex_unlock(&g->lock);
	return 0;
}

int weft_group_set_tasks(weft_group_t *g, int on)
{
	if (!g)
		return -EINVAL;
	if (weft__ld32_rlx(&g->active) != 0)
		return -EBUSY;
	weft__st32_rlx(&g->tasks, on != 0);
	return 0;
}

int weft_group_go(weft_group_t *g, weft_group_fn fn, void *arg)
{
	return group_go(g, fn, arg, true);
}

int weft_group_try_go(weft_group_t *g, weft_group_fn fn, void *arg)
{
	return group_go(g, fn, arg, false);
}

int weft_group_wait(weft_group_t *g)
{
	if (!g)
		return -EINVAL;
	weft_wg_wait(&g->wg);
	/* relaxed: ordered after every task's err CAS by the wg's acquire */
	int err = (int)weft__ld32_rlx(&g->err);
	if (g->ctx) {
		if (err)
			weft_ctx_cancel_cause(g->ctx, err);
		else
			weft_ctx_cancel(g->ctx);
	}
	return err;
}

void weft_group_destroy(weft_group_t *g)
{
	if (!g)
		return;
	weft_wg_wait(&g->wg);
	weft_ctx_release(g->ctx);
	free(g);
}

int weft_group_stats(const weft_group_t *g, weft_group_stats_t *out)
{
	if (!out)
		return -EINVAL;
	*out = (weft_group_stats_t){0};
	if (g) {
		out->started = weft__ld64_rlx(&g->started);
		out->running = weft__ld32_rlx(&g->active);
		out->max_running = weft__ld32_rlx(&g->max_active);
	}
	out->threads = weft__ld32_rlx(&pool.nthreads);
	out->idle = weft__ld32_rlx(&pool.nidle);
	out->threads_created = weft__ld64_rlx(&pool.created);
	return 0;
}
