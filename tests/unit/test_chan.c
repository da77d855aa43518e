/* tests/unit/test_chan.c: channels and select.
 *
 * Part (a), the conformance suite, is written against struct chan_strategy
 * and runs on every strategy in chan_strategies[] (weft, the mutex baseline,
 * peers) and chan_strategies_spsc[] (one sender and one receiver only, e.g.
 * ck_ring_spsc): the contract of weft/chan.h seen through bench/strategy.h.
 * A case that needs what a strategy lacks (several senders or receivers
 * without CHAN_CAP_MPMC, capacity 0, select, bulk calls) is skipped for
 * it, and the log says so and why.
 * Part (b) covers what only weft has: NULL handles, size limits,
 * introspection, and the helpers of weft/common.h. Part (c) checks the
 * baseline's own NULL handling.
 *
 * Usage: test_chan [strategy]   (default: every strategy, then weft-only)
 *
 * Every blocking call is bounded: a deadline, or a partner thread that is
 * guaranteed to act. No durations are asserted, except that a timeout
 * returned -ETIMEDOUT no earlier than its deadline.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/task.h>
#include "internal/chan_impl.h"
#include "internal/futex.h"

#include "chan_mutex.h"
#include "check.h"
#include "participant.h"
#include "strategy.h"

static const struct chan_strategy *S; /* the strategy under test */
static unsigned tests_run, tests_skipped;

#define T(fn)                                                                    \
	do {                                                                     \
		RUN(fn);                                                         \
		tests_run++;                                                     \
	} while (0)

/* T(fn) if the strategy can take it (ok), else a visible skip with why */
#define T_IF(fn, ok, why)                                                        \
	do {                                                                     \
		if (ok) {                                                        \
			T(fn);                                                   \
		} else {                                                         \
			fprintf(stderr, "  %-50s skipped: %s\n", #fn, why);     \
			tests_skipped++;                                         \
		}                                                                \
	} while (0)

/* ---- helpers ------------------------------------------------------------- */

static int64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t in_ms(int64_t ms)
{
	return now() + ms * 1000000;
}

/* in a task: parks the task, not its carrier */
static void sleep_ms(long ms)
{
	weft_sleep(ms * 1000000);
}

static void *mk(size_t elem_size, size_t cap)
{
	void *c = NULL;

	CHECK_EQ(S->create(&c, elem_size, cap), 0);
	CHECK(c != NULL);
	return c;
}

static bool has_unbuffered(void)
{
	return S->caps & CHAN_CAP_UNBUFFERED;
}

/* several senders or receivers on one channel at once */
static bool has_mpmc(void)
{
	return S->caps & CHAN_CAP_MPMC;
}

#define NO_MPMC "needs several senders or receivers (caps lack CHAN_CAP_MPMC)"

/* a thread, or a task for the tasks strategy (participant.h) */
static pthread_t spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	participant_start(&t, 0, fn, arg);
	return t;
}

static void join(pthread_t t)
{
	participant_join(t);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (unsigned char)(seed * 31u + k * 7u + 1u);
}

static bool matches(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != (unsigned char)(seed * 31u + k * 7u + 1u))
			return false;
	return true;
}

/* A thread doing one channel call; kind picks the variant. */
enum { K_PLAIN, K_UNTIL, K_MANY };

struct op {
	void *ch;
	int kind;
	uint64_t val;
	long rc;
	atomic_int done;
};

/* Do o's call: send o->val, or receive into it. */
static void *th_op(struct op *o, bool send)
{
	int kind = o->kind;

	if (kind != K_PLAIN && kind != K_UNTIL &&
	    !(send ? S->send_many != NULL : S->recv_many != NULL))
		kind = K_PLAIN; /* no _many: the plain call */
	switch (kind) {
	case K_PLAIN:
		o->rc = send ? S->send(o->ch, &o->val) : S->recv(o->ch, &o->val);
		break;
	case K_UNTIL:
		o->rc = send ? S->send_until(o->ch, &o->val, in_ms(20000))
			     : S->recv_until(o->ch, &o->val, in_ms(20000));
		break;
	default:
		o->rc = send ? S->send_many(o->ch, &o->val, 1) : S->recv_many(o->ch, &o->val, 1);
		if (o->rc == 1)
			o->rc = 0;
	}
	atomic_store(&o->done, 1);
	return NULL;
}

static void *th_recv(void *p)
{
	return th_op(p, false);
}

static void *th_send(void *p)
{
	return th_op(p, true);
}

/* Start fn (th_send or th_recv) on o and check that it blocks. */
static pthread_t start_blocked(void *(*fn)(void *), struct op *o)
{
	pthread_t t = spawn(fn, o);

	sleep_ms(30);
	CHECK_EQ(atomic_load(&o->done), 0);
	return t;
}

/* ==== (a) conformance: every strategy ===================================== */

static void c_fifo_capacities(void)
{
	static const size_t caps[] = { 1, 2, 3, 5, 7, 64, 1000, 1024 };

	for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
		size_t cap = caps[ci];
		void *ch = mk(sizeof(uint64_t), cap);
		uint64_t v, next_in = 0, next_out = 0;

		for (int round = 0; round < 3; round++) {
			for (size_t i = 0; i < cap; i++) {
				v = next_in++;
				CHECK_EQ(S->try_send(ch, &v), 0);
			}
			CHECK_EQ(S->len(ch), cap);
			v = 999999;
			CHECK_EQ(S->try_send(ch, &v), -EAGAIN);
			CHECK_EQ(S->send_until(ch, &v, now() - 1), -ETIMEDOUT);
			CHECK_EQ(S->len(ch), cap);
			for (size_t i = 0; i < cap; i++) {
				CHECK_EQ(S->try_recv(ch, &v), 0);
				CHECK_EQ(v, next_out++);
			}
			CHECK_EQ(S->try_recv(ch, &v), -EAGAIN);
			CHECK_EQ(S->recv_until(ch, &v, now() - 1), -ETIMEDOUT);
			CHECK_EQ(S->len(ch), 0);
		}
		/* steady state around the wrap point, with plain send/recv */
		for (size_t i = 0; i < cap / 2; i++) {
			v = next_in++;
			CHECK_EQ(S->send(ch, &v), 0);
		}
		for (size_t i = 0; i < 3 * cap + 5; i++) {
			v = next_in++;
			CHECK_EQ(S->send(ch, &v), 0);
			CHECK_EQ(S->recv(ch, &v), 0);
			CHECK_EQ(v, next_out++);
			CHECK(S->len(ch) <= cap);
		}
		while (next_out < next_in) {
			CHECK_EQ(S->recv(ch, &v), 0);
			CHECK_EQ(v, next_out++);
		}
		CHECK_EQ(S->len(ch), 0);
		S->destroy(ch);
	}
}

static void c_elem_sizes(void)
{
	static const size_t sizes[] = { 0, 1, 8, 24, 100 };
	static const size_t caps[] = { 1, 3 };

	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		for (size_t ci = 0; ci < 2; ci++) {
			size_t es = sizes[si], cap = caps[ci];
			void *ch = mk(es, cap);
			unsigned char in[128], out[128 + 16];
			unsigned seed_in = 0, seed_out = 0;

			for (int i = 0; i < 10; i++) {
				while (S->len(ch) < cap) {
					fill(in, es, seed_in++);
					CHECK_EQ(S->try_send(ch, es ? in : NULL), 0);
				}
				CHECK_EQ(S->try_send(ch, es ? in : NULL), -EAGAIN);
				memset(out, 0xee, sizeof out);
				CHECK_EQ(S->recv(ch, es ? out : NULL), 0);
				CHECK(matches(out, es, seed_out++));
				for (size_t k = es; k < sizeof out; k++)
					CHECK_EQ(out[k], 0xee);
			}
			/* elem_size 0: every call takes NULL */
			if (!es) {
				CHECK_EQ(S->len(ch), cap - 1);
				CHECK_EQ(S->send(ch, NULL), 0);
				CHECK_EQ(S->try_recv(ch, NULL), 0);
				CHECK_EQ(S->send_until(ch, NULL, in_ms(1000)), 0);
				CHECK_EQ(S->recv_until(ch, NULL, in_ms(1000)), 0);
				if (S->send_many) {
					CHECK_EQ(S->send(ch, NULL), 0);
					CHECK_EQ(S->recv_many(ch, NULL, 100), (long)cap);
					CHECK_EQ(S->send_many(ch, NULL, 100), (long)cap);
					CHECK_EQ(S->len(ch), cap);
					CHECK_EQ(S->recv_many(ch, NULL, 100), (long)cap);
				}
			}
			S->destroy(ch);
		}
	}
}

static void c_null_elem(void)
{
	void *ch = mk(8, 4);
	uint64_t v = 5;

	CHECK_EQ(S->send(ch, NULL), -EINVAL);
	CHECK_EQ(S->try_send(ch, NULL), -EINVAL);
	CHECK_EQ(S->send_until(ch, NULL, in_ms(100)), -EINVAL);
	CHECK_EQ(S->len(ch), 0);
	if (S->send_many) {
		CHECK_EQ(S->send_many(ch, NULL, 1), -EINVAL);
		CHECK_EQ(S->recv_many(ch, NULL, 1), -EINVAL);
		CHECK_EQ(S->send_many(ch, &v, 0), -EINVAL);
		CHECK_EQ(S->recv_many(ch, &v, 0), -EINVAL);
		CHECK_EQ(S->len(ch), 0);
	}
	S->destroy(ch);
}

/* weft/chan.h: recv "into *elem (may be NULL to drop it)"; select's RECV
 * elem "may be NULL" too. (recv_many is the exception: NULL is -EINVAL.) */
/* A NULL destination with elem_size > 0 is bad input: -EINVAL, and the
 * element stays in the channel (a select RECV case may drop with NULL). */
static void c_recv_null_rejected(void)
{
	void *ch = mk(8, 4);
	uint64_t v = 5;

	CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->recv(ch, NULL), -EINVAL);
	CHECK_EQ(S->try_recv(ch, NULL), -EINVAL);
	CHECK_EQ(S->recv_until(ch, NULL, in_ms(100)), -EINVAL);
	CHECK_EQ(S->send(ch, NULL), -EINVAL);
	CHECK_EQ(S->try_send(ch, NULL), -EINVAL);
	CHECK_EQ(S->len(ch), 1);
	v = 0;
	CHECK_EQ(S->recv(ch, &v), 0);
	CHECK_EQ(v, 5);
	S->destroy(ch);
	/* signal-only channels never touch element pointers */
	ch = mk(0, 2);
	CHECK_EQ(S->send(ch, NULL), 0);
	CHECK_EQ(S->recv(ch, NULL), 0);
	S->destroy(ch);
}

