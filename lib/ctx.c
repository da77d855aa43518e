/* lib/ctx.c: contexts: cancellation trees, lazy deadlines, after funcs.
 *
 * Ordering:
 * - A context's done state is one word, st (err and cause packed), written
 *   once, under the context's lock, with a release store; readers load it
 *   with acquire and need no lock. Everything else that a cancellation
 *   touches (children list, watchers, after funcs) is guarded by the lock,
 *   so the canceller and anyone registering (a child, a watcher, an after
 *   func) are serialised: a registration either sees st set (and does not
 *   register) or is seen by the canceller. No wake-up is lost.
 * - Watchers are notified under the lock by a CAS on their waiter's state
 *   (live -> CANCEL | index), exactly once against any other waker, and
 *   futex-woken if they slept (as weft__waitq_notify_all).
 * - No two context locks are ever held at once: a cancellation takes the
 *   children list out under the parent's lock and cancels them one by one
 *   (an explicit stack, no recursion), so lock order never matters.
 * - Lifetime: refs counts the creator, one link reference per attachment to
 *   a parent's children list (owned by the list, or by the canceller that
 *   took the list), each child (a child holds its parent for its whole
 *   life, so ancestor pointers stay valid), a timer heap entry and each
 *   after-func record. The RMW that drops the last one is a full barrier:
 *   every use by other holders happened before it.
 * - Timer arming is a Dekker pair: after_func sets c->timed (RMW), fences
 *   and the timer insert re-checks st under the timer lock; cancel stores
 *   st, passes its unlock (RMW), fences and loads c->timed. Either the
 *   insert sees st (and does not insert) or cancel sees timed (and removes
 *   the entry), so a cancelled context never sits in the heap. An add that
 *   fails (no timer thread, no memory) clears timed again under the timer
 *   lock, so each add sets it (RMW + fence) under that lock before its
 *   look at st as well.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "internal/ctx_impl.h"
#include "internal/park.h"
#include "internal/sys.h"
#include <weft/ctx.h>

/* after-func record states: one CAS from ARMED decides run or stop */
enum { AF_ARMED = 0, AF_RAN = 1, AF_STOPPED = 2 };

struct weft_ctx_stop {
	uint32_t state;
	uint32_t refs; /* the handle (if any) + the pending registration */
	void (*fn)(void *);
	void *arg;
	weft_ctx_t *ctx; /* a reference for the record's whole life */
	/* in ctx->afs (ctx lock) or, once ctx is done, the run queue */
	struct weft_ctx_stop *next, *prev;
	bool listed; /* in ctx->afs; guarded by the ctx lock */
};

struct weft_ctx {
	uint64_t st; /* 0: live; else see mk_st */
	uint32_t refs;
	uint32_t timed; /* ever armed in the timer heap (Dekker, see top) */
	weft__mutex_t lock;
	weft_ctx_t *parent; /* NULL: a child of background; immutable */
	int64_t own_deadline, deadline; /* immutable; deadline: effective */
	/* guarded by lock */
	weft_ctx_t *kids; /* attached children, each holding a link ref */
	size_t nkids;
	weft__waitq_t watchers;
	struct weft_ctx_stop *afs;
	/* guarded by the parent's lock while attached */
	weft_ctx_t *sib_next, *sib_prev;
	bool attached;
	/* guarded by the timer lock: 1-based heap position, 0: not there */
	size_t heap_pos;
};

static struct weft_ctx bg = {
	.own_deadline = WEFT_FOREVER,
	.deadline = WEFT_FOREVER,
};

static uint64_t live_ctxs;

static inline uint64_t mk_st(int err, int cause)
{
	return (uint64_t)(uint32_t)-err | ((uint64_t)(uint32_t)cause << 32);
}

static inline int st_err(uint64_t s)
{
	return -(int)(uint32_t)s;
}

static inline int st_cause(uint64_t s)
{
	return (int)(uint32_t)(s >> 32);
}

static inline uint64_t ld_st(weft_ctx_t *c)
{
	/* acquire: pairs with the release store in do_cancel */
	return weft__ld64_acq(&c->st);
}

static void timer_remove(weft_ctx_t *c);
static void run_enqueue(struct weft_ctx_stop *list);

/* ---- references ---- */

