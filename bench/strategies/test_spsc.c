/* bench/strategies/test_spsc.c: the contract of bench/strategy.h checked on
 * the single-sender, single-receiver strategies (chan_strategies_spsc[],
 * e.g. ck_ring_spsc), which the unit conformance suite cannot take (its
 * c_mpmc runs several senders on every strategy). The same checks, with at
 * most one sender and one receiver thread: FIFO at many capacities, element
 * sizes, bad arguments, deadlines, close (drain, -EPIPE, waking a waiting
 * sender and receiver, racing a sender: accepted == received), and an
 * exactly-once, in-order run of 50k items mixing plain, try and timed
 * calls. Runs on every strategy of both lists (the others as a cross-check
 * of the test itself). No durations are asserted, except that a timeout
 * came no earlier than its deadline.
 *
 * Usage: test_spsc [strategy]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "strategy.h"

static const struct chan_strategy *S;

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

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

static void *mk(size_t esz, size_t cap)
{
	void *c = NULL;

	CHECK_EQ(S->create(&c, esz, cap), 0);
	CHECK(c != NULL);
	return c;
}

static void s_fifo(void)
{
	static const size_t caps[] = { 1, 2, 3, 7, 64, 1000, 1024 };

	for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
		size_t cap = caps[ci];
		void *ch = mk(8, cap);
		uint64_t v, in = 0, out = 0;

		for (int round = 0; round < 3; round++) {
			for (size_t i = 0; i < cap; i++) {
				v = in++;
				CHECK_EQ(S->try_send(ch, &v), 0);
			}
			CHECK_EQ(S->len(ch), cap);
			CHECK_EQ(S->try_send(ch, &v), -EAGAIN);
			CHECK_EQ(S->send_until(ch, &v, now() - 1), -ETIMEDOUT);
			for (size_t i = 0; i < cap; i++) {
				CHECK_EQ(S->try_recv(ch, &v), 0);
				CHECK_EQ(v, out++);
			}
			CHECK_EQ(S->try_recv(ch, &v), -EAGAIN);
			CHECK_EQ(S->recv_until(ch, &v, now() - 1), -ETIMEDOUT);
			CHECK_EQ(S->len(ch), 0);
		}
		S->destroy(ch);
	}
}

static void s_sizes_and_args(void)
{
	static const size_t sizes[] = { 0, 1, 8, 24, 100 };

	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		size_t es = sizes[si];
		void *ch = mk(es, 3);
		unsigned char in[128], out[128];

		for (int i = 0; i < 10; i++) {
			for (size_t k = 0; k < es; k++)
				in[k] = (unsigned char)(i * 31 + k * 7 + 1);
			CHECK_EQ(S->send(ch, es ? in : NULL), 0);
			memset(out, 0xee, sizeof out);
			CHECK_EQ(S->recv(ch, es ? out : NULL), 0);
			CHECK(memcmp(in, out, es) == 0);
			for (size_t k = es; k < sizeof out; k++)
				CHECK_EQ(out[k], 0xee);
		}
		if (es) {
			CHECK_EQ(S->send(ch, NULL), -EINVAL);
			CHECK_EQ(S->try_send(ch, NULL), -EINVAL);
			CHECK_EQ(S->send(ch, in), 0);
			CHECK_EQ(S->recv(ch, NULL), -EINVAL);
			CHECK_EQ(S->try_recv(ch, NULL), -EINVAL);
			CHECK_EQ(S->len(ch), 1); /* the element stayed */
		}
		S->destroy(ch);
	}
}

static void s_deadlines(void)
{
	void *ch = mk(8, 2);
	uint64_t v = 1;
	int64_t d = in_ms(30);

	CHECK_EQ(S->recv_until(ch, &v, d), -ETIMEDOUT);
	CHECK(now() >= d);
	CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->send(ch, &v), 0);
	d = in_ms(30);
	CHECK_EQ(S->send_until(ch, &v, d), -ETIMEDOUT);
	CHECK(now() >= d);
	CHECK_EQ(S->len(ch), 2);
	/* a ready call completes past its deadline */
	CHECK_EQ(S->recv_until(ch, &v, 0), 0);
	CHECK_EQ(S->send_until(ch, &v, INT64_MIN), 0);
	S->destroy(ch);
}

static void s_close(void)
{
	void *ch = mk(8, 5);
	uint64_t v;

	for (v = 10; v < 13; v++)
		CHECK_EQ(S->send(ch, &v), 0);
	CHECK_EQ(S->close(ch), 0);
	CHECK_EQ(S->close(ch), -EPIPE);
	CHECK_EQ(S->send(ch, &v), -EPIPE);
	CHECK_EQ(S->try_send(ch, &v), -EPIPE);
	CHECK_EQ(S->send_until(ch, &v, in_ms(100)), -EPIPE);
	CHECK_EQ(S->len(ch), 3);
	for (uint64_t want = 10; want < 13; want++) {
		CHECK_EQ(S->recv(ch, &v), 0);
		CHECK_EQ(v, want);
	}
	CHECK_EQ(S->recv(ch, &v), -EPIPE);
	CHECK_EQ(S->try_recv(ch, &v), -EPIPE);
	CHECK_EQ(S->recv_until(ch, &v, in_ms(100)), -EPIPE);
	S->destroy(ch);
}