static void check_timeout_at(int64_t deadline)
{
	CHECK(now() >= deadline);
}

static void c_until_timeout(void)
{
	void *ch = mk(8, 2);
	uint64_t v = 1;
	int64_t d;

	d = in_ms(30);
	CHECK_EQ(S->recv_until(ch, &v, d), -ETIMEDOUT);
	check_timeout_at(d);
	CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->send(ch, &v), 0);
	d = in_ms(30);
	CHECK_EQ(S->send_until(ch, &v, d), -ETIMEDOUT);
	check_timeout_at(d);
	CHECK_EQ(S->len(ch), 2);
	S->destroy(ch);

	if (!has_unbuffered())
		return;
	ch = mk(8, 0);
	d = in_ms(30);
	CHECK_EQ(S->send_until(ch, &v, d), -ETIMEDOUT);
	check_timeout_at(d);
	/* the timed-out sender left nothing behind, and no timed-out
	 * receiver accepts a later send */
	CHECK_EQ(S->try_recv(ch, &v), -EAGAIN);
	d = in_ms(30);
	CHECK_EQ(S->recv_until(ch, &v, d), -ETIMEDOUT);
	check_timeout_at(d);
	CHECK_EQ(S->try_send(ch, &v), -EAGAIN);
	CHECK_EQ(S->len(ch), 0);
	S->destroy(ch);
}

/* Past deadlines: like try, but -ETIMEDOUT instead of -EAGAIN. */
static void c_past_deadline(void)
{
	const int64_t pasts[] = { 0, -1, INT64_MIN, 1 };
	void *ch = mk(8, 1);
	uint64_t v = 7, w = 0;

	for (size_t i = 0; i < sizeof pasts / sizeof pasts[0]; i++) {
		int64_t p = pasts[i];

		CHECK_EQ(S->recv_until(ch, &w, p), -ETIMEDOUT);
		CHECK_EQ(S->send_until(ch, &v, p), 0);
		CHECK_EQ(S->send_until(ch, &v, p), -ETIMEDOUT);
		CHECK_EQ(S->send_until(ch, &v, now() - 1000), -ETIMEDOUT);
		w = 0;
		CHECK_EQ(S->recv_until(ch, &w, now() - 1000), 0);
		CHECK_EQ(w, 7);
	}
	CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->send_until(ch, &v, 0), -EPIPE);
	CHECK_EQ(S->recv_until(ch, &w, 0), 0); /* still drains */
	CHECK_EQ(S->recv_until(ch, &w, 0), -EPIPE);
	S->destroy(ch);

	if (!has_unbuffered())
		return;
	/* unbuffered: a past-deadline send completes with a waiting receiver
	 * (retry until the receiver is parked; bounded by its own deadline) */
	ch = mk(8, 0);
	{
		struct op o = { .ch = ch, .kind = K_UNTIL };
		pthread_t t = spawn(th_recv, &o);
		int64_t give_up = in_ms(15000);
		int rc;

		v = 4242;
		while ((rc = S->send_until(ch, &v, 0)) == -ETIMEDOUT) {
			CHECK(now() < give_up);
			sleep_ms(1);
		}
		CHECK_EQ(rc, 0);
		join(t);
		CHECK_EQ(o.rc, 0);
		CHECK_EQ(o.val, 4242);
	}
	{
		struct op o = { .ch = ch, .kind = K_UNTIL, .val = 77 };
		pthread_t t = spawn(th_send, &o);
		int64_t give_up = in_ms(15000);
		int rc;

		w = 0;
		while ((rc = S->recv_until(ch, &w, now() - 1)) == -ETIMEDOUT) {
			CHECK(now() < give_up);
			sleep_ms(1);
		}
		CHECK_EQ(rc, 0);
		CHECK_EQ(w, 77);
		join(t);
		CHECK_EQ(o.rc, 0);
	}
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->send_until(ch, &v, 0), -EPIPE);
	CHECK_EQ(S->recv_until(ch, &w, 0), -EPIPE);
	S->destroy(ch);
}

static void c_close_buffered(void)
{
	void *ch = mk(8, 5);
	uint64_t v;

	for (v = 10; v < 13; v++)
		CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->close(ch), -EPIPE);
	v = 99;
	CHECK_EQ(S->send(ch, &v), -EPIPE);
	CHECK_EQ(S->try_send(ch, &v), -EPIPE);
	CHECK_EQ(S->send_until(ch, &v, in_ms(1000)), -EPIPE);
	if (S->send_many)
		CHECK_EQ(S->send_many(ch, &v, 1), -EPIPE);
	CHECK_EQ(S->len(ch), 3);
	CHECK_EQ(S->recv(ch, &v), 0);
	CHECK_EQ(v, 10);
	CHECK_EQ(S->try_recv(ch, &v), 0);
	CHECK_EQ(v, 11);
	CHECK_EQ(S->recv_until(ch, &v, in_ms(1000)), 0);
	CHECK_EQ(v, 12);
	CHECK_EQ(S->len(ch), 0);
	CHECK_EQ(S->recv(ch, &v), -EPIPE);
	CHECK_EQ(S->try_recv(ch, &v), -EPIPE);
	CHECK_EQ(S->recv_until(ch, &v, in_ms(1000)), -EPIPE);
	if (S->recv_many)
		CHECK_EQ(S->recv_many(ch, &v, 4), -EPIPE);
	CHECK_EQ(S->close(ch), -EPIPE);
	S->destroy(ch);

	/* closing an empty, never used channel; destroy with elements left */
	ch = mk(8, 3);
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->recv(ch, &v), -EPIPE);
	S->destroy(ch);
	ch = mk(24, 3);
	{
		unsigned char b[24] = { 1 };

		CHECK_EQ(S->send(ch, b), 0);
		CHECK_EQ(S->send(ch, b), 0);
	}
	S->destroy(ch);
}

#define NWAIT 3

/* How many threads block on one side of a channel at once: NWAIT, or one
 * (the one sender or receiver) without CHAN_CAP_MPMC. */
static int nwait(void)
{
	return has_mpmc() ? NWAIT : 1;
}

/* nwait() threads run fn on o[0 .. nwait()-1] and block on ch; closing ch
 * wakes each with -EPIPE. */
static void close_wakes(void *ch, struct op *o, void *(*fn)(void *))
{
	pthread_t t[NWAIT];

	for (int i = 0; i < nwait(); i++)
		t[i] = spawn(fn, &o[i]);
	sleep_ms(30); /* let them block (not required for the result) */
	for (int i = 0; i < nwait(); i++)
		CHECK_EQ(atomic_load(&o[i].done), 0);
	CHECK_EQ(S->close(ch), 0);
	for (int i = 0; i < nwait(); i++) {
		join(t[i]);
		CHECK_EQ(o[i].rc, -EPIPE);
	}
}

static void c_close_wakes_receivers(void)
{
	for (int unbuf = 0; unbuf < 2; unbuf++) {
		if (unbuf && !has_unbuffered())
			continue;
		void *ch = mk(8, unbuf ? 0 : 4);
		struct op o[NWAIT];

		for (int i = 0; i < NWAIT; i++)
			o[i] = (struct op){ .ch = ch, .kind = i % 3, .val = 5 };
		close_wakes(ch, o, th_recv);
		for (int i = 0; i < nwait(); i++)
			CHECK_EQ(o[i].val, 5);
		S->destroy(ch);
	}
}

static void c_close_wakes_senders(void)
{
	for (int unbuf = 0; unbuf < 2; unbuf++) {
		if (unbuf && !has_unbuffered())
			continue;
		void *ch = mk(8, unbuf ? 0 : 2);
		struct op o[NWAIT];
		uint64_t v;

		if (!unbuf) {
			for (v = 100; v < 102; v++)
				CHECK_EQ(S->send(ch, &v), 0);
		}
		for (int i = 0; i < NWAIT; i++)
			o[i] = (struct op){ .ch = ch, .kind = i % 3, .val = 500 + i };
		close_wakes(ch, o, th_send);
		/* the blocked senders delivered nothing */
		if (!unbuf) {
			for (v = 100; v < 102; v++) {
				uint64_t w;

				CHECK_EQ(S->recv(ch, &w), 0);
				CHECK_EQ(w, v);
			}
		}
		CHECK_EQ(S->recv(ch, &v), -EPIPE);
		CHECK_EQ(S->len(ch), 0);
		S->destroy(ch);
	}
}

static void c_unbuffered_rendezvous(void)
{
	if (!has_unbuffered())
		return;
	void *ch = mk(8, 0);
	uint64_t v = 1;

	CHECK_EQ(S->try_send(ch, &v), -EAGAIN);
	CHECK_EQ(S->try_recv(ch, &v), -EAGAIN);
	CHECK_EQ(S->len(ch), 0);

	/* a send does not return before a receiver took the element */
	for (int kind = 0; kind < 3; kind++) {
		struct op o = { .ch = ch, .kind = kind, .val = 42 + kind };
		pthread_t t = start_blocked(th_send, &o);

		CHECK_EQ(S->len(ch), 0);
		v = 0;
		CHECK_EQ(S->recv_until(ch, &v, in_ms(20000)), 0);
		CHECK_EQ(v, 42 + kind);
		join(t);
		CHECK_EQ(o.rc, 0);
	}
	/* and a receive waits for a sender */
	for (int kind = 0; kind < 3; kind++) {
		struct op o = { .ch = ch, .kind = kind };
		pthread_t t = start_blocked(th_recv, &o);

		v = 7 + kind;
		CHECK_EQ(S->send_until(ch, &v, in_ms(20000)), 0);
		join(t);
		CHECK_EQ(o.rc, 0);
		CHECK_EQ(o.val, 7 + kind);
	}
	/* try_send succeeds once a receiver waits */
	{
		struct op o = { .ch = ch, .kind = K_UNTIL };
		pthread_t t = spawn(th_recv, &o);
		int64_t give_up = in_ms(15000);
		int rc;

		v = 31337;
		while ((rc = S->try_send(ch, &v)) == -EAGAIN) {
			CHECK(now() < give_up);
			sleep_ms(1);
		}
		CHECK_EQ(rc, 0);
		join(t);
		CHECK_EQ(o.val, 31337);
	}
	S->destroy(ch);
}