static inline void ctx_ref(weft_ctx_t *c)
{
	weft__faa32(&c->refs, 1);
}

static void ctx_unref(weft_ctx_t *c)
{
	/* a loop, not recursion: freeing a child may free its parent */
	while (c && c != &bg) {
		/* full RMW: our uses of c before the drop; the last dropper
		 * frees after everyone else's */
		if (weft__faa32(&c->refs, (uint32_t)-1) != 1)
			return;
		weft_ctx_t *p = c->parent;
		free(c);
		weft__faa64(&live_ctxs, (uint64_t)-1);
		c = p;
	}
}

/* ---- cancellation ---- */

static void notify_watchers_locked(weft_ctx_t *c)
{
	weft__wnode_t *n;
	while ((n = c->watchers.head) != NULL) {
		weft__waiter_t *w = n->w;
		uint32_t val = WEFT__W_CANCEL | n->index;
		/* unlink first: an owner that sees our value knows it is out */
		weft__waitq_unlink(&c->watchers, n);
		/* exactly once: the CAS winner owns this wake-up */
		uint32_t old;
		if (weft__waiter_end(w, val, &old))
			weft__waiter_wake(w, old);
	}
}

/* Make c done with st unless it is already. Its children are pushed on
 * *stack (with their link references, now ours). True if we did it. */
static bool do_cancel(weft_ctx_t *c, uint64_t st, weft_ctx_t **stack)
{
	weft__mutex_lock(&c->lock);
	if (weft__ld64_rlx(&c->st)) {
		weft__mutex_unlock(&c->lock);
		return false;
	}
	/* release: pairs with ld_st; the lock orders it against registrars */
	weft__st64_rel(&c->st, st);
	weft_ctx_t *k = c->kids, *tail = NULL;
	for (; k; k = k->sib_next) {
		k->attached = false;
		tail = k;
	}
	if (tail) {
		tail->sib_next = *stack;
		*stack = c->kids;
	}
	c->kids = NULL;
	c->nkids = 0;
	notify_watchers_locked(c);
	struct weft_ctx_stop *afs = c->afs;
	for (struct weft_ctx_stop *r = afs; r; r = r->next)
		r->listed = false;
	c->afs = NULL;
	weft__mutex_unlock(&c->lock);

	if (afs)
		run_enqueue(afs);
	/* store-load: st (published by the unlock RMW) before reading timed;
	 * pairs with the fence in weft_ctx_after_func */
	weft__fence_rmw_load();
	if (weft__ld32_rlx(&c->timed))
		timer_remove(c);
	return true;
}

/* Take c out of its parent's children list, if it is still there. */
static void detach(weft_ctx_t *c)
{
	weft_ctx_t *p = c->parent;
	bool drop = false;
	if (!p)
		return;
	weft__mutex_lock(&p->lock);
	if (c->attached) {
		if (c->sib_prev)
			c->sib_prev->sib_next = c->sib_next;
		else
			p->kids = c->sib_next;
		if (c->sib_next)
			c->sib_next->sib_prev = c->sib_prev;
		c->sib_next = c->sib_prev = NULL;
		c->attached = false;
		p->nkids--;
		drop = true;
	}
	weft__mutex_unlock(&p->lock);
	if (drop)
		ctx_unref(c); /* the link reference; the caller holds another */
}

/* Cancel root and every descendant with st. The caller holds a reference
 * to root. */
static void ctx_cancel(weft_ctx_t *root, uint64_t st)
{
	weft_ctx_t *stack = NULL;
	if (!do_cancel(root, st, &stack))
		return;
	/* cancelled on its own (not through its parent): leave the parent's
	 * list now, as Go does, so a long-lived parent does not grow */
	detach(root);
	while (stack) {
		weft_ctx_t *c = stack;
		stack = c->sib_next;
		c->sib_next = c->sib_prev = NULL;
		do_cancel(c, st, &stack);
		ctx_unref(c); /* the link reference taken with the list */
	}
}