struct waiter {
	void *ch;
	int send;
	int rc;
	atomic_int done;
};

static void *th_wait(void *p)
{
	struct waiter *w = p;
	uint64_t v = 77;

	w->rc = w->send ? S->send(w->ch, &v) : S->recv(w->ch, &v);
	atomic_store(&w->done, 1);
	return NULL;
}

/* close wakes a receiver waiting on empty and a sender waiting on full */
static void s_close_wakes(void)
{
	for (int send = 0; send < 2; send++) {
		void *ch = mk(8, 1);
		struct waiter w = { .ch = ch, .send = send };
		uint64_t v = 5;
		pthread_t t;

		if (send)
			CHECK_EQ(S->send(ch, &v), 0);
		CHECK_EQ(pthread_create(&t, NULL, th_wait, &w), 0);
		sleep_ms(30);
		CHECK_EQ(atomic_load(&w.done), 0);
		CHECK_EQ(S->close(ch), 0);
		CHECK_EQ(pthread_join(t, NULL), 0);
		CHECK_EQ(w.rc, -EPIPE);
		if (send) { /* the refused send left nothing */
			CHECK_EQ(S->recv(ch, &v), 0);
			CHECK_EQ(v, 5);
		}
		CHECK_EQ(S->recv(ch, &v), -EPIPE);
		S->destroy(ch);
	}
}

#define ITEMS 50000

struct run {
	void *ch;
	uint64_t accepted, received;
	uint64_t close_at; /* the receiver closes after this many (0: the sender closes) */
	int bad;
};

static void *th_sender(void *p)
{
	struct run *r = p;
	int rc = 0;

	for (uint64_t v = 0; r->close_at || v < ITEMS; v++) {
		switch (v % 3) {
		case 0:
			rc = S->send(r->ch, &v);
			break;
		case 1:
			while ((rc = S->try_send(r->ch, &v)) == -EAGAIN) {
				sched_yield();
			}
			break;
		default:
			while ((rc = S->send_until(r->ch, &v, in_ms(1))) == -ETIMEDOUT) {
			}
		}
		if (rc)
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

static void *th_receiver(void *p)
{
	struct run *r = p;
	uint64_t v;
	int rc;

	for (;;) {
		switch (r->received % 3) {
		case 0:
			rc = S->recv(r->ch, &v);
			break;
		case 1:
			while ((rc = S->try_recv(r->ch, &v)) == -EAGAIN) {
				sched_yield();
			}
			break;
		default:
			while ((rc = S->recv_until(r->ch, &v, in_ms(1))) == -ETIMEDOUT) {
			}
		}
		if (rc)
			break;
		if (v != r->received)
			r->bad = 1; /* out of order, lost or invented */
		r->received++;
		if (r->close_at && r->received == r->close_at)
			CHECK_EQ(S->close(r->ch), 0);
	}
	CHECK_EQ(rc, -EPIPE);
	return NULL;
}

/* exactly once and in order; then a close racing the sender */
static void s_threads(void)
{
	static const size_t caps[] = { 1, 3, 1024 };

	for (size_t ci = 0; ci < 3; ci++) {
		for (int race = 0; race < 2; race++) {
			struct run r = { .ch = mk(8, caps[ci]), .close_at = race ? 12345 : 0 };
			pthread_t a, b;

			CHECK_EQ(pthread_create(&b, NULL, th_receiver, &r), 0);
			CHECK_EQ(pthread_create(&a, NULL, th_sender, &r), 0);
			CHECK_EQ(pthread_join(a, NULL), 0);
			CHECK_EQ(pthread_join(b, NULL), 0);
			CHECK_EQ(r.bad, 0);
			CHECK_EQ(r.accepted, r.received);
			if (!race)
				CHECK_EQ(r.received, ITEMS);
			else
				CHECK(r.received >= r.close_at);
			S->destroy(r.ch);
		}
	}
}

static void run_all(void)
{
	RUN(s_fifo);
	RUN(s_sizes_and_args);
	RUN(s_deadlines);
	RUN(s_close);
	RUN(s_close_wakes);
	RUN(s_threads);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const struct chan_strategy *const *lists[] = { chan_strategies_spsc, chan_strategies };
	unsigned n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int l = 0; l < 2; l++) {
		for (const struct chan_strategy *const *s = lists[l]; *s; s++) {
			if (only && strcmp(only, (*s)->name))
				continue;
			S = *s;
			test_watchdog(120);
			fprintf(stderr, "strategy %s:\n", S->name);
			run_all();
			n++;
		}
	}
	if (!n) {
		fprintf(stderr, "test_spsc: no strategy%s%s\n", only ? " named " : "", only ? only : "");
		return only ? 2 : 0;
	}
	printf("test_spsc: passed on %u strategies\n", n);
	return 0;
}