struct xfer {
	void *ch;
	size_t es;
	unsigned n;
	bool many;
};

static void *th_xfer_send(void *p)
{
	struct xfer *x = p;
	unsigned char buf[7 * 128];

	if (!x->many) {
		for (unsigned i = 0; i < x->n; i++) {
			fill(buf, x->es, i);
			CHECK_EQ(S->send(x->ch, x->es ? buf : NULL), 0);
		}
		return NULL;
	}
	for (unsigned i = 0; i < x->n;) {
		unsigned k = x->n - i < 7 ? x->n - i : 7;

		for (unsigned j = 0; j < k; j++)
			fill(buf + j * x->es, x->es, i + j);
		long r = S->send_many(x->ch, buf, k);

		CHECK(r >= 1 && r <= (long)k);
		i += (unsigned)r;
	}
	return NULL;
}

/* single producer, single consumer: everything arrives, in order */
static void xfer(size_t es, size_t cap, unsigned n, bool many)
{
	struct xfer x = { .ch = mk(es, cap), .es = es, .n = n, .many = many };
	unsigned char buf[13 * 128];
	pthread_t t = spawn(th_xfer_send, &x);
	unsigned got = 0;

	while (got < n) {
		if (many) {
			long r = S->recv_many(x.ch, buf, 13);

			CHECK(r >= 1 && r <= 13);
			for (long j = 0; j < r; j++)
				CHECK(matches(buf + j * es, es, got + (unsigned)j));
			got += (unsigned)r;
		} else {
			CHECK_EQ(S->recv(x.ch, buf), 0);
			CHECK(matches(buf, es, got));
			got++;
		}
	}
	join(t);
	CHECK_EQ(S->close(x.ch), 0);
	CHECK_EQ(S->recv(x.ch, buf), -EPIPE);
	S->destroy(x.ch);
}

static void c_transfer_sizes(void)
{
	static const size_t sizes[] = { 0, 1, 8, 24, 100 };

	for (size_t si = 0; si < 5; si++) {
		xfer(sizes[si], 3, 500, false);
		if (has_unbuffered())
			xfer(sizes[si], 0, 200, false);
	}
}

static void c_many(void)
{
	if (!S->send_many || !S->recv_many)
		return;
	void *ch = mk(8, 8);
	uint64_t in[20], out[100];

	for (int i = 0; i < 20; i++)
		in[i] = (uint64_t)i;
	/* as many as fit, a prefix */
	CHECK_EQ(S->send_many(ch, in, 20), 8);
	CHECK_EQ(S->len(ch), 8);
	CHECK_EQ(S->recv_many(ch, out, 5), 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(out[i], i);
	CHECK_EQ(S->send_many(ch, in + 8, 12), 5);
	CHECK_EQ(S->len(ch), 8);
	CHECK_EQ(S->recv_many(ch, out, 100), 8);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(out[i], 5 + i);
	CHECK_EQ(S->send_many(ch, in, 3), 3);
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->send_many(ch, in, 3), -EPIPE);
	CHECK_EQ(S->recv_many(ch, out, 2), 2);
	CHECK_EQ(S->recv_many(ch, out, 2), 1);
	CHECK_EQ(out[0], 2);
	CHECK_EQ(S->recv_many(ch, out, 2), -EPIPE);
	S->destroy(ch);

	/* recv_many blocks until one is there and returns what is there */
	ch = mk(8, 8);
	{
		struct op o = { .ch = ch, .kind = K_PLAIN, .val = 88 };
		pthread_t t;

		t = spawn(th_send, &o);
		CHECK_EQ(S->recv_many(ch, out, 10), 1);
		CHECK_EQ(out[0], 88);
		join(t);
	}
	S->destroy(ch);

	/* threaded bulk transfer, any capacity (and unbuffered) */
	xfer(8, 1, 3000, true);
	xfer(8, 5, 3000, true);
	xfer(24, 64, 5000, true);
	if (has_unbuffered())
		xfer(8, 0, 1000, true);
}

/* MPMC: every element once, FIFO per producer as each consumer sees it */
#define MP 2
#define MC 2

struct mpmc {
	void *ch;
	unsigned n, id;
	atomic_uchar *seen;
	atomic_int *live;
};

static void *th_mp_send(void *p)
{
	struct mpmc *m = p;

	for (unsigned i = 0; i < m->n; i++) {
		uint64_t v = (uint64_t)m->id << 32 | i;

		CHECK_EQ(S->send(m->ch, &v), 0);
	}
	if (atomic_fetch_sub(m->live, 1) == 1)
		CHECK_EQ(S->close(m->ch), 0);
	return NULL;
}

static void *th_mp_recv(void *p)
{
	struct mpmc *m = p;
	long last[MP];
	uint64_t v;

	for (int i = 0; i < MP; i++)
		last[i] = -1;
	while (S->recv(m->ch, &v) == 0) {
		unsigned prod = (unsigned)(v >> 32), seq = (unsigned)v;

		CHECK(prod < MP && seq < m->n);
		CHECK((long)seq > last[prod]);
		last[prod] = seq;
		CHECK_EQ(atomic_fetch_add(&m->seen[prod * m->n + seq], 1), 0);
	}
	return NULL;
}

static void c_mpmc(void)
{
	static const size_t caps[] = { 0, 1, 16 };

	for (size_t ci = 0; ci < 3; ci++) {
		if (!caps[ci] && !has_unbuffered())
			continue;
		unsigned n = caps[ci] ? 10000 : 3000;
		atomic_int live = MP;
		atomic_uchar *seen = calloc((size_t)MP * n, 1);
		struct mpmc m[MP + MC];
		pthread_t t[MP + MC];
		void *ch = mk(8, caps[ci]);

		CHECK(seen);
		for (unsigned i = 0; i < MP + MC; i++) {
			m[i] = (struct mpmc){ ch, n, i, seen, &live };
			t[i] = spawn(i < MP ? th_mp_send : th_mp_recv, &m[i]);
		}
		for (unsigned i = 0; i < MP + MC; i++)
			join(t[i]);
		for (size_t i = 0; i < (size_t)MP * n; i++)
			CHECK_EQ(seen[i], 1);
		S->destroy(ch);
		free(seen);
	}
}

/* One sender and one receiver, each mixing plain, try and timed calls:
 * every item once and in order; then the receiver closes while the sender
 * is still sending, and every send that returned 0 was received. */
#define SPSC_ITEMS 50000

struct spsc_run {
	void *ch;
	uint64_t accepted, received;
	uint64_t close_at; /* the receiver closes after this many (0: the sender closes) */
	int bad;
};

/* call k of a side: plain, try (retried) or timed (1 ms, retried) by k % 3 */
static int spsc_op(void *ch, uint64_t *v, bool send, uint64_t k)
{
	int rc;

	switch (k % 3) {
	case 0:
		return send ? S->send(ch, v) : S->recv(ch, v);
	case 1:
		while ((rc = send ? S->try_send(ch, v) : S->try_recv(ch, v)) == -EAGAIN)
			weft_yield();
		return rc;
	default:
		while ((rc = send ? S->send_until(ch, v, in_ms(1)) : S->recv_until(ch, v, in_ms(1))) ==
		       -ETIMEDOUT) {
		}
		return rc;
	}
}

static void *th_spsc_send(void *p)
{
	struct spsc_run *r = p;
	int rc = 0;

	for (uint64_t v = 0; r->close_at || v < SPSC_ITEMS; v++) {
		if ((rc = spsc_op(r->ch, &v, true, v)) != 0)
			break;
		r->accepted++;
	}
	if (!r->close_at) {
		CHECK_EQ(rc, 0);
		CHECK_EQ(S->close(r->ch), 0);
	} else {
		CHECK_EQ(rc, -EPIPE);
	}
	return NULL;
}

static void *th_spsc_recv(void *p)
{
	struct spsc_run *r = p;
	uint64_t v;
	int rc;

	while ((rc = spsc_op(r->ch, &v, false, r->received)) == 0) {
		if (v != r->received)
			r->bad = 1; /* out of order, lost or invented */
		r->received++;
		if (r->close_at && r->received == r->close_at)
			CHECK_EQ(S->close(r->ch), 0);
	}
	CHECK_EQ(rc, -EPIPE);
	return NULL;
}

static void c_spsc_exactly_once(void)
{
	static const size_t caps[] = { 1, 3, 1024 };

	for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
		for (int race = 0; race < 2; race++) {
			struct spsc_run r = { .ch = mk(8, caps[ci]), .close_at = race ? 12345 : 0 };
			pthread_t a, b;

			b = spawn(th_spsc_recv, &r);
			a = spawn(th_spsc_send, &r);
			join(a);
			join(b);
			CHECK_EQ(r.bad, 0);
			CHECK_EQ(r.accepted, r.received);
			if (!race)
				CHECK_EQ(r.received, SPSC_ITEMS);
			else
				CHECK(r.received >= r.close_at);
			S->destroy(r.ch);
		}
	}
}

/* ---- select --------------------------------------------------------------- */

#define SEL_SENTINEL 12345

static void c_select_basic(void)
{
	if (!S->select)
		return;
	void *a = mk(8, 1), *b = mk(8, 1);
	uint64_t va = 0, vb = 0, x = 9;
	struct chan_case cs[2] = {
		{ a, 2, &va, SEL_SENTINEL },
		{ b, 2, &vb, SEL_SENTINEL },
	};
	int64_t d;

	CHECK_EQ(S->select_try(cs, 2), -EAGAIN);
	CHECK_EQ(S->select_until(cs, 2, now() - 1), -ETIMEDOUT);
	d = in_ms(30);
	CHECK_EQ(S->select_until(cs, 2, d), -ETIMEDOUT);
	check_timeout_at(d);
	x = 5;
	CHECK_EQ(S->send(b, &x), 0);
	CHECK_EQ(S->select_try(cs, 2), 1);
	CHECK_EQ(cs[1].err, 0);
	CHECK_EQ(vb, 5);
	CHECK_EQ(va, 0);
	CHECK_EQ(S->len(b), 0);
	/* a ready case completes even past the deadline, and in plain select */
	x = 6;
	CHECK_EQ(S->send(a, &x), 0);
	CHECK_EQ(S->select_until(cs, 2, 0), 0);
	CHECK_EQ(va, 6);
	x = 7;
	CHECK_EQ(S->send(a, &x), 0);
	CHECK_EQ(S->select(cs, 2), 0);
	CHECK_EQ(va, 7);
	CHECK_EQ(cs[0].err, 0);

	/* send cases */
	{
		uint64_t s1 = 111, s2 = 222;
		struct chan_case ss[2] = {
			{ a, 1, &s1, SEL_SENTINEL },
			{ NULL, 1, &s2, SEL_SENTINEL },
		};

		CHECK_EQ(S->select_try(ss, 2), 0);
		CHECK_EQ(ss[0].err, 0);
		CHECK_EQ(S->len(a), 1);
		CHECK_EQ(S->select_try(ss, 2), -EAGAIN); /* full */
		CHECK_EQ(S->select_until(ss, 2, now() - 1), -ETIMEDOUT);
		d = in_ms(30);
		CHECK_EQ(S->select_until(ss, 2, d), -ETIMEDOUT);
		check_timeout_at(d);
		CHECK_EQ(S->len(a), 1);
		CHECK_EQ(S->recv(a, &x), 0);
		CHECK_EQ(x, 111);
		/* mixed send and recv: only the ready one */
		ss[1] = (struct chan_case){ b, 2, &vb, SEL_SENTINEL };
		CHECK_EQ(S->select(ss, 2), 0);
		CHECK_EQ(S->select_try(ss, 2), -EAGAIN);
		CHECK_EQ(S->recv(a, &x), 0);
		CHECK_EQ(x, 111);
	}
	S->destroy(a);
	S->destroy(b);
}

