/* bench/strategies/spin.c: a ring buffer behind a test-and-test-and-set
 * spinlock, as a strategy ("spin"). The simplest lock-based channel that
 * never sleeps: every send and receive takes the lock, copies the element
 * and releases it; a full or empty channel is waited on by spinning
 * (PAUSE, then sched_yield, see wait.h), never by parking. MPMC, buffered
 * only (capacity >= 1), no select, close under the lock (so exact: a send
 * that returned 0 is received, blocked callers see -EPIPE on their next
 * look). Not CHAN_CAP_BLOCKING: a waiting thread burns its core.
 *
 * Ordering: everything is under the lock (acquire on taking it, release on
 * dropping it). count and closed are also read outside the lock, relaxed,
 * only as a hint of when to retry under the lock.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"
#include "wait.h"

#define SPIN_MAX_CAPACITY (1u << 30)

struct spin_chan {
	alignas(64) atomic_int lock;
	atomic_size_t count;  /* elements in the ring; written under the lock */
	atomic_int closed;    /* written under the lock */
	size_t head;          /* next slot to read, under the lock */
	size_t cap, esz;
	unsigned char *buf;
};

static void lock(struct spin_chan *c)
{
	unsigned steps = 0;

	/* acquire: the ring's contents before our reads; pairs with unlock */
	while (atomic_exchange_explicit(&c->lock, 1, memory_order_acquire)) {
		while (atomic_load_explicit(&c->lock, memory_order_relaxed))
			sw_spin(&steps);
	}
}

static void unlock(struct spin_chan *c)
{
	/* release: our writes to the ring before the next holder's reads */
	atomic_store_explicit(&c->lock, 0, memory_order_release);
}

static int s_create(void **out, size_t elem_size, size_t capacity)
{
	struct spin_chan *c;

	if (!out || capacity == 0)
		return -EINVAL;
	if (capacity > SPIN_MAX_CAPACITY || (elem_size && capacity > SIZE_MAX / elem_size))
		return -ENOMEM;
	c = aligned_alloc(64, sizeof *c);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	c->buf = malloc(elem_size ? capacity * elem_size : 1);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	atomic_init(&c->lock, 0);
	atomic_init(&c->count, 0);
	atomic_init(&c->closed, 0);
	c->cap = capacity;
	c->esz = elem_size;
	*out = c;
	return 0;
}

static void s_destroy(void *ch)
{
	struct spin_chan *c = ch;

	if (!c)
		return;
	free(c->buf);
	free(c);
}

/* one attempt under the lock: 0, -EAGAIN (full / empty) or -EPIPE */
static int attempt(struct spin_chan *c, void *elem, int send)
{
	size_t n;
	int rc = -EAGAIN;

	lock(c);
	n = atomic_load_explicit(&c->count, memory_order_relaxed);
	if (send) {
		if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
			rc = -EPIPE;
		} else if (n < c->cap) {
			size_t slot = (c->head + n) % c->cap;

			if (c->esz)
				memcpy(c->buf + slot * c->esz, elem, c->esz);
			atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
			rc = 0;
		}
	} else if (n > 0) {
		if (c->esz)
			memcpy(elem, c->buf + c->head * c->esz, c->esz);
		c->head = (c->head + 1) % c->cap;
		atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
		rc = 0;
	} else if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
		rc = -EPIPE;
	}
	unlock(c);
	return rc;
}

/* try (deadline 0 and mode SW_TRY) or wait until the deadline, spinning */
static int op(struct spin_chan *c, void *elem, int send, int mode, int64_t deadline)
{
	unsigned steps = 0;

	if (!c || sw_bad_elem(elem, c->esz))
		return -EINVAL;
	for (;;) {
		int rc = attempt(c, elem, send);

		if (rc != -EAGAIN || mode == SW_TRY)
			return rc;
		if (sw_passed(deadline))
			return -ETIMEDOUT;
		/* wait, outside the lock, until it looks worth another try */
		for (;;) {
			size_t n = atomic_load_explicit(&c->count, memory_order_relaxed);

			if ((send ? n < c->cap : n > 0) ||
			    atomic_load_explicit(&c->closed, memory_order_relaxed))
				break;
			if (steps >= 64 && sw_passed(deadline))
				return -ETIMEDOUT;
			sw_spin(&steps);
		}
	}
}

static int s_send(void *ch, const void *elem)
{
	return op(ch, (void *)elem, 1, SW_UNTIL, SW_FOREVER);
}

static int s_recv(void *ch, void *elem)
{
	return op(ch, elem, 0, SW_UNTIL, SW_FOREVER);
}

static int s_try_send(void *ch, const void *elem)
{
	return op(ch, (void *)elem, 1, SW_TRY, 0);
}

static int s_try_recv(void *ch, void *elem)
{
	return op(ch, elem, 0, SW_TRY, 0);
}

/* a past deadline is a try that says -ETIMEDOUT (op tries first) */
static int s_send_until(void *ch, const void *elem, int64_t deadline)
{
	return op(ch, (void *)elem, 1, SW_UNTIL, deadline);
}

static int s_recv_until(void *ch, void *elem, int64_t deadline)
{
	return op(ch, elem, 0, SW_UNTIL, deadline);
}

static int s_close(void *ch)
{
	struct spin_chan *c = ch;
	int rc = 0;

	if (!c)
		return -EINVAL;
	lock(c);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed))
		rc = -EPIPE;
	atomic_store_explicit(&c->closed, 1, memory_order_relaxed);
	unlock(c);
	return rc;
}

static size_t s_len(const void *ch)
{
	struct spin_chan *c = (struct spin_chan *)ch;

	return c ? atomic_load_explicit(&c->count, memory_order_relaxed) : 0;
}

const struct chan_strategy chan_strategy_spin = {
	.name = "spin",
	.caps = CHAN_CAP_MPMC,
	.create = s_create,
	.destroy = s_destroy,
	.send = s_send,
	.recv = s_recv,
	.try_send = s_try_send,
	.try_recv = s_try_recv,
	.send_until = s_send_until,
	.recv_until = s_recv_until,
	.close = s_close,
	.len = s_len,
};