/* c is not done and its effective deadline has passed (now). */
static void expire(weft_ctx_t *c, int64_t now)
{
	weft_ctx_t *top = NULL;
	uint64_t tmo = mk_st(-ETIMEDOUT, -ETIMEDOUT);
	for (weft_ctx_t *a = c; a; a = a->parent) {
		uint64_t s = ld_st(a);
		if (s) {
			/* an ancestor's cancellation is on its way down:
			 * take its error and cause, as propagation would */
			ctx_cancel(c, s);
			return;
		}
		if (a->own_deadline <= now)
			top = a;
	}
	/* the highest context whose own deadline passed expires, and the
	 * expiry flows down to c with its cause */
	if (top)
		ctx_cancel(top, tmo);
	/* in case another thread is still carrying a cancel down to c */
	ctx_cancel(c, tmo);
}

static inline uint64_t check(weft_ctx_t *c)
{
	uint64_t s = ld_st(c);
	if (s)
		return s;
	/* A parent's cancel is published before its canceller has walked
	 * down to every descendant. A child must never look alive once an
	 * ancestor is done ("a child never outlives its parent's
	 * cancellation"), so finish the job for this branch here. Each
	 * context holds its parent for its whole life: the walk is safe. */
	for (weft_ctx_t *a = c->parent; a; a = a->parent) {
		uint64_t ps = ld_st(a);
		if (ps) {
			ctx_cancel(c, ps);
			return ld_st(c);
		}
	}
	if (c->deadline == WEFT_FOREVER)
		return s;
	int64_t now = weft_now();
	if (now < c->deadline)
		return 0;
	expire(c, now);
	return ld_st(c);
}

/* ---- public ---- */

weft_ctx_t *weft_ctx_background(void)
{
	return &bg;
}

static int ctx_new(weft_ctx_t **out, weft_ctx_t *parent, int64_t deadline)
{
	if (!out || !parent)
		return -EINVAL;
	weft_ctx_t *c = weft__sys_calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	weft__faa64(&live_ctxs, 1);
	c->refs = 1;
	c->own_deadline = deadline;
	c->deadline = deadline;
	if (parent != &bg) {
		ctx_ref(parent);
		c->parent = parent;
		if (parent->deadline < deadline)
			c->deadline = parent->deadline;
		weft__mutex_lock(&parent->lock);
		uint64_t ps = weft__ld64_rlx(&parent->st);
		if (ps) {
			/* a child of a done parent is done at once */
			weft__st64_rlx(&c->st, ps);
		} else {
			c->refs = 2; /* + the link reference */
			c->sib_next = parent->kids;
			if (parent->kids)
				parent->kids->sib_prev = c;
			parent->kids = c;
			parent->nkids++;
			c->attached = true;
		}
		weft__mutex_unlock(&parent->lock);
	}
	if (c->deadline != WEFT_FOREVER)
		check(c); /* a deadline already passed: done at once */
	*out = c;
	return 0;
}

int weft_ctx_with_cancel(weft_ctx_t **out, weft_ctx_t *parent)
{
	return ctx_new(out, parent, WEFT_FOREVER);
}

int weft_ctx_with_deadline(weft_ctx_t **out, weft_ctx_t *parent, int64_t deadline)
{
	return ctx_new(out, parent, deadline);
}

int weft_ctx_with_timeout(weft_ctx_t **out, weft_ctx_t *parent, int64_t timeout_ns)
{
	return ctx_new(out, parent, weft_deadline(timeout_ns));
}

void weft_ctx_cancel(weft_ctx_t *ctx)
{
	if (ctx && ctx != &bg)
		ctx_cancel(ctx, mk_st(-ECANCELED, -ECANCELED));
}

void weft_ctx_cancel_cause(weft_ctx_t *ctx, int cause)
{
	if (ctx && ctx != &bg)
		ctx_cancel(ctx, mk_st(-ECANCELED, cause ? cause : -ECANCELED));
}

int weft_ctx_err(weft_ctx_t *ctx)
{
	if (!ctx)
		return -EINVAL;
	uint64_t s = check(ctx);
	return s ? st_err(s) : 0;
}

int weft_ctx_cause(weft_ctx_t *ctx)
{
	if (!ctx)
		return -EINVAL;
	uint64_t s = check(ctx);
	return s ? st_cause(s) : 0;
}

int64_t weft_ctx_deadline(weft_ctx_t *ctx)
{
	return ctx ? ctx->deadline : WEFT_FOREVER;
}

void weft_ctx_release(weft_ctx_t *ctx)
{
	if (!ctx || ctx == &bg)
		return;
	ctx_cancel(ctx, mk_st(-ECANCELED, -ECANCELED));
	detach(ctx); /* idempotent: covers a self-cancel still in flight */
	ctx_unref(ctx);
}