/* Count which of the ready cases a select picks over many runs. */
#define RAND_RUNS 10000

static void check_share(unsigned hits, unsigned runs, unsigned ways)
{
	/* loose: within 20% of the fair share either way (40-60% for two) */
	double share = (double)hits / runs, fair = 1.0 / ways;

	if (share < fair * 0.8 || share > fair * 1.2) {
		fprintf(stderr, "unfair select: %u of %u runs, fair share %.2f\n",
			hits, runs, fair);
		CHECK(0);
	}
}

static void c_select_random(void)
{
	if (!S->select)
		return;
	void *a = mk(8, 1), *b = mk(8, 1), *e = mk(8, 1);
	uint64_t x = 1, va, vb, ve;
	unsigned hits[4];

	/* two always-ready receives */
	{
		struct chan_case cs[2] = { { a, 2, &va, 0 }, { b, 2, &vb, 0 } };

		CHECK_EQ(S->send(a, &x), 0);
		CHECK_EQ(S->send(b, &x), 0);
		memset(hits, 0, sizeof hits);
		for (unsigned i = 0; i < RAND_RUNS; i++) {
			int r = i & 1 ? S->select(cs, 2) : S->select_try(cs, 2);

			CHECK(r == 0 || r == 1);
			hits[r]++;
			CHECK_EQ(S->send(r ? b : a, &x), 0);
		}
		check_share(hits[0], RAND_RUNS, 2);
		check_share(hits[1], RAND_RUNS, 2);
	}
	/* a random permutation, not a random start: a not-ready case (or a
	 * disabled one) between two ready ones does not favour the second */
	for (int variant = 0; variant < 2; variant++) {
		struct chan_case cs[3] = {
			{ a, 2, &va, 0 },
			{ variant ? NULL : e, 2, &ve, 0 },
			{ b, 2, &vb, 0 },
		};

		memset(hits, 0, sizeof hits);
		for (unsigned i = 0; i < RAND_RUNS; i++) {
			int r = S->select_until(cs, 3, i & 1 ? 0 : in_ms(10000));

			CHECK(r == 0 || r == 2);
			hits[r]++;
			CHECK_EQ(S->send(r ? b : a, &x), 0);
		}
		check_share(hits[0], RAND_RUNS, 2);
		check_share(hits[2], RAND_RUNS, 2);
	}
	/* three ready sends */
	{
		uint64_t s = 3;
		struct chan_case cs[4] = {
			{ a, 1, &s, 0 },
			{ NULL, 2, NULL, 0 },
			{ b, 1, &s, 0 },
			{ e, 1, &s, 0 },
		};
		void *ch[4] = { a, NULL, b, e };

		CHECK_EQ(S->recv(a, &x), 0);
		CHECK_EQ(S->recv(b, &x), 0);
		memset(hits, 0, sizeof hits);
		for (unsigned i = 0; i < RAND_RUNS; i++) {
			int r = S->select(cs, 4);

			CHECK(r == 0 || r == 2 || r == 3);
			hits[r]++;
			CHECK_EQ(S->try_recv(ch[r], &x), 0);
			CHECK_EQ(x, 3);
		}
		check_share(hits[0], RAND_RUNS, 3);
		check_share(hits[2], RAND_RUNS, 3);
		check_share(hits[3], RAND_RUNS, 3);
	}
	S->destroy(a);
	S->destroy(b);
	S->destroy(e);
}

static void c_select_disabled_and_errors(void)
{
	if (!S->select)
		return;
	void *a = mk(8, 2);
	uint64_t x = 4, v = 0;
	struct chan_case cs[3] = {
		{ NULL, 2, &v, SEL_SENTINEL },
		{ a, 2, &v, SEL_SENTINEL },
		{ NULL, 1, &x, SEL_SENTINEL },
	};
	struct chan_case none[2] = { { NULL, 2, &v, 0 }, { NULL, 1, &x, 0 } };
	int64_t d;

	CHECK_EQ(S->send(a, &x), 0);
	CHECK_EQ(S->select(cs, 3), 1);
	CHECK_EQ(cs[1].err, 0);
	CHECK_EQ(v, 4);
	CHECK_EQ(S->select_try(cs, 3), -EAGAIN);

	/* no enabled case: plain select would block forever */
	CHECK_EQ(S->select(none, 2), -EINVAL);
	CHECK_EQ(S->select(NULL, 0), -EINVAL);
	CHECK_EQ(S->select_try(none, 2), -EAGAIN);
	CHECK_EQ(S->select_until(none, 2, now() - 1), -ETIMEDOUT);
	d = in_ms(30);
	CHECK_EQ(S->select_until(none, 2, d), -ETIMEDOUT);
	check_timeout_at(d);
	d = in_ms(20);
	CHECK_EQ(S->select_until(NULL, 0, d), -ETIMEDOUT);
	check_timeout_at(d);

	/* bad input */
	CHECK_EQ(S->select(NULL, 1), -EINVAL);
	CHECK_EQ(S->select_try(NULL, 1), -EINVAL);
	CHECK_EQ(S->select_until(NULL, 1, in_ms(10)), -EINVAL);
	{
		struct chan_case bad[2] = { { a, 2, &v, 0 }, { a, 3, &v, 0 } };

		CHECK_EQ(S->send(a, &x), 0);
		CHECK_EQ(S->select(bad, 2), -EINVAL);
		bad[1].op = 0;
		CHECK_EQ(S->select_try(bad, 2), -EINVAL);
		bad[1] = (struct chan_case){ a, 1, NULL, 0 }; /* NULL value, elem_size 8 */
		CHECK_EQ(S->select_until(bad, 2, in_ms(10)), -EINVAL);
		CHECK_EQ(S->len(a), 1); /* nothing happened */
		/* a NULL receive buffer drops the element */
		bad[1] = (struct chan_case){ a, 2, NULL, SEL_SENTINEL };
		bad[0].chan = NULL;
		CHECK_EQ(S->select(bad, 2), 1);
		CHECK_EQ(bad[1].err, 0);
		CHECK_EQ(S->len(a), 0);
	}
	S->destroy(a);
}

static void c_select_closed(void)
{
	if (!S->select)
		return;
	void *a = mk(8, 2), *b = mk(8, 2), *c = mk(8, 2);
	uint64_t x = 8, v = 0;

	CHECK_EQ(S->send(a, &x), 0);
	CHECK_EQ(S->close(a), 0);
	{
		struct chan_case cs[2] = { { c, 2, &v, SEL_SENTINEL }, { a, 2, &v, SEL_SENTINEL } };

		/* a closed channel still drains through select */
		CHECK_EQ(S->select(cs, 2), 1);
		CHECK_EQ(cs[1].err, 0);
		CHECK_EQ(v, 8);
		/* then its receive is ready with -EPIPE */
		v = 0;
		cs[1].err = SEL_SENTINEL;
		CHECK_EQ(S->select_try(cs, 2), 1);
		CHECK_EQ(cs[1].err, -EPIPE);
		cs[1].err = SEL_SENTINEL;
		CHECK_EQ(S->select_until(cs, 2, 0), 1);
		CHECK_EQ(cs[1].err, -EPIPE);
		cs[1].err = SEL_SENTINEL;
		CHECK_EQ(S->select(cs, 2), 1);
		CHECK_EQ(cs[1].err, -EPIPE);
		CHECK_EQ(v, 0);
	}
	CHECK_EQ(S->close(b), 0);
	{
		uint64_t s = 77;
		struct chan_case cs[2] = { { c, 2, &v, SEL_SENTINEL }, { b, 1, &s, SEL_SENTINEL } };

		/* a send on a closed channel completes with -EPIPE, sends nothing */
		CHECK_EQ(S->select(cs, 2), 1);
		CHECK_EQ(cs[1].err, -EPIPE);
		cs[1].err = SEL_SENTINEL;
		CHECK_EQ(S->select_try(cs, 2), 1);
		CHECK_EQ(cs[1].err, -EPIPE);
		CHECK_EQ(S->len(b), 0);
		CHECK_EQ(S->recv(b, &v), -EPIPE);
	}
	if (has_unbuffered()) {
		void *u = mk(8, 0);
		uint64_t s = 1;
		struct chan_case cs[2] = { { u, 2, &v, SEL_SENTINEL }, { u, 1, &s, SEL_SENTINEL } };

		CHECK_EQ(S->close(u), 0);
		int r = S->select(cs, 2);

		CHECK(r == 0 || r == 1);
		CHECK_EQ(cs[r].err, -EPIPE);
		S->destroy(u);
	}
	S->destroy(a);
	S->destroy(b);
	S->destroy(c);
}

