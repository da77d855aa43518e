/* bench/baseline/chan_mutex.c: mutex + condition variable channel (the
 * yardstick). See chan_mutex.h for the design.
 *
 * Locking:
 * - ch->mu guards everything mutable in a channel: the ring, closed, the
 *   waiter counts and both wait queues (including each record's `queued`).
 * - w->mu guards a parked thread's waiter state. Lock order: channel mutexes
 *   (in address order when a select holds several), then at most one waiter
 *   mutex. A parked thread holds no channel mutex while it sleeps.
 * - A handoff record is claimed only under its channel's mutex and its
 *   waiter's mutex; the claimer copies the element and sets the waiter DONE
 *   before releasing the waiter mutex, so the waiter sees the copy. The
 *   owner of a record unlinks it under the channel mutex before its memory
 *   goes away, so nobody touches a record after its owner returned.
 *
 * Invariants (buffered channels): a claimable record sits in recvq only
 * while the ring is empty, and in sendq only while it is full, because a
 * select parks only after finding its cases not ready and every operation
 * serves claimable records before touching the ring.
 *
 * Every blocked call parks such a record with its own condvar (Go's sudog
 * design): the partner completes the operation for it and wakes exactly
 * that thread. An earlier version parked plain buffered waiters on shared
 * not_full / not_empty condvars; glibc 2.36 lost a signal there under the
 * stress test (a sender asleep beside free room), and per-waiter records
 * wake exactly who they must anyway.
 */
#include "chan_mutex.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { W_WAITING, W_DONE, W_TIMEDOUT };

/* one per thread, used by whatever blocking call the thread is in */
struct mwaiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;  /* W_*; guarded by mu */
	size_t idx; /* the case completed (select); guarded by mu */
	int err;    /* its result: 0 or -EPIPE; guarded by mu */
};

/* a parked send or receive (Go's sudog) */
struct sudog {
	struct sudog *prev, *next;
	struct mwaiter *w;
	void *elem; /* send: the value; recv: where to store it (or NULL) */
	size_t idx;
	bool queued; /* guarded by the channel's mu */
};

struct wq {
	struct sudog *head, *tail;
};

struct mchan {
	pthread_mutex_t mu;
	unsigned char *buf;
	size_t elem_size, cap;
	size_t head, count;
	bool closed;
	struct wq sendq, recvq; /* parked records */
};

static _Thread_local struct mwaiter tls_waiter;
static _Thread_local bool tls_waiter_ready;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool deadline_passed(int64_t deadline)
{
	return deadline != MCHAN_FOREVER && now_ns() >= deadline;
}

static int cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int rc;

	rc = pthread_condattr_init(&attr);
	if (rc)
		return -rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!rc)
		rc = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

/* Sleep on cv until signalled or the deadline; returns ETIMEDOUT once the
 * deadline passed, 0 otherwise (spurious wake-ups included). */
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline)
{
	struct timespec ts;

	if (deadline == MCHAN_FOREVER)
		return pthread_cond_wait(cv, mu);
	if (deadline < 0)
		deadline = 0;
	ts.tv_sec = (time_t)(deadline / 1000000000);
	ts.tv_nsec = (long)(deadline % 1000000000);
	return pthread_cond_timedwait(cv, mu, &ts);
}

/* The calling thread's waiter, reset for a new wait. Nobody else can see
 * it here: every record of the previous call was unlinked under its
 * channel's mutex before that call returned. */
static struct mwaiter *waiter_get(void)
{
	struct mwaiter *w = &tls_waiter;

	if (!tls_waiter_ready) {
		if (pthread_mutex_init(&w->mu, NULL))
			return NULL;
		if (cond_init_monotonic(&w->cv)) {
			pthread_mutex_destroy(&w->mu);
			return NULL;
		}
		tls_waiter_ready = true;
	}
	w->state = W_WAITING;
	w->err = 0;
	w->idx = 0;
	return w;
}

/* Sleep until a partner completes one of our records (0) or the deadline
 * passes (-ETIMEDOUT; from then on partners skip our records). */