int weft_ctx_wait(weft_ctx_t *ctx, int64_t deadline)
{
	if (!ctx)
		return -EINVAL;
	for (;;) {
		int e = weft_ctx_err(ctx);
		if (e)
			return e;
		if (deadline != WEFT_FOREVER && weft_now() >= deadline)
			return -ETIMEDOUT;
		weft__waiter_t w = {WEFT__W_WAITING};
		weft__wnode_t n = {.w = &w, .index = 0};
		e = weft__ctx_watch(ctx, &n);
		if (e)
			return e;
		int64_t dl = ctx->deadline < deadline ? ctx->deadline : deadline;
		uint32_t st = weft__waiter_wait(&w, dl, false);
		if (st == WEFT__W_TIMEOUT)
			st = weft__waiter_abort(&w);
		if (WEFT__W_KIND(st) != WEFT__W_CANCEL)
			weft__ctx_unwatch(ctx, &n);
		/* loop: err() sees the cancel, or notices the expired deadline */
	}
}

/* ---- internal API ---- */

int weft__ctx_watch(weft_ctx_t *ctx, weft__wnode_t *n)
{
	if (ctx == &bg)
		return 0;
	uint64_t s = check(ctx);
	if (s)
		return st_err(s);
	weft__mutex_lock(&ctx->lock);
	s = weft__ld64_rlx(&ctx->st); /* under the lock: no cancel missed */
	if (!s)
		weft__waitq_push(&ctx->watchers, n);
	weft__mutex_unlock(&ctx->lock);
	return s ? st_err(s) : 0;
}

void weft__ctx_unwatch(weft_ctx_t *ctx, weft__wnode_t *n)
{
	if (ctx == &bg)
		return;
	weft__mutex_lock(&ctx->lock);
	weft__waitq_unlink(&ctx->watchers, n);
	weft__mutex_unlock(&ctx->lock);
}

int64_t weft__ctx_deadline(weft_ctx_t *ctx)
{
	return ctx->deadline;
}

size_t weft__ctx_nchildren(weft_ctx_t *ctx)
{
	if (!ctx || ctx == &bg)
		return 0;
	weft__mutex_lock(&ctx->lock);
	size_t n = ctx->nkids;
	weft__mutex_unlock(&ctx->lock);
	return n;
}

uint64_t weft__ctx_live(void)
{
	return weft__ld64_rlx(&live_ctxs);
}

/* ---- service threads: the timer and the after-func runner ----
 *
 * Each is one lazily started, detached thread that sleeps on its own
 * waiter (weft__waiter_wait). Under the service lock it resets the waiter
 * to WAITING and records until when it will sleep; whoever adds earlier
 * work (under the same lock) CASes the waiter to NOTIFY and wakes it if it
 * sleeps. sleep_until is INT64_MIN while the thread is awake: it will look
 * at the work anyway. */

struct svc {
	weft__mutex_t lock;
	weft__waiter_t w;
	int64_t sleep_until;
	bool started;
};

static void svc_kick_locked(struct svc *v, int64_t when)
{
	if (when >= v->sleep_until)
		return;
	v->sleep_until = INT64_MIN;
	uint32_t old;
	if (weft__waiter_end(&v->w, WEFT__W_NOTIFY, &old))
		weft__waiter_wake(&v->w, old);
}

/* Sleep until kicked or until `until`; called and returns with the lock. */
static void svc_sleep_locked(struct svc *v, int64_t until)
{
	weft__st32_rlx(&v->w.state, WEFT__W_WAITING);
	v->sleep_until = until;
	weft__mutex_unlock(&v->lock);
	weft__waiter_wait(&v->w, until, false);
	weft__mutex_lock(&v->lock);
	v->sleep_until = INT64_MIN;
}