static void c_select_duplicates(void)
{
	if (!S->select)
		return;
	void *a = mk(8, 1);
	uint64_t x = 3, v1 = 0, v2 = 0, s1 = 10, s2 = 20;

	for (int i = 0; i < 100; i++) {
		struct chan_case cs[2] = { { a, 2, &v1, 0 }, { a, 2, &v2, 0 } };
		int r;

		v1 = v2 = 0;
		CHECK_EQ(S->send(a, &x), 0);
		r = S->select(cs, 2);
		CHECK(r == 0 || r == 1);
		CHECK_EQ(r ? v2 : v1, 3);
		CHECK_EQ(r ? v1 : v2, 0);
		CHECK_EQ(S->len(a), 0);
		CHECK_EQ(S->select_try(cs, 2), -EAGAIN);
	}
	for (int i = 0; i < 100; i++) {
		struct chan_case cs[2] = { { a, 1, &s1, 0 }, { a, 1, &s2, 0 } };
		int r = S->select(cs, 2);

		CHECK(r == 0 || r == 1);
		CHECK_EQ(S->len(a), 1);
		CHECK_EQ(S->select_try(cs, 2), -EAGAIN);
		CHECK_EQ(S->recv(a, &x), 0);
		CHECK_EQ(x, r ? 20 : 10);
	}
	S->destroy(a);
}

/* A thread running one select; kind 0 select, 1 select_until (20 s). */
struct selop {
	struct chan_case cs[4];
	size_t n;
	int kind;
	int rc;
	atomic_int done;
};

static void *th_select(void *p)
{
	struct selop *o = p;

	if (o->kind)
		o->rc = S->select_until(o->cs, o->n, in_ms(20000));
	else
		o->rc = S->select(o->cs, o->n);
	atomic_store(&o->done, 1);
	return NULL;
}

/* Start a select on o and check that it blocks. */
static pthread_t start_blocked_select(struct selop *o)
{
	pthread_t t = spawn(th_select, o);

	sleep_ms(20);
	CHECK_EQ(atomic_load(&o->done), 0);
	return t;
}

static void c_select_wakes(void)
{
	if (!S->select)
		return;
	for (int unbuf = 0; unbuf < 2; unbuf++) {
		if (unbuf && !has_unbuffered())
			continue;
		size_t cap = unbuf ? 0 : 1;
		void *a = mk(8, cap), *b = mk(8, cap);
		uint64_t va = 0, vb = 0, x;

		/* a blocked receive case is completed by a plain send */
		for (int kind = 0; kind < 2; kind++) {
			struct selop o = { .cs = { { a, 2, &va, SEL_SENTINEL },
						   { b, 2, &vb, SEL_SENTINEL } },
					   .n = 2, .kind = kind };
			pthread_t t = start_blocked_select(&o);

			x = 50 + kind;
			CHECK_EQ(S->send_until(b, &x, in_ms(20000)), 0);
			join(t);
			CHECK_EQ(o.rc, 1);
			CHECK_EQ(o.cs[1].err, 0);
			CHECK_EQ(vb, 50 + kind);
			CHECK_EQ(va, 0);
			CHECK_EQ(S->try_recv(a, &x), -EAGAIN);
			CHECK_EQ(S->try_recv(b, &x), -EAGAIN);
		}
		/* a blocked send case is completed by a plain receive */
		if (!unbuf) {
			x = 1;
			CHECK_EQ(S->send(a, &x), 0); /* full */
		}
		for (int kind = 0; kind < 2; kind++) {
			uint64_t s = 60 + kind;
			struct selop o = { .cs = { { a, 1, &s, SEL_SENTINEL },
						   { b, 2, &vb, SEL_SENTINEL } },
					   .n = 2, .kind = kind };
			pthread_t t = start_blocked_select(&o);

			x = 0;
			CHECK_EQ(S->recv_until(a, &x, in_ms(20000)), 0);
			if (unbuf) {
				CHECK_EQ(x, 60 + kind);
			} else {
				/* the buffered one first, then ours moves up */
				CHECK_EQ(x, kind ? 60 : 1);
			}
			join(t);
			CHECK_EQ(o.rc, 0);
			CHECK_EQ(o.cs[0].err, 0);
			if (!unbuf)
				CHECK_EQ(S->len(a), 1);
		}
		if (!unbuf) {
			CHECK_EQ(S->recv(a, &x), 0);
			CHECK_EQ(x, 61);
		}
		/* close wakes a blocked select: receive case */
		{
			struct selop o = { .cs = { { a, 2, &va, SEL_SENTINEL },
						   { b, 2, &vb, SEL_SENTINEL } },
					   .n = 2, .kind = 1 };
			pthread_t t = start_blocked_select(&o);

			CHECK_EQ(S->close(b), 0);
			join(t);
			CHECK_EQ(o.rc, 1);
			CHECK_EQ(o.cs[1].err, -EPIPE);
		}
		/* and a blocked send case */
		if (!unbuf) {
			x = 1;
			CHECK_EQ(S->send(a, &x), 0);
		}
		{
			uint64_t s = 5;
			struct selop o = { .cs = { { a, 1, &s, SEL_SENTINEL } }, .n = 1 };
			pthread_t t = start_blocked_select(&o);

			CHECK_EQ(S->close(a), 0);
			join(t);
			CHECK_EQ(o.rc, 0);
			CHECK_EQ(o.cs[0].err, -EPIPE);
			if (!unbuf) {
				CHECK_EQ(S->recv(a, &x), 0);
				CHECK_EQ(x, 1);
			}
			CHECK_EQ(S->recv(a, &x), -EPIPE);
		}
		S->destroy(a);
		S->destroy(b);
	}
}

/* A select never pairs with itself; two selects pair with each other. */
struct pairer {
	void *ch;
	uint64_t tag;
	unsigned rounds, sent, got;
};

static void *th_pairer(void *p)
{
	struct pairer *pp = p;

	for (unsigned i = 0; i < pp->rounds; i++) {
		uint64_t in = 0, out = pp->tag;
		struct chan_case cs[2] = { { pp->ch, 1, &out, SEL_SENTINEL },
					   { pp->ch, 2, &in, SEL_SENTINEL } };
		int r = S->select_until(cs, 2, in_ms(20000));

		CHECK(r == 0 || r == 1);
		CHECK_EQ(cs[r].err, 0);
		if (r) {
			CHECK(in != pp->tag); /* not our own value */
			CHECK(in == 1 || in == 2);
			pp->got++;
		} else {
			pp->sent++;
		}
	}
	return NULL;
}

static void c_select_no_self_pairing(void)
{
	if (!S->select || !has_unbuffered())
		return;
	void *u = mk(8, 0);
	uint64_t s = 1, v = 0;
	struct chan_case cs[2] = { { u, 1, &s, 0 }, { u, 2, &v, 0 } };
	int64_t d;

	CHECK_EQ(S->select_try(cs, 2), -EAGAIN);
	d = in_ms(50);
	CHECK_EQ(S->select_until(cs, 2, d), -ETIMEDOUT);
	check_timeout_at(d);
	CHECK_EQ(S->try_recv(u, &v), -EAGAIN);
	CHECK_EQ(S->try_send(u, &s), -EAGAIN);

	/* two threads, each select { send u, recv u }: they pair up */
	{
		struct pairer p1 = { u, 1, 1000, 0, 0 }, p2 = { u, 2, 1000, 0, 0 };
		pthread_t t1 = spawn(th_pairer, &p1), t2 = spawn(th_pairer, &p2);

		join(t1);
		join(t2);
		CHECK_EQ(p1.sent, p2.got);
		CHECK_EQ(p2.sent, p1.got);
	}
	/* a select { send u, recv u } against a plain partner */
	for (int i = 0; i < 50; i++) {
		struct op o = { .ch = u, .kind = i & 1 ? K_UNTIL : K_PLAIN, .val = 9 };
		pthread_t t = spawn(i & 2 ? th_send : th_recv, &o);
		uint64_t in = 0, out = 3;
		struct chan_case c2[2] = { { u, 1, &out, 0 }, { u, 2, &in, 0 } };
		int r = S->select_until(c2, 2, in_ms(20000));

		join(t);
		CHECK_EQ(o.rc, 0);
		if (i & 2) {
			CHECK_EQ(r, 1);
			CHECK_EQ(in, 9);
		} else {
			CHECK_EQ(r, 0);
			CHECK_EQ(o.val, 3);
		}
	}
	S->destroy(u);
}

/* select against select on unbuffered channels */
struct selloop {
	void *ch;
	int op;
	unsigned rounds;
};

static void *th_selloop(void *p)
{
	struct selloop *l = p;

	for (unsigned i = 0; i < l->rounds; i++) {
		uint64_t v = i;
		struct chan_case cs[2] = { { NULL, 2, NULL, 0 }, { l->ch, l->op, &v, 0 } };
		int r = S->select_until(cs, 2, in_ms(20000));

		CHECK_EQ(r, 1);
		CHECK_EQ(cs[1].err, 0);
		if (l->op == 2)
			CHECK_EQ(v, i);
	}
	return NULL;
}

static void c_select_vs_select(void)
{
	if (!S->select || !has_unbuffered())
		return;
	void *u = mk(8, 0);
	struct selloop s = { u, 1, 1000 }, r = { u, 2, 1000 };
	pthread_t t1 = spawn(th_selloop, &s), t2 = spawn(th_selloop, &r);
	uint64_t v;

	join(t1);
	join(t2);
	CHECK_EQ(S->try_recv(u, &v), -EAGAIN);
	S->destroy(u);
}

/* more cases than a stack array usually holds */
#define NBIG 40

static void c_select_many_cases(void)
{
	if (!S->select)
		return;
	void *ch[NBIG];
	uint64_t vals[NBIG];
	struct chan_case cs[NBIG];
	uint64_t x = 37;

	for (int i = 0; i < NBIG; i++) {
		ch[i] = mk(8, i & 1);
		if (!(i & 1) && !has_unbuffered()) {
			S->destroy(ch[i]);
			ch[i] = mk(8, 1);
		}
		vals[i] = 0;
		cs[i] = (struct chan_case){ ch[i], 2, &vals[i], 0 };
	}
	CHECK_EQ(S->select_try(cs, NBIG), -EAGAIN);
	CHECK_EQ(S->send(ch[37], &x), 0);
	CHECK_EQ(S->select(cs, NBIG), 37);
	CHECK_EQ(vals[37], 37);
	{
		pthread_t t;
		struct op o = { .ch = ch[22], .kind = K_UNTIL, .val = 22 };

		t = spawn(th_send, &o);
		CHECK_EQ(S->select_until(cs, NBIG, in_ms(20000)), 22);
		CHECK_EQ(vals[22], 22);
		join(t);
		CHECK_EQ(o.rc, 0);
	}
	for (int i = 0; i < NBIG; i++)
		S->destroy(ch[i]);
}