static int waiter_wait(struct mwaiter *w, int64_t deadline)
{
	int rc;

	pthread_mutex_lock(&w->mu);
	while (w->state == W_WAITING) {
		if (cond_wait_until(&w->cv, &w->mu, deadline) == ETIMEDOUT &&
		    w->state == W_WAITING)
			w->state = W_TIMEDOUT;
	}
	rc = w->state == W_DONE ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static void wq_push(struct wq *q, struct sudog *s)
{
	s->next = NULL;
	s->prev = q->tail;
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
	s->queued = true;
}

static void wq_remove(struct wq *q, struct sudog *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		q->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		q->tail = s->prev;
	s->prev = s->next = NULL;
	s->queued = false;
}

/* Under the channel mutex: unlink and return the first record of q whose
 * waiter still waits, with that waiter's mutex held (finish it with
 * sudog_finish); NULL if none. Stale records are unlinked on the way. */
static struct sudog *wq_claim(struct wq *q)
{
	struct sudog *s;

	while ((s = q->head)) {
		wq_remove(q, s);
		pthread_mutex_lock(&s->w->mu);
		if (s->w->state == W_WAITING)
			return s;
		pthread_mutex_unlock(&s->w->mu);
	}
	return NULL;
}

/* Complete a claimed record: its owner may return as soon as we unlock,
 * so s is not touched after that. */
static void sudog_finish(struct sudog *s, int err)
{
	struct mwaiter *w = s->w;

	w->state = W_DONE;
	w->idx = s->idx;
	w->err = err;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void copy_elem(const struct mchan *c, void *dst, const void *src)
{
	if (c->elem_size && dst)
		memcpy(dst, src, c->elem_size);
}

static void ring_push(struct mchan *c, const void *src)
{
	size_t t = c->head + c->count;

	if (t >= c->cap)
		t -= c->cap;
	if (c->elem_size)
		memcpy(c->buf + t * c->elem_size, src, c->elem_size);
	c->count++;
}

static void ring_pop(struct mchan *c, void *dst)
{
	if (c->elem_size && dst)
		memcpy(dst, c->buf + c->head * c->elem_size, c->elem_size);
	if (++c->head == c->cap)
		c->head = 0;
	c->count--;
}

/* Under c->mu: send now if possible. 0 | -EPIPE | -EAGAIN */
static int send_locked(struct mchan *c, const void *src)
{
	struct sudog *s;

	if (c->closed)
		return -EPIPE;
	s = wq_claim(&c->recvq);
	if (s) {
		copy_elem(c, s->elem, src);
		sudog_finish(s, 0);
		return 0;
	}
	if (c->count < c->cap) {
		ring_push(c, src);
		return 0;
	}
	return -EAGAIN;
}

/* Under c->mu: receive now if possible. 0 | -EPIPE | -EAGAIN */
static int recv_locked(struct mchan *c, void *dst)
{
	struct sudog *s;

	if (c->count) {
		ring_pop(c, dst);
		/* refill the freed slot from a parked sender */
		s = wq_claim(&c->sendq);
		if (s) {
			ring_push(c, s->elem);
			sudog_finish(s, 0);
		}
		return 0;
	}
	s = wq_claim(&c->sendq);
	if (s) {
		copy_elem(c, dst, s->elem);
		sudog_finish(s, 0);
		return 0;
	}
	return c->closed ? -EPIPE : -EAGAIN;
}

/* Under c->mu, an unbuffered operation found no partner: park a record on
 * q and sleep. Returns with c->mu released: 0 or -EPIPE as the partner
 * (or close) decided, or -ETIMEDOUT. */
static int park_one(struct mchan *c, struct wq *q, void *elem, int64_t deadline)
{
	struct mwaiter *w;
	struct sudog s;
	int rc;

	w = waiter_get();
	if (!w) {
		pthread_mutex_unlock(&c->mu);
		return -ENOMEM;
	}
	memset(&s, 0, sizeof s);
	s.w = w;
	s.elem = elem;
	wq_push(q, &s);
	pthread_mutex_unlock(&c->mu);

	rc = waiter_wait(w, deadline);
	if (rc == 0)
		return w->err; /* the partner unlinked s */
	pthread_mutex_lock(&c->mu);
	if (s.queued)
		wq_remove(q, &s);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* A send (send: elem is only read) or a receive into elem. try: deadline
 * INT64_MIN and -EAGAIN instead of -ETIMEDOUT. */
static int do_op(struct mchan *c, void *elem, int64_t deadline, bool try, bool send)
{
	int rc;

	if (!c || (!elem && c->elem_size))
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	rc = send ? send_locked(c, elem) : recv_locked(c, elem);
	if (rc == -EAGAIN && !try) {
		if (!deadline_passed(deadline))
			return park_one(c, send ? &c->sendq : &c->recvq, elem, deadline);
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int do_send(struct mchan *c, const void *elem, int64_t deadline, bool try)
{
	return do_op(c, (void *)(uintptr_t)elem, deadline, try, true);
}

static int do_recv(struct mchan *c, void *elem, int64_t deadline, bool try)
{
	return do_op(c, elem, deadline, try, false);
}

int mchan_create(mchan_t **out, size_t elem_size, size_t cap)
{
	struct mchan *c;

	if (!out)
		return -EINVAL;
	if (cap > MCHAN_MAX_CAPACITY || elem_size > (SIZE_MAX >> 1) ||
	    (elem_size && cap > SIZE_MAX / elem_size))
		return -ENOMEM;
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	if (cap && elem_size) {
		c->buf = malloc(cap * elem_size);
		if (!c->buf)
			goto fail_buf;
	}
	if (pthread_mutex_init(&c->mu, NULL))
		goto fail_mu;
	c->elem_size = elem_size;
	c->cap = cap;
	*out = c;
	return 0;

fail_mu:
	free(c->buf);
fail_buf:
	free(c);
	return -ENOMEM;
}

void mchan_destroy(mchan_t *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->buf);
	free(c);
}

int mchan_send(mchan_t *c, const void *elem)
{
	return do_send(c, elem, MCHAN_FOREVER, false);
}

int mchan_recv(mchan_t *c, void *elem)
{
	return do_recv(c, elem, MCHAN_FOREVER, false);
}

int mchan_try_send(mchan_t *c, const void *elem)
{
	return do_send(c, elem, INT64_MIN, true);
}

int mchan_try_recv(mchan_t *c, void *elem)
{
	return do_recv(c, elem, INT64_MIN, true);
}

int mchan_send_until(mchan_t *c, const void *elem, int64_t deadline)
{
	return do_send(c, elem, deadline, false);
}

int mchan_recv_until(mchan_t *c, void *elem, int64_t deadline)
{
	return do_recv(c, elem, deadline, false);
}

/* Under c->mu: hand elements to parked receivers (unbuffered, or selects
 * on an empty ring), then fill the ring. Returns how many went. */
static size_t send_batch_locked(struct mchan *c, const unsigned char *src, size_t n)
{
	size_t sent = 0, k, t, first;
	struct sudog *s;

	while (sent < n && (s = wq_claim(&c->recvq))) {
		copy_elem(c, s->elem, src + sent * c->elem_size);
		sudog_finish(s, 0);
		sent++;
	}
	k = c->cap - c->count;
	if (k > n - sent)
		k = n - sent;
	if (!k)
		return sent;
	if (c->elem_size) {
		t = c->head + c->count;
		if (t >= c->cap)
			t -= c->cap;
		first = c->cap - t;
		if (first > k)
			first = k;
		memcpy(c->buf + t * c->elem_size, src + sent * c->elem_size,
		       first * c->elem_size);
		if (k > first)
			memcpy(c->buf, src + (sent + first) * c->elem_size,
			       (k - first) * c->elem_size);
	}
	c->count += k;
	sent += k;
	return sent;
}

long mchan_send_many(mchan_t *c, const void *elems, size_t n)
{
	const unsigned char *src = elems;
	size_t sent;
	int rc;

	if (!c || !n || (!elems && c->elem_size))
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		if (c->closed) {
			pthread_mutex_unlock(&c->mu);
			return -EPIPE;
		}
		sent = send_batch_locked(c, src, n);
		if (sent)
			break;
		{
			/* hand the first over, then whatever fits */
			rc = park_one(c, &c->sendq, (void *)(uintptr_t)src, MCHAN_FOREVER);
			if (rc < 0)
				return rc;
			sent = 1;
			pthread_mutex_lock(&c->mu);
			if (!c->closed)
				sent += send_batch_locked(c, src + c->elem_size, n - 1);
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return (long)sent;
}

/* Under c->mu: take from the ring (refilling it from parked senders) and
 * from parked senders, up to max. Returns how many. */
static size_t recv_batch_locked(struct mchan *c, unsigned char *dst, size_t max)
{
	size_t got = 0;
	struct sudog *s;

	while (got < max) {
		void *d = dst ? dst + got * c->elem_size : NULL;

		if (c->count) {
			ring_pop(c, d);
			s = wq_claim(&c->sendq);
			if (s) {
				ring_push(c, s->elem);
				sudog_finish(s, 0);
			}
		} else if ((s = wq_claim(&c->sendq))) {
			copy_elem(c, d, s->elem);
			sudog_finish(s, 0);
		} else {
			break;
		}
		got++;
	}
	return got;
}

long mchan_recv_many(mchan_t *c, void *elems, size_t max)
{
	unsigned char *dst = elems;
	size_t got;
	int rc;

	if (!c || !max || (!elems && c->elem_size))
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		got = recv_batch_locked(c, dst, max);
		if (got)
			break;
		if (c->closed) {
			pthread_mutex_unlock(&c->mu);
			return -EPIPE;
		}
		{
			rc = park_one(c, &c->recvq, dst, MCHAN_FOREVER);
			if (rc < 0)
				return rc;
			got = 1;
			pthread_mutex_lock(&c->mu);
			got += recv_batch_locked(c, dst ? dst + c->elem_size : NULL, max - 1);
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return (long)got;
}

int mchan_close(mchan_t *c)
{
	struct sudog *s;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return -EPIPE;
	}
	c->closed = true;
	while ((s = wq_claim(&c->recvq)))
		sudog_finish(s, -EPIPE);
	while ((s = wq_claim(&c->sendq)))
		sudog_finish(s, -EPIPE);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

size_t mchan_len(const mchan_t *cc)
{
	struct mchan *c = (struct mchan *)(uintptr_t)cc;
	size_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	n = c->count;
	pthread_mutex_unlock(&c->mu);
	return n;
}

size_t mchan_cap(const mchan_t *c)
{
	return c ? c->cap : 0;
}

size_t mchan_elem_size(const mchan_t *c)
{
	return c ? c->elem_size : 0;
}

int mchan_is_closed(const mchan_t *cc)
{
	struct mchan *c = (struct mchan *)(uintptr_t)cc;
	int closed;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	closed = c->closed;
	pthread_mutex_unlock(&c->mu);
	return closed;
}

/* ---- select -------------------------------------------------------------- */

enum { SEL_BLOCK, SEL_TRY, SEL_UNTIL };

static uint64_t rand_next(void)
{
	static _Thread_local uint64_t state;
	uint64_t x = state;

	if (!x) {
		x = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)&state ^
		    0x9e3779b97f4a7c15ull;
		if (!x)
			x = 1;
	}
	/* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* uniform in [0, n) (n small: the modulo bias of a 64-bit draw is nil) */
static size_t rand_below(size_t n)
{
	return (size_t)((rand_next() >> 11) % n);
}

static void lock_all(struct mchan **locks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pthread_mutex_lock(&locks[i]->mu);
}

static void unlock_all(struct mchan **locks, size_t n)
{
	for (size_t i = n; i-- > 0;)
		pthread_mutex_unlock(&locks[i]->mu);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (struct mchan *const *)a;
	uintptr_t y = (uintptr_t) * (struct mchan *const *)b;

	return x < y ? -1 : x > y;
}

#define SEL_STACK 16

static int do_select(struct chan_case *cases, size_t n, int64_t deadline, int mode)
{
	size_t order_buf[SEL_STACK];
	struct mchan *lock_buf[SEL_STACK];
	struct sudog sg_buf[SEL_STACK];
	size_t *order = order_buf;
	struct mchan **locks = lock_buf;
	struct sudog *sg = sg_buf;
	void *heap = NULL;
	size_t enabled = 0, nlocks = 0, i, j;
	struct mwaiter *w;
	int rc;

	if (!cases && n)
		return -EINVAL;
	if (n > MCHAN_SELECT_MAX_CASES)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		struct mchan *c = cases[i].chan;

		if (!c)
			continue;
		if (cases[i].op != 1 && cases[i].op != 2)
			return -EINVAL;
		if (cases[i].op == 1 && c->elem_size && !cases[i].elem)
			return -EINVAL;
		enabled++;
	}
	if (!enabled) {
		if (mode == SEL_BLOCK)
			return -EINVAL;
		if (mode == SEL_TRY)
			return -EAGAIN;
		w = waiter_get();
		if (!w)
			return -ENOMEM;
		return waiter_wait(w, deadline);
	}
	if (enabled > SEL_STACK) {
		heap = malloc(enabled * (sizeof *order + sizeof *locks + sizeof *sg));
		if (!heap)
			return -ENOMEM;
		sg = heap;
		order = (size_t *)(sg + enabled);
		locks = (struct mchan **)(order + enabled);
	}

	/* a random permutation of the enabled cases (Fisher-Yates) */
	for (i = 0, j = 0; i < n; i++) {
		if (!cases[i].chan)
			continue;
		size_t r = rand_below(j + 1);

		if (r != j)
			order[j] = order[r];
		order[r] = i;
		j++;
	}
	/* lock order: distinct channels by address */
	for (i = 0; i < enabled; i++)
		locks[i] = cases[order[i]].chan;
	if (enabled <= SEL_STACK) {
		for (i = 1; i < enabled; i++) {
			struct mchan *x = locks[i];

			for (j = i; j > 0 && (uintptr_t)locks[j - 1] > (uintptr_t)x; j--)
				locks[j] = locks[j - 1];
			locks[j] = x;
		}
	} else {
		qsort(locks, enabled, sizeof *locks, cmp_ptr);
	}
	for (i = 0; i < enabled; i++)
		if (!nlocks || locks[nlocks - 1] != locks[i])
			locks[nlocks++] = locks[i];

	/* poll in random order */
	lock_all(locks, nlocks);
	for (i = 0; i < enabled; i++) {
		struct chan_case *cs = &cases[order[i]];

		if (cs->op == 1)
			rc = send_locked(cs->chan, cs->elem);
		else
			rc = recv_locked(cs->chan, cs->elem);
		if (rc != -EAGAIN) {
			unlock_all(locks, nlocks);
			cs->err = rc;
			rc = (int)order[i];
			goto out;
		}
	}
	if (mode == SEL_TRY || (mode == SEL_UNTIL && deadline_passed(deadline))) {
		unlock_all(locks, nlocks);
		rc = mode == SEL_TRY ? -EAGAIN : -ETIMEDOUT;
		goto out;
	}

	/* park one record per case, in case order */
	w = waiter_get();
	if (!w) {
		unlock_all(locks, nlocks);
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0, j = 0; i < n; i++) {
		struct mchan *c = cases[i].chan;

		if (!c)
			continue;
		memset(&sg[j], 0, sizeof sg[j]);
		sg[j].w = w;
		sg[j].elem = cases[i].elem;
		sg[j].idx = i;
		wq_push(cases[i].op == 1 ? &c->sendq : &c->recvq, &sg[j]);
		j++;
	}
	unlock_all(locks, nlocks);

	rc = waiter_wait(w, mode == SEL_BLOCK ? MCHAN_FOREVER : deadline);

	/* unlink what is left; locking each channel also waits out any
	 * partner still looking at one of our records */
	for (i = 0, j = 0; i < n; i++) {
		struct mchan *c = cases[i].chan;

		if (!c)
			continue;
		pthread_mutex_lock(&c->mu);
		if (sg[j].queued)
			wq_remove(cases[i].op == 1 ? &c->sendq : &c->recvq, &sg[j]);
		pthread_mutex_unlock(&c->mu);
		j++;
	}
	if (rc == 0) {
		cases[w->idx].err = w->err;
		rc = (int)w->idx;
	}
out:
	free(heap);
	return rc;
}

int mchan_select(struct chan_case *cases, size_t n)
{
	return do_select(cases, n, MCHAN_FOREVER, SEL_BLOCK);
}

int mchan_select_try(struct chan_case *cases, size_t n)
{
	return do_select(cases, n, INT64_MIN, SEL_TRY);
}

int mchan_select_until(struct chan_case *cases, size_t n, int64_t deadline)
{
	return do_select(cases, n, deadline, SEL_UNTIL);
}