static int svc_start_locked(struct svc *v, void *(*fn)(void *))
{
	if (v->started)
		return 0;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	if (pthread_attr_init(&attr))
		return -ENOMEM;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* no user signal handler ever runs on a weft service thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = weft__sys_thread_create(&t, &attr, fn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		return -ENOMEM;
	v->started = true;
	v->sleep_until = INT64_MIN;
	return 0;
}

/* ---- the timer: a min-heap of contexts by effective deadline ---- */

static struct {
	struct svc v;
	weft_ctx_t **heap; /* heap[0] unused: 1-based */
	size_t n, cap;
} tm;

static void heap_set(size_t i, weft_ctx_t *c)
{
	tm.heap[i] = c;
	c->heap_pos = i;
}

static void heap_up(size_t i)
{
	weft_ctx_t *c = tm.heap[i];
	while (i > 1 && tm.heap[i / 2]->deadline > c->deadline) {
		heap_set(i, tm.heap[i / 2]);
		i /= 2;
	}
	heap_set(i, c);
}

static void heap_down(size_t i)
{
	weft_ctx_t *c = tm.heap[i];
	for (;;) {
		size_t k = 2 * i;
		if (k > tm.n)
			break;
		if (k < tm.n && tm.heap[k + 1]->deadline < tm.heap[k]->deadline)
			k++;
		if (tm.heap[k]->deadline >= c->deadline)
			break;
		heap_set(i, tm.heap[k]);
		i = k;
	}
	heap_set(i, c);
}

static void heap_del(size_t i)
{
	weft_ctx_t *c = tm.heap[i], *last = tm.heap[tm.n--];
	c->heap_pos = 0;
	if (i <= tm.n && last != c) {
		heap_set(i, last);
		heap_up(i);
		heap_down(last->heap_pos);
	}
}

static void *timer_main(void *arg)
{
	(void)arg;
	weft__mutex_lock(&tm.v.lock);
	for (;;) {
		int64_t now = weft_now();
		while (tm.n && tm.heap[1]->deadline <= now) {
			weft_ctx_t *c = tm.heap[1];
			heap_del(1); /* its heap reference is now ours */
			weft__mutex_unlock(&tm.v.lock);
			check(c); /* expires it (and whatever ancestor is due) */
			ctx_unref(c);
			weft__mutex_lock(&tm.v.lock);
			now = weft_now();
		}
		svc_sleep_locked(&tm.v, tm.n ? tm.heap[1]->deadline : WEFT_FOREVER);
	}
	return NULL;
}

static int timer_add(weft_ctx_t *c)
{
	int rc = 0;
	weft__mutex_lock(&tm.v.lock);
	/* RMW + fence, then st re-checked under the timer lock: the Dekker
	 * note at the top, made again here because a failed add clears timed
	 * (below): an add that follows it must not insert without timed set
	 * again before its look at st */
	weft__or32(&c->timed, 1);
	weft__fence_rmw_load();
	if (c->heap_pos || ld_st(c))
		goto out;
	rc = svc_start_locked(&tm.v, timer_main);
	if (rc)
		goto out;
	if (tm.n + 1 >= tm.cap) {
		size_t cap = tm.cap ? 2 * tm.cap : 64;
		weft_ctx_t **h = weft__sys_realloc(tm.heap, cap * sizeof *h);
		if (!h) {
			rc = -ENOMEM;
			goto out;
		}
		tm.heap = h;
		tm.cap = cap;
	}
	ctx_ref(c);
	tm.heap[++tm.n] = c;
	heap_up(tm.n);
	svc_kick_locked(&tm.v, c->deadline);
out:
	if (rc && !c->heap_pos)
		/* not armed (no timer thread, no heap memory): timed back to
		 * 0, so the next after_func arms the timer again. (Left at 1,
		 * every later after_func skipped the timer and its fn waited
		 * until someone happened to look at the context.) */
		weft__st32_rlx(&c->timed, 0);
	weft__mutex_unlock(&tm.v.lock);
	return rc;
}

static void timer_remove(weft_ctx_t *c)
{
	bool drop = false;
	weft__mutex_lock(&tm.v.lock);
	if (c->heap_pos) {
		heap_del(c->heap_pos);
		drop = true;
	}
	weft__mutex_unlock(&tm.v.lock);
	if (drop)
		ctx_unref(c); /* the caller holds another reference */
}

/* ---- the after-func runner ---- */

static struct {
	struct svc v;
	struct weft_ctx_stop *head, *tail;
} rq;

static void rec_unref(struct weft_ctx_stop *r)
{
	/* full RMW: see ctx_unref */
	if (weft__faa32(&r->refs, (uint32_t)-1) != 1)
		return;
	ctx_unref(r->ctx);
	free(r);
}

static void *runner_main(void *arg)
{
	(void)arg;
	weft__mutex_lock(&rq.v.lock);
	for (;;) {
		struct weft_ctx_stop *r = rq.head;
		if (!r) {
			svc_sleep_locked(&rq.v, WEFT_FOREVER);
			continue;
		}
		rq.head = r->next;
		if (!rq.head)
			rq.tail = NULL;
		weft__mutex_unlock(&rq.v.lock);
		uint32_t s = AF_ARMED;
		/* the CAS against weft_ctx_stop decides, exactly once */
		if (weft__cas32(&r->state, &s, AF_RAN))
			r->fn(r->arg);
		rec_unref(r); /* the pending registration's reference */
		weft__mutex_lock(&rq.v.lock);
	}
	return NULL;
}

/* Queue a list (linked by next) of records whose context is done. The
 * runner thread was started when they were registered. */
static void run_enqueue(struct weft_ctx_stop *list)
{
	struct weft_ctx_stop *last = list;
	while (last->next)
		last = last->next;
	weft__mutex_lock(&rq.v.lock);
	if (rq.tail)
		rq.tail->next = list;
	else
		rq.head = list;
	rq.tail = last;
	svc_kick_locked(&rq.v, INT64_MIN + 1);
	weft__mutex_unlock(&rq.v.lock);
}

int weft_ctx_after_func(weft_ctx_t *ctx, void (*fn)(void *), void *arg, weft_ctx_stop_t **stop)
{
	if (!ctx || !fn)
		return -EINVAL;
	struct weft_ctx_stop *r = weft__sys_calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->fn = fn;
	r->arg = arg;
	r->ctx = ctx;
	if (ctx == &bg) {
		/* never done: nothing pending, only the handle (if any) */
		if (stop) {
			r->refs = 1;
			*stop = r;
		} else {
			free(r);
		}
		return 0;
	}
	weft__mutex_lock(&rq.v.lock);
	int rc = svc_start_locked(&rq.v, runner_main);
	weft__mutex_unlock(&rq.v.lock);
	if (rc) {
		free(r);
		return rc;
	}
	r->refs = stop ? 2 : 1;
	ctx_ref(ctx);
	if (stop)
		*stop = r;
	uint64_t s = check(ctx);
	if (!s) {
		weft__mutex_lock(&ctx->lock);
		s = weft__ld64_rlx(&ctx->st);
		if (!s) {
			r->next = ctx->afs;
			r->prev = NULL;
			if (ctx->afs)
				ctx->afs->prev = r;
			ctx->afs = r;
			r->listed = true;
		}
		weft__mutex_unlock(&ctx->lock);
	}
	if (s) {
		r->next = NULL;
		run_enqueue(r);
		return 0;
	}
	if (ctx->deadline != WEFT_FOREVER && !weft__ld32_rlx(&ctx->timed)) {
		/* RMW + fence: timed before timer_add re-reads st; pairs with
		 * the fence in do_cancel */
		weft__or32(&ctx->timed, 1);
		weft__fence_rmw_load();
		if (timer_add(ctx) && weft_ctx_stop(r)) {
			/* no memory for the heap entry: undo the registration */
			if (stop) {
				*stop = NULL;
				rec_unref(r);
			}
			return -ENOMEM;
		}
	}
	return 0;
}

int weft_ctx_stop(weft_ctx_stop_t *r)
{
	if (!r)
		return 0;
	uint32_t s = AF_ARMED;
	if (!weft__cas32(&r->state, &s, AF_STOPPED))
		return 0;
	weft_ctx_t *c = r->ctx;
	bool drop = false;
	if (c != &bg) {
		weft__mutex_lock(&c->lock);
		if (r->listed) {
			/* still in the ctx's list: take it out so a long-lived
			 * context does not grow (else the runner drops it) */
			if (r->prev)
				r->prev->next = r->next;
			else
				c->afs = r->next;
			if (r->next)
				r->next->prev = r->prev;
			r->listed = false;
			drop = true;
		}
		weft__mutex_unlock(&c->lock);
	}
	if (drop)
		rec_unref(r); /* the pending reference; the handle keeps r */
	return 1;
}

void weft_ctx_stop_release(weft_ctx_stop_t *r)
{
	if (r)
		rec_unref(r);
}