/* select as a fan-in: every element once, FIFO per channel */
struct fanin_src {
	void *ch;
	unsigned n, id;
	bool use_select;
};

static void *th_fanin_send(void *p)
{
	struct fanin_src *f = p;

	for (unsigned i = 0; i < f->n; i++) {
		uint64_t v = (uint64_t)f->id << 32 | i;

		if (f->use_select) {
			struct chan_case cs[1] = { { f->ch, 1, &v, 0 } };

			CHECK_EQ(S->select(cs, 1), 0);
			CHECK_EQ(cs[0].err, 0);
		} else {
			CHECK_EQ(S->send(f->ch, &v), 0);
		}
	}
	CHECK_EQ(S->close(f->ch), 0);
	return NULL;
}

static void c_select_fanin(void)
{
	if (!S->select)
		return;
	const unsigned n = 3000;
	struct fanin_src f[3];
	pthread_t t[3];
	unsigned next[3] = { 0, 0, 0 }, open = 3;
	uint64_t v;
	struct chan_case cs[3];

	for (unsigned i = 0; i < 3; i++) {
		size_t cap = i == 0 ? 4 : i == 1 ? 1 : 0;

		if (!cap && !has_unbuffered())
			cap = 2;
		f[i] = (struct fanin_src){ mk(8, cap), n, i, i != 1 };
		cs[i] = (struct chan_case){ f[i].ch, 2, &v, 0 };
		t[i] = spawn(th_fanin_send, &f[i]);
	}
	while (open) {
		int r = S->select(cs, 3);

		CHECK(r >= 0 && r < 3);
		if (cs[r].err == -EPIPE) {
			cs[r].chan = NULL; /* drained: disable */
			open--;
			continue;
		}
		CHECK_EQ(cs[r].err, 0);
		CHECK_EQ(v >> 32, r);
		CHECK_EQ((unsigned)v, next[r]);
		next[r]++;
	}
	for (unsigned i = 0; i < 3; i++) {
		join(t[i]);
		CHECK_EQ(next[i], n);
		S->destroy(f[i].ch);
	}
}

static void run_conformance(void)
{
	bool sel = S->select != NULL;

	T(c_fifo_capacities);
	T(c_elem_sizes);
	T(c_null_elem);
	T(c_until_timeout);
	T(c_past_deadline);
	T(c_close_buffered);
	T(c_close_wakes_receivers); /* one waiter without CHAN_CAP_MPMC */
	T(c_close_wakes_senders);
	T_IF(c_unbuffered_rendezvous, has_unbuffered(), "no capacity 0 (CHAN_CAP_UNBUFFERED)");
	T(c_transfer_sizes);
	T_IF(c_many, S->send_many && S->recv_many, "no send_many/recv_many");
	T_IF(c_mpmc, has_mpmc(), NO_MPMC);
	T(c_spsc_exactly_once);
	T_IF(c_select_basic, sel, "no select");
	T_IF(c_select_random, sel, "no select");
	T_IF(c_select_disabled_and_errors, sel, "no select");
	T_IF(c_select_closed, sel, "no select");
	T_IF(c_select_duplicates, sel, "no select");
	T_IF(c_select_wakes, sel, "no select");
	T_IF(c_select_no_self_pairing, sel && has_mpmc(), sel ? NO_MPMC : "no select");
	T_IF(c_select_vs_select, sel, "no select");
	T_IF(c_select_many_cases, sel, "no select");
	T_IF(c_select_fanin, sel, "no select");
	T(c_recv_null_rejected);
}

/* ==== (b) weft only ======================================================= */

static void w_null_handles(void)
{
	uint64_t v = 1;
	weft_case_t cs[1] = { { NULL, WEFT_RECV, &v, 0 } };

	CHECK_EQ(weft_chan_create(NULL, 8, 4), -EINVAL);
	CHECK_EQ(weft_chan_create(NULL, 8, 0), -EINVAL);
	CHECK_EQ(weft_chan_send(NULL, &v), -EINVAL);
	CHECK_EQ(weft_chan_recv(NULL, &v), -EINVAL);
	CHECK_EQ(weft_chan_try_send(NULL, &v), -EINVAL);
	CHECK_EQ(weft_chan_try_recv(NULL, &v), -EINVAL);
	CHECK_EQ(weft_chan_send_until(NULL, &v, weft_deadline(1000000)), -EINVAL);
	CHECK_EQ(weft_chan_recv_until(NULL, &v, weft_deadline(1000000)), -EINVAL);
	CHECK_EQ(weft_chan_send_until(NULL, &v, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_chan_recv_until(NULL, &v, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_chan_send_many(NULL, &v, 1), -EINVAL);
	CHECK_EQ(weft_chan_recv_many(NULL, &v, 1), -EINVAL);
	CHECK_EQ(weft_chan_close(NULL), -EINVAL);
	CHECK_EQ(weft_chan_len(NULL), 0);
	CHECK_EQ(weft_chan_cap(NULL), 0);
	CHECK_EQ(weft_chan_elem_size(NULL), 0);
	CHECK_EQ(weft_chan_is_closed(NULL), 0);
	weft_chan_destroy(NULL);
	/* in a select, NULL is a disabled case */
	CHECK_EQ(weft_select(cs, 1), -EINVAL);
	CHECK_EQ(weft_select_try(cs, 1), -EAGAIN);
	CHECK_EQ(weft_select_until(cs, 1, 0), -ETIMEDOUT);
}

static void w_create_limits(void)
{
	weft_chan_t *sentinel = (weft_chan_t *)(uintptr_t)0x1234, *c = sentinel;

	CHECK_EQ(weft_chan_create(&c, SIZE_MAX, 1), -ENOMEM);
	CHECK(c == sentinel);
	CHECK_EQ(weft_chan_create(&c, SIZE_MAX, 16), -ENOMEM);
	CHECK_EQ(weft_chan_create(&c, 1, WEFT_CHAN_MAX_CAPACITY + 1), -ENOMEM);
	CHECK_EQ(weft_chan_create(&c, 0, WEFT_CHAN_MAX_CAPACITY + 1), -ENOMEM);
	CHECK_EQ(weft_chan_create(&c, 8, SIZE_MAX), -ENOMEM);
	/* elem_size x capacity overflows size_t */
	CHECK_EQ(weft_chan_create(&c, SIZE_MAX / 2 + 1, 2), -ENOMEM);
	CHECK_EQ(weft_chan_create(&c, (SIZE_MAX >> 20) + 1, (size_t)1 << 20), -ENOMEM);
	/* too large to allocate, without overflowing */
	CHECK_EQ(weft_chan_create(&c, (size_t)1 << 40, WEFT_CHAN_MAX_CAPACITY), -ENOMEM);
	CHECK(c == sentinel);
	/* the largest capacity of signal-only elements need not be refused,
	 * but if accepted it works */
	c = NULL;
	CHECK_EQ(weft_chan_create(&c, 8, 1), 0);
	CHECK(c != NULL);
	weft_chan_destroy(c);
}

static void w_introspection(void)
{
	static const size_t caps[] = { 0, 1, 3, 1000 };
	uint64_t v = 1;

	for (size_t i = 0; i < 4; i++) {
		weft_chan_t *c;

		CHECK_EQ(weft_chan_create(&c, 8 + i, caps[i]), 0);
		CHECK_EQ(weft_chan_cap(c), caps[i]);
		CHECK_EQ(weft_chan_elem_size(c), 8 + i);
		CHECK_EQ(weft_chan_len(c), 0);
		CHECK_EQ(weft_chan_is_closed(c), 0);
		if (caps[i]) {
			unsigned char b[16] = { 0 };

			CHECK_EQ(weft_chan_send(c, b), 0);
			CHECK_EQ(weft_chan_len(c), 1);
		}
		CHECK_EQ(weft_chan_close(c), 0);
		CHECK(weft_chan_is_closed(c) != 0);
		CHECK_EQ(weft_chan_len(c), caps[i] ? 1 : 0);
		CHECK_EQ(weft_chan_cap(c), caps[i]);
		weft_chan_destroy(c);
	}
	{
		weft_chan_t *c;

		CHECK_EQ(weft_chan_create(&c, 0, 5), 0);
		CHECK_EQ(weft_chan_elem_size(c), 0);
		for (int i = 0; i < 5; i++)
			CHECK_EQ(weft_chan_send(c, NULL), 0);
		CHECK_EQ(weft_chan_try_send(c, NULL), -EAGAIN);
		CHECK_EQ(weft_chan_len(c), 5);
		weft_chan_destroy(c);
	}
	(void)v;
}

/* len never exceeds cap while others send and receive */
struct lenprobe {
	weft_chan_t *c;
	atomic_int stop;
};

static void *th_churn(void *p)
{
	struct lenprobe *l = p;
	uint64_t v = 0;

	while (!atomic_load(&l->stop)) {
		(void)weft_chan_try_send(l->c, &v);
		(void)weft_chan_try_recv(l->c, &v);
		(void)weft_chan_try_send(l->c, &v);
	}
	return NULL;
}

static void w_len_bounded(void)
{
	struct lenprobe l;
	pthread_t t;

	CHECK_EQ(weft_chan_create(&l.c, 8, 3), 0);
	atomic_init(&l.stop, 0);
	t = spawn(th_churn, &l);
	for (int i = 0; i < 200000; i++)
		CHECK(weft_chan_len(l.c) <= 3);
	atomic_store(&l.stop, 1);
	join(t);
	weft_chan_destroy(l.c);
}

static void w_strerror(void)
{
	static const int codes[] = { EAGAIN, ETIMEDOUT, ECANCELED, EPIPE, EBUSY, ENOMEM, EINVAL, EOWNERDEAD };
	const size_t n = sizeof codes / sizeof codes[0];
	static const int odd[] = { 0, 1, -1, 4095, -4095, 123456, -123456, INT_MAX, INT_MIN, -EINTR };

	for (size_t i = 0; i < n; i++) {
		const char *neg = weft_strerror(-codes[i]), *pos = weft_strerror(codes[i]);

		CHECK(neg != NULL && pos != NULL);
		CHECK(neg[0] != '\0' && pos[0] != '\0');
		for (size_t j = 0; j < i; j++) {
			CHECK(strcmp(neg, weft_strerror(-codes[j])) != 0);
			CHECK(strcmp(pos, weft_strerror(codes[j])) != 0);
		}
		/* not the text of an unknown code */
		CHECK(strcmp(neg, weft_strerror(123456)) != 0);
	}
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		const char *s = weft_strerror(odd[i]);

		CHECK(s != NULL);
		CHECK(strlen(s) < 4096);
	}
}

static void w_now(void)
{
	int64_t prev = weft_now();

	CHECK(prev > 0);
	for (int i = 0; i < 100000; i++) {
		int64_t t = weft_now();

		CHECK(t >= prev);
		prev = t;
	}
	/* the same clock as CLOCK_MONOTONIC */
	{
		int64_t a = weft_now(), m = now(), b = weft_now();

		CHECK(a <= m && m <= b);
	}
}

static void w_deadline(void)
{
	int64_t before, after, d;

	before = weft_now();
	d = weft_deadline(1000000000);
	after = weft_now();
	CHECK(d >= before + 1000000000 && d <= after + 1000000000);
	CHECK_EQ(weft_deadline(INT64_MAX), WEFT_FOREVER);
	CHECK_EQ(weft_deadline(INT64_MAX - 1), WEFT_FOREVER);
	CHECK_EQ(weft_deadline(INT64_MAX - 1000), WEFT_FOREVER);
	/* <= 0: already passed */
	CHECK(weft_deadline(0) <= weft_now());
	CHECK(weft_deadline(-1) <= weft_now());
	CHECK(weft_deadline(-1000000000) <= weft_now());
	CHECK(weft_deadline(INT64_MIN) <= weft_now());
	/* and they behave as passed deadlines */
	{
		weft_chan_t *c;
		uint64_t v = 0;

		CHECK_EQ(weft_chan_create(&c, 8, 1), 0);
		CHECK_EQ(weft_chan_recv_until(c, &v, weft_deadline(0)), -ETIMEDOUT);
		CHECK_EQ(weft_chan_recv_until(c, &v, weft_deadline(INT64_MIN)), -ETIMEDOUT);
		weft_chan_destroy(c);
	}
}

static void w_spin_ns(void)
{
	int64_t orig = weft_set_spin_ns(-1);

	CHECK(orig >= 0);
	if (!getenv("WEFT_SPIN_NS"))
		CHECK_EQ(orig, 4000);
	CHECK_EQ(weft_set_spin_ns(-1), orig);
	CHECK_EQ(weft_set_spin_ns(1234), orig);
	CHECK_EQ(weft_set_spin_ns(-1), 1234);
	CHECK_EQ(weft_set_spin_ns(-77), 1234); /* ignored */
	CHECK_EQ(weft_set_spin_ns(0), 1234);
	CHECK_EQ(weft_set_spin_ns(-1), 0);
	/* with spinning off, blocking still works */
	{
		weft_chan_t *c;
		uint64_t v = 0;
		int64_t d = weft_deadline(20000000);

		CHECK_EQ(weft_chan_create(&c, 8, 1), 0);
		CHECK_EQ(weft_chan_recv_until(c, &v, d), -ETIMEDOUT);
		CHECK(weft_now() >= d);
		weft_chan_destroy(c);
	}
	CHECK_EQ(weft_set_spin_ns(orig), 0);
	CHECK_EQ(weft_set_spin_ns(-1), orig);
}

static void w_select_limits(void)
{
	weft_chan_t *c;
	uint64_t v = 0;
	size_t n = WEFT_SELECT_MAX_CASES + 1;
	weft_case_t *cs = calloc(n, sizeof *cs);

	CHECK(cs);
	CHECK_EQ(weft_chan_create(&c, 8, 1), 0);
	CHECK_EQ(weft_chan_send(c, &v), 0);
	cs[0] = (weft_case_t){ c, WEFT_RECV, &v, 0 };
	CHECK_EQ(weft_select(cs, n), -EINVAL);
	CHECK_EQ(weft_select_try(cs, n), -EINVAL);
	CHECK_EQ(weft_select_until(cs, n, 0), -EINVAL);
	CHECK_EQ(weft_chan_len(c), 1);
	/* the maximum itself is fine */
	CHECK_EQ(weft_select_try(cs, n - 1), 0);
	CHECK_EQ(weft_chan_len(c), 0);
	free(cs);
	weft_chan_destroy(c);
}

/* ---- contexts: send_ctx, recv_ctx, select_ctx ---- */

struct ctx_op {
	weft_chan_t *ch;
	weft_ctx_t *ctx;
	int kind; /* 0 recv_ctx, 1 send_ctx, 2 select_ctx over a recv and a send */
	weft_chan_t *other;
	uint64_t val;
	int rc;
	atomic_int started;
};

static void *th_ctx_op(void *arg)
{
	struct ctx_op *o = arg;

	atomic_store(&o->started, 1);
	if (o->kind == 0) {
		o->rc = weft_chan_recv_ctx(o->ch, &o->val, o->ctx);
	} else if (o->kind == 1) {
		o->rc = weft_chan_send_ctx(o->ch, &o->val, o->ctx);
	} else {
		weft_case_t cs[2] = { { o->ch, WEFT_RECV, &o->val, 0 },
				      { o->other, WEFT_SEND, &o->val, 0 } };
		o->rc = weft_select_ctx(cs, 2, o->ctx);
	}
	return NULL;
}

/* Cancel a blocked call of each kind on each capacity: it returns
 * -ECANCELED and the channel is as if it had not been called. */
static void w_ctx_cancel_wakes(void)
{
	static const size_t caps[] = { 0, 1, 4 };

	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		for (int kind = 0; kind < 3; kind++) {
			weft_chan_t *ch, *full;
			weft_ctx_t *ctx;
			uint64_t v = 7;

			CHECK_EQ(weft_chan_create(&ch, 8, caps[c]), 0);
			/* for a send that blocks: a channel with no room */
			CHECK_EQ(weft_chan_create(&full, 8, caps[c]), 0);
			for (size_t i = 0; i < caps[c]; i++)
				CHECK_EQ(weft_chan_send(full, &v), 0);
			CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
			struct ctx_op o = { .ch = kind == 1 ? full : ch, .ctx = ctx, .kind = kind,
					    .other = full, .val = 99 };
			pthread_t t = spawn(th_ctx_op, &o);
			while (!atomic_load(&o.started))
				;
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			weft_ctx_cancel(ctx);
			join(t);
			CHECK_EQ(o.rc, -ECANCELED);
			/* nothing was taken or left behind */
			CHECK_EQ(weft_chan_len(ch), 0);
			CHECK_EQ(weft_chan_len(full), caps[c]);
			CHECK_EQ(weft_chan_try_recv(ch, &v), -EAGAIN);
			if (caps[c] == 0) /* no ghost partner left registered */
				CHECK_EQ(weft_chan_try_send(full, &v), -EAGAIN);
			weft_ctx_release(ctx);
			weft_chan_destroy(ch);
			weft_chan_destroy(full);
		}
	}
}

/* Done before the call: fails at once even when the channel is ready;
 * a context deadline ends a blocked call with -ETIMEDOUT; a live context
 * does not disturb a call that completes. */
static void w_ctx_done_and_deadline(void)
{
	weft_chan_t *ch;
	weft_ctx_t *ctx, *dl;
	uint64_t v = 5, got = 0;

	CHECK_EQ(weft_chan_create(&ch, 8, 2), 0);
	CHECK_EQ(weft_chan_send(ch, &v), 0);
	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	weft_ctx_cancel(ctx);
	CHECK_EQ(weft_chan_recv_ctx(ch, &got, ctx), -ECANCELED);
	CHECK_EQ(weft_chan_send_ctx(ch, &v, ctx), -ECANCELED);
	weft_case_t cs[1] = { { ch, WEFT_RECV, &got, 0 } };
	CHECK_EQ(weft_select_ctx(cs, 1, ctx), -ECANCELED);
	CHECK_EQ(weft_chan_len(ch), 1);
	weft_ctx_release(ctx);

	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	CHECK_EQ(weft_chan_recv_ctx(ch, &got, ctx), 0);
	CHECK_EQ(got, 5);
	CHECK_EQ(weft_chan_send_ctx(ch, &v, ctx), 0);
	CHECK_EQ(weft_select_ctx(cs, 1, ctx), 0);
	CHECK_EQ(cs[0].err, 0);
	weft_ctx_release(ctx);

	int64_t t0 = weft_now();
	CHECK_EQ(weft_ctx_with_timeout(&dl, weft_ctx_background(), 20 * 1000 * 1000), 0);
	CHECK_EQ(weft_chan_recv_ctx(ch, &got, dl), -ETIMEDOUT);
	CHECK(weft_now() - t0 >= 20 * 1000 * 1000);
	weft_ctx_release(dl);
	CHECK_EQ(weft_ctx_with_timeout(&dl, weft_ctx_background(), 20 * 1000 * 1000), 0);
	CHECK_EQ(weft_select_ctx(cs, 1, dl), -ETIMEDOUT);
	weft_ctx_release(dl);
	/* no enabled case: waits for the context */
	weft_case_t none[1] = { { NULL, WEFT_RECV, NULL, 0 } };
	CHECK_EQ(weft_ctx_with_timeout(&dl, weft_ctx_background(), 5 * 1000 * 1000), 0);
	CHECK_EQ(weft_select_ctx(none, 1, dl), -ETIMEDOUT);
	weft_ctx_release(dl);
	CHECK_EQ(weft_select_ctx(none, 1, weft_ctx_background()), -EINVAL);
	CHECK_EQ(weft_chan_len(ch), 0);
	CHECK_EQ(weft_chan_send_ctx(ch, &v, NULL), -EINVAL);
	CHECK_EQ(weft_chan_recv_ctx(ch, &got, NULL), -EINVAL);
	CHECK_EQ(weft_select_ctx(cs, 1, NULL), -EINVAL);
	CHECK_EQ(weft_chan_send_ctx(NULL, &v, weft_ctx_background()), -EINVAL);
	weft_chan_destroy(ch);
}

/* Cancellation racing a partner: every value is either received once or
 * still the sender's (its send_ctx failed), never both, never lost. */
static void w_ctx_cancel_race(void)
{
	for (int round = 0; round < 200; round++) {
		weft_chan_t *ch;
		weft_ctx_t *ctx;
		uint64_t got = 0;

		CHECK_EQ(weft_chan_create(&ch, 8, round & 1 ? 0 : 1), 0);
		CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
		struct ctx_op o = { .ch = ch, .ctx = ctx, .kind = 1, .val = 1000 + round };
		if (!(round & 1)) {
			uint64_t fill = 1;
			CHECK_EQ(weft_chan_send(ch, &fill), 0); /* cap 1: the send blocks */
		}
		pthread_t t = spawn(th_ctx_op, &o);
		if (!(round & 1))
			CHECK_EQ(weft_chan_recv(ch, &got), 0);
		weft_ctx_cancel(ctx);
		int rc = weft_chan_recv_until(ch, &got, weft_deadline(round & 1 ? 1000 : 50000000));
		join(t);
		if (o.rc == 0) {
			if (rc != 0) /* accepted: it must be there */
				CHECK_EQ(weft_chan_recv_until(ch, &got, weft_deadline(1000000000)), 0);
			CHECK_EQ(got, 1000 + round);
		} else {
			CHECK_EQ(o.rc, -ECANCELED);
			if (rc == 0)
				CHECK(got != 1000u + round);
		}
		CHECK_EQ(weft_chan_try_recv(ch, &got), -EAGAIN);
		weft_ctx_release(ctx);
		weft_chan_destroy(ch);
	}
}

/* No futex syscall when nobody waits: a thread that sends and receives on
 * its own, and try calls that fail, never wake or sleep. */
static void w_no_syscall_without_waiters(void)
{
	static const size_t caps[] = { 1, 3, 1024 };

	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		weft_chan_t *ch;
		uint64_t v = 0;

		CHECK_EQ(weft_chan_create(&ch, 8, caps[c]), 0);
		uint64_t wakes = weft__futex_wakes(), waits = weft__futex_waits();
		for (int round = 0; round < 100; round++) {
			for (size_t i = 0; i < caps[c]; i++)
				CHECK_EQ(weft_chan_send(ch, &v), 0);
			CHECK_EQ(weft_chan_try_send(ch, &v), -EAGAIN);
			for (size_t i = 0; i < caps[c]; i++)
				CHECK_EQ(weft_chan_recv(ch, &v), 0);
			CHECK_EQ(weft_chan_try_recv(ch, &v), -EAGAIN);
		}
		CHECK_EQ(weft__futex_wakes() - wakes, 0);
		CHECK_EQ(weft__futex_waits() - waits, 0);
		weft_chan_destroy(ch);
	}
}

/* ---- the rendezvous word of an unbuffered channel (chan.c) ---- */

struct lone {
	weft_chan_t *ch;
	int64_t deadline; /* WEFT_FOREVER: may wait alone in the word */
	bool send;
	uint64_t val;
	int rc;
};

static void *th_lone(void *p)
{
	struct lone *l = p;

	if (l->deadline == WEFT_FOREVER)
		l->rc = l->send ? weft_chan_send(l->ch, &l->val) : weft_chan_recv(l->ch, &l->val);
	else
		l->rc = l->send ? weft_chan_send_until(l->ch, &l->val, l->deadline)
				: weft_chan_recv_until(l->ch, &l->val, l->deadline);
	return NULL;
}

/* Wait (bounded) until n waiters are registered on ch's side op, counting
 * one waiting alone in the word. */
static void wait_waiters(weft_chan_t *ch, int op, uint32_t n)
{
	int64_t give_up = in_ms(20000);

	for (;;) {
		uint64_t rv = atomic_load((_Atomic uint64_t *)&ch->rv);
		uint32_t lone = (rv & 0xfffffffffff8ull) && (int)(rv & 1) == (op == WEFT_SEND);
		if (lone + weft__waitq_count(weft__chan_queue(ch, op)) >= n)
			return;
		CHECK(now() < give_up);
		sleep_ms(1);
	}
}

/* The word's states, with threads and with tasks: a receiver without
 * deadline waits alone in the word; a second one, with a deadline, queues
 * behind it (taking the lock moves the first into the queue), and two
 * sends reach them in the order they came; with the queues empty again the
 * word is free (a try finds nobody), and a lone waiter is met by a
 * select, by select_try, and woken by close. */
static void w_rendezvous_word(void)
{
	bool was = g_tasks;

	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		weft_chan_t *ch;
		uint64_t v;

		CHECK_EQ(weft_chan_create(&ch, 8, 0), 0);
		struct lone a = { ch, WEFT_FOREVER, false, 0, 1 };
		struct lone b = { ch, in_ms(20000), false, 0, 1 };
		pthread_t ta = spawn(th_lone, &a);
		wait_waiters(ch, WEFT_RECV, 1);
		pthread_t tb = spawn(th_lone, &b);
		wait_waiters(ch, WEFT_RECV, 2);
		for (v = 1; v <= 2; v++)
			CHECK_EQ(weft_chan_send(ch, &v), 0);
		join(ta);
		join(tb);
		CHECK_EQ(a.rc, 0);
		CHECK_EQ(b.rc, 0);
		CHECK_EQ(a.val, 1); /* FIFO across the move into the queue */
		CHECK_EQ(b.val, 2);
		CHECK_EQ(weft_chan_try_send(ch, &v), -EAGAIN);
		CHECK_EQ(weft_chan_try_recv(ch, &v), -EAGAIN);

		/* a lone sender, met by select */
		struct lone s = { ch, WEFT_FOREVER, true, 77, 1 };
		pthread_t t = spawn(th_lone, &s);
		wait_waiters(ch, WEFT_SEND, 1);
		v = 0;
		weft_case_t c[1] = { { .chan = ch, .op = WEFT_RECV, .elem = &v } };
		CHECK_EQ(weft_select(c, 1), 0);
		CHECK_EQ(v, 77);
		join(t);
		CHECK_EQ(s.rc, 0);

		/* a lone receiver, met by select_try's send */
		struct lone r = { ch, WEFT_FOREVER, false, 0, 1 };
		t = spawn(th_lone, &r);
		wait_waiters(ch, WEFT_RECV, 1);
		v = 78;
		c[0] = (weft_case_t){ .chan = ch, .op = WEFT_SEND, .elem = &v };
		CHECK_EQ(weft_select_try(c, 1), 0);
		join(t);
		CHECK_EQ(r.rc, 0);
		CHECK_EQ(r.val, 78);

		/* a lone receiver, woken by close with nothing */
		r = (struct lone){ ch, WEFT_FOREVER, false, 5, 1 };
		t = spawn(th_lone, &r);
		wait_waiters(ch, WEFT_RECV, 1);
		CHECK_EQ(weft_chan_close(ch), 0);
		join(t);
		CHECK_EQ(r.rc, -EPIPE);
		CHECK_EQ(r.val, 5);
		CHECK_EQ(weft_chan_send(ch, &v), -EPIPE);
		weft_chan_destroy(ch);
	}
	participants_tasks(was);
}

static void run_weft_only(void)
{
	T(w_null_handles);
	T(w_create_limits);
	T(w_introspection);
	T(w_len_bounded);
	T(w_strerror);
	T(w_now);
	T(w_deadline);
	T(w_spin_ns);
	T(w_select_limits);
	T(w_ctx_cancel_wakes);
	T(w_ctx_done_and_deadline);
	T(w_ctx_cancel_race);
	T(w_no_syscall_without_waiters);
	T(w_rendezvous_word);
}

/* ==== (c) the baseline's own API ========================================== */

static void m_null_handles(void)
{
	uint64_t v = 1;
	mchan_t *c = NULL;

	CHECK_EQ(mchan_create(NULL, 8, 1), -EINVAL);
	CHECK_EQ(mchan_send(NULL, &v), -EINVAL);
	CHECK_EQ(mchan_recv(NULL, &v), -EINVAL);
	CHECK_EQ(mchan_try_send(NULL, &v), -EINVAL);
	CHECK_EQ(mchan_try_recv(NULL, &v), -EINVAL);
	CHECK_EQ(mchan_send_until(NULL, &v, 0), -EINVAL);
	CHECK_EQ(mchan_recv_until(NULL, &v, MCHAN_FOREVER), -EINVAL);
	CHECK_EQ(mchan_send_many(NULL, &v, 1), -EINVAL);
	CHECK_EQ(mchan_recv_many(NULL, &v, 1), -EINVAL);
	CHECK_EQ(mchan_close(NULL), -EINVAL);
	CHECK_EQ(mchan_len(NULL), 0);
	CHECK_EQ(mchan_cap(NULL), 0);
	CHECK_EQ(mchan_elem_size(NULL), 0);
	CHECK_EQ(mchan_is_closed(NULL), 0);
	mchan_destroy(NULL);
	CHECK_EQ(mchan_create(&c, SIZE_MAX / 2 + 1, 2), -ENOMEM);
	CHECK_EQ(mchan_create(&c, 1, MCHAN_MAX_CAPACITY + 1), -ENOMEM);
	CHECK(c == NULL);
	CHECK_EQ(mchan_create(&c, 8, 3), 0);
	CHECK_EQ(mchan_cap(c), 3);
	CHECK_EQ(mchan_elem_size(c), 8);
	CHECK_EQ(mchan_close(c), 0);
	CHECK(mchan_is_closed(c));
	mchan_destroy(c);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const struct chan_strategy *const *lists[] = { chan_strategies, chan_strategies_spsc };
	char names[256] = "";
	bool any = false;

	test_watchdog(120);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t l = 0; l < 2; l++) {
		for (size_t i = 0; lists[l][i]; i++) {
			if (only && strcmp(only, lists[l][i]->name))
				continue;
			if (lists[l][i]->caps & CHAN_CAP_BENCH_ONLY) {
				/* rounded capacity, no len (strategy.h) */
				fprintf(stderr, "strategy %s: skipped (benchmark only: "
						"CHAN_CAP_BENCH_ONLY)\n",
					lists[l][i]->name);
				continue;
			}
			S = lists[l][i];
			participants_for(S);
			any = true;
			test_watchdog(120); /* each strategy gets the full budget */
			fprintf(stderr, "strategy %s%s:\n", S->name,
				has_mpmc() ? "" : " (one sender, one receiver)");
			run_conformance();
			if (strlen(names) + strlen(S->name) + 2 < sizeof names) {
				strcat(names, " ");
				strcat(names, S->name);
			}
		}
	}
	if (only && !any) {
		fprintf(stderr, "test_chan: no strategy named %s\n", only);
		return 2;
	}
	if (!only || !strcmp(only, "weft")) {
		test_watchdog(120);
		fprintf(stderr, "weft only:\n");
		run_weft_only();
	}
	if (!only || !strcmp(only, "mutex")) {
		fprintf(stderr, "baseline only:\n");
		T(m_null_handles);
	}
	printf("test_chan: %u tests passed, %u skipped (strategies:%s)\n", tests_run,
	       tests_skipped, names);
	return 0;
}
