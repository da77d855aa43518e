/* tests/stress/stress_chan.c: channel stress, run on every strategy in
 * chan_strategies[] that has the capabilities a sub-test needs.
 *
 * Sub-tests (each prints one line per strategy and configuration):
 *   matrix    exactly-once and FIFO per producer over producers x consumers
 *             in {1,2,4,8}^2 and capacities {0,1,3,1024}; threads mix
 *             blocking, try-then-block and short-deadline calls
 *   close     close while senders are blocked, while receivers are
 *             blocked, and racing both: nothing accepted is lost, nothing
 *             refused is delivered, everyone ends with -EPIPE
 *   deadline  send_until / recv_until with very short deadlines racing each
 *             other: a send that returned 0 is received exactly once, one
 *             that timed out never; then no ghost waiter is left behind
 *   lin       send followed by try_recv on a channel with capacity >= the
 *             thread count always succeeds
 *   chain     1000 threads passing values along unbuffered channels
 *   many      send_many / recv_many exactly-once, FIFO per producer
 *
 * Elements are 8 bytes: a magic tag, the producer id and a sequence number.
 * The summary line's items: elements the ledger saw received exactly once
 * (every sub-test but chain), and chain's values, each counted once for
 * its trip through the whole chain.
 *
 * Usage: stress_chan [size] [strategy] [tests]. size (default 1, may be
 * fractional) multiplies every item count; builds with ThreadSanitizer or
 * AddressSanitizer divide the counts by 10. A size of 100 or more runs for
 * the better part of an hour. strategy ("all" or empty: every one) restricts
 * the run to one name; tests (e.g. "close,chain") to those sub-tests.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h); the last line is "stress_chan: items moved N
 * lost 0".
 */
#include <errno.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include "stress.h"

/* ---- matrix: exactly once, FIFO per producer --------------------------- */

struct mx {
	const struct chan_strategy *s;
	void *ch;
	struct ledger led;
	uint64_t per;
	unsigned mode_shift;
};

struct mx_worker {
	struct mx *m;
	unsigned id;
	uint64_t count;
	pthread_t t;
};

/* modes: 0 blocking, 1 try then block, 2 short deadlines retried, 3 blocking */
static void *mx_producer(void *arg)
{
	struct mx_worker *w = arg;
	const struct chan_strategy *s = w->m->s;
	unsigned mode = (w->id + w->m->mode_shift) % 4;
	uint64_t r = seed_for(w->id, 1);

	for (uint64_t q = 0; q < w->m->per; q++) {
		uint64_t item = item_make(w->id, q);
		int rc;

		if (mode == 1) {
			rc = s->try_send(w->m->ch, &item);
			if (rc == -EAGAIN)
				rc = s->send(w->m->ch, &item);
		} else if (mode == 2) {
			while ((rc = s->send_until(w->m->ch, &item, short_deadline(&r))) ==
			       -ETIMEDOUT) {
			}
		} else {
			rc = s->send(w->m->ch, &item);
		}
		if (rc != 0)
			fail("producer %u send seq %" PRIu64 ": %d", w->id, q, rc);
		w->count++;
	}
	return NULL;
}

static void *mx_consumer(void *arg)
{
	struct mx_worker *w = arg;
	const struct chan_strategy *s = w->m->s;
	unsigned mode = (w->id + w->m->mode_shift + 1) % 4;
	int64_t *last = last_new(w->m->led.nprod);
	uint64_t r = seed_for(w->id, 2);
	uint64_t item;
	int rc;

	for (;;) {
		if (mode == 1) {
			rc = s->try_recv(w->m->ch, &item);
			if (rc == -EAGAIN)
				rc = s->recv(w->m->ch, &item);
		} else if (mode == 2) {
			while ((rc = s->recv_until(w->m->ch, &item, short_deadline(&r))) ==
			       -ETIMEDOUT) {
			}
		} else {
			rc = s->recv(w->m->ch, &item);
		}
		if (rc == -EPIPE)
			break;
		if (rc != 0)
			fail("consumer %u recv: %d", w->id, rc);
		ledger_take(&w->m->led, item, last);
		w->count++;
	}
	/* closed and drained stays so */
	CHECK_EQ(s->recv(w->m->ch, &item), -EPIPE);
	CHECK_EQ(s->try_recv(w->m->ch, &item), -EPIPE);
	free(last);
	return NULL;
}

/* Run np producers and nc consumers (threads prod and cons) over m->ch,
 * created by the caller; close it once the producers are done. Checks that
 * every producer sent m->per items and each arrived exactly once; returns
 * the number sent. */
static uint64_t mx_run(struct mx *m, unsigned np, unsigned nc, void *(*prod)(void *),
		       void *(*cons)(void *))
{
	struct mx_worker *pw = xcalloc(np, sizeof *pw), *cw = xcalloc(nc, sizeof *cw);
	uint64_t sent = 0, got = 0;

	for (unsigned i = 0; i < nc; i++) {
		cw[i] = (struct mx_worker){ .m = m, .id = i };
		spawn(&cw[i].t, cons, &cw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		pw[i] = (struct mx_worker){ .m = m, .id = i };
		spawn(&pw[i].t, prod, &pw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		join(pw[i].t);
		sent += pw[i].count;
	}
	CHECK_EQ(m->s->close(m->ch), 0);
	for (unsigned i = 0; i < nc; i++) {
		join(cw[i].t);
		got += cw[i].count;
	}
	CHECK_EQ(sent, (uint64_t)np * m->per);
	CHECK_EQ(got, sent);
	for (unsigned i = 0; i < np; i++)
		ledger_expect_prefix(&m->led, i, m->per);
	free(pw);
	free(cw);
	return sent;
}

static void mx_cell(const struct chan_strategy *s, unsigned np, unsigned nc, size_t cap,
		    uint64_t items, unsigned shift)
{
	struct mx m = { .s = s, .mode_shift = shift };
	uint64_t sent, item = 0;
	int64_t t0 = now_ns();

	snprintf(g_ctx, sizeof g_ctx, "%s matrix P=%u C=%u cap=%zu", s->name, np, nc, cap);
	m.per = (items + np - 1) / np;
	CHECK_EQ(s->create(&m.ch, sizeof(uint64_t), cap), 0);
	ledger_init(&m.led, np, m.per);
	sent = mx_run(&m, np, nc, mx_producer, mx_consumer);
	CHECK_EQ(atomic_load(&m.led.received), sent);
	CHECK_EQ(s->close(m.ch), -EPIPE);
	CHECK_EQ(s->send(m.ch, &item), -EPIPE);
	CHECK_EQ(s->try_send(m.ch, &item), -EPIPE);
	CHECK_EQ(s->len(m.ch), 0);
	s->destroy(m.ch);
	ledger_done(&m.led);
	report(s, "matrix", t0, "P=%u C=%u cap=%-4zu items=%" PRIu64 " ok", np, nc, cap, sent);
}

static void test_matrix(const struct chan_strategy *s)
{
	static const unsigned nthr[] = { 1, 2, 4, 8 };
	static const size_t caps[] = { 0, 1, 3, 1024 };
	uint64_t items = scaled(20000, 200);
	unsigned shift = 0;

	for (size_t c = 0; c < 4; c++) {
		if (caps[c] == 0 && !has(s, CHAN_CAP_UNBUFFERED)) {
			printf("stress_chan [%s] matrix    cap=0 skipped (no unbuffered)\n",
			       s->name);
			continue;
		}
		for (size_t p = 0; p < 4; p++) {
			for (size_t q = 0; q < 4; q++) {
				if ((nthr[p] > 1 || nthr[q] > 1) && !has(s, CHAN_CAP_MPMC))
					continue;
				arm(120);
				mx_cell(s, nthr[p], nthr[q], caps[c], items, shift++);
			}
		}
	}
}

/* ---- close while blocked ------------------------------------------------ */

struct cl {
	const struct chan_strategy *s;
	void *ch;
	struct ledger led;
	atomic_uint started;
	atomic_ullong recv_count;
	uint64_t close_at; /* racing variant: the receiver that takes this many closes */
	atomic_int closed_by_recv;
	bool soft_limit; /* senders stop quietly at led.per instead of failing */
};

struct cl_worker {
	struct cl *c;
	unsigned id;
	uint64_t ok;
	pthread_t t;
};

/* Send seq 0, 1, ... until the channel is closed. */
static void *cl_sender(void *arg)
{
	struct cl_worker *w = arg;
	const struct chan_strategy *s = w->c->s;

	atomic_fetch_add(&w->c->started, 1);
	for (uint64_t q = 0;; q++) {
		uint64_t item = item_make(w->id, q);
		int rc;

		if (q >= w->c->led.per) {
			if (w->c->soft_limit)
				return NULL;
			fail("sender %u: more sends accepted than the test allows", w->id);
		}
		rc = s->send(w->c->ch, &item);
		if (rc == -EPIPE)
			break;
		if (rc != 0)
			fail("sender %u: send returned %d", w->id, rc);
		w->ok++;
	}
	CHECK_EQ(s->send(w->c->ch, &(uint64_t){ 0 }), -EPIPE);
	return NULL;
}

static void *cl_receiver(void *arg)
{
	struct cl_worker *w = arg;
	const struct chan_strategy *s = w->c->s;
	int64_t *last = last_new(w->c->led.nprod);
	uint64_t item;
	int rc;

	atomic_fetch_add(&w->c->started, 1);
	while ((rc = s->recv(w->c->ch, &item)) == 0) {
		ledger_take(&w->c->led, item, last);
		w->ok++;
		if (atomic_fetch_add(&w->c->recv_count, 1) + 1 == w->c->close_at) {
			CHECK_EQ(s->close(w->c->ch), 0);
			atomic_store(&w->c->closed_by_recv, 1);
		}
	}
	if (rc != -EPIPE)
		fail("receiver %u: recv returned %d", w->id, rc);
	free(last);
	return NULL;
}

static void wait_started(struct cl *c, unsigned n)
{
	while (atomic_load(&c->started) < n)
		sleep_ns(50000);
}

/* Senders block (channel full or nobody receiving), then close: each gets
 * -EPIPE; what was accepted is drained afterwards, nothing else. */
static uint64_t cl_blocked_senders(const struct chan_strategy *s, size_t cap, unsigned ns,
				   uint64_t *r)
{
	struct cl c = { .s = s };
	struct cl_worker *w = xcalloc(ns, sizeof *w);
	int64_t *last = last_new(ns);
	uint64_t ok = 0, drained = 0, item;
	int rc;

	CHECK_EQ(s->create(&c.ch, sizeof(uint64_t), cap), 0);
	ledger_init(&c.led, ns, cap + 2);
	for (unsigned i = 0; i < ns; i++) {
		w[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&w[i].t, cl_sender, &w[i]);
	}
	wait_started(&c, ns);
	while (s->len(c.ch) < cap)
		sleep_ns(20000);
	sleep_ns((int64_t)(rnd(r) % 300000));
	CHECK_EQ(s->close(c.ch), 0);
	for (unsigned i = 0; i < ns; i++) {
		join(w[i].t);
		ok += w[i].ok;
	}
	/* nobody received: exactly the buffer was accepted */
	CHECK_EQ(ok, cap);
	while ((rc = s->recv(c.ch, &item)) == 0) {
		ledger_take(&c.led, item, last);
		drained++;
	}
	CHECK_EQ(rc, -EPIPE);
	CHECK_EQ(drained, ok);
	for (unsigned i = 0; i < ns; i++)
		ledger_expect_prefix(&c.led, i, w[i].ok);
	s->destroy(c.ch);
	ledger_done(&c.led);
	free(last);
	free(w);
	return ok;
}

/* Receivers block on an empty channel; k items are sent to them, then the
 * channel is closed: they get exactly those, then -EPIPE. */
static void cl_blocked_receivers(const struct chan_strategy *s, size_t cap, unsigned nr,
				 uint64_t *r)
{
	struct cl c = { .s = s };
	struct cl_worker *w = xcalloc(nr, sizeof *w);
	uint64_t k = rnd(r) % 8, got = 0;

	CHECK_EQ(s->create(&c.ch, sizeof(uint64_t), cap), 0);
	ledger_init(&c.led, 1, k + 1);
	for (unsigned i = 0; i < nr; i++) {
		w[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&w[i].t, cl_receiver, &w[i]);
	}
	wait_started(&c, nr);
	sleep_ns((int64_t)(rnd(r) % 200000));
	for (uint64_t q = 0; q < k; q++)
		CHECK_EQ(s->send(c.ch, &(uint64_t){ item_make(0, q) }), 0);
	CHECK_EQ(s->close(c.ch), 0);
	for (unsigned i = 0; i < nr; i++) {
		join(w[i].t);
		got += w[i].ok;
	}
	CHECK_EQ(got, k);
	ledger_expect_prefix(&c.led, 0, k);
	s->destroy(c.ch);
	ledger_done(&c.led);
	free(w);
}

/* Senders and receivers run; a receiver closes the channel after a random
 * number of items. Accepted sends == received items, per sender a prefix. */
static uint64_t cl_race(const struct chan_strategy *s, size_t cap, unsigned ns, unsigned nr,
			uint64_t per, uint64_t *r)
{
	struct cl c = { .s = s, .soft_limit = true };
	struct cl_worker *sw = xcalloc(ns, sizeof *sw), *rw = xcalloc(nr, sizeof *rw);
	uint64_t ok = 0, got = 0;

	CHECK_EQ(s->create(&c.ch, sizeof(uint64_t), cap), 0);
	/* each sender alone could feed close_at (<= per) receives */
	ledger_init(&c.led, ns, 2 * per + cap);
	c.close_at = 1 + rnd(r) % per;
	for (unsigned i = 0; i < nr; i++) {
		rw[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&rw[i].t, cl_receiver, &rw[i]);
	}
	for (unsigned i = 0; i < ns; i++) {
		sw[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&sw[i].t, cl_sender, &sw[i]);
	}
	for (unsigned i = 0; i < ns; i++) {
		join(sw[i].t);
		ok += sw[i].ok;
	}
	for (unsigned i = 0; i < nr; i++) {
		join(rw[i].t);
		got += rw[i].ok;
	}
	CHECK(atomic_load(&c.closed_by_recv));
	CHECK_EQ(got, ok);
	CHECK(got >= c.close_at);
	for (unsigned i = 0; i < ns; i++)
		ledger_expect_prefix(&c.led, i, sw[i].ok);
	s->destroy(c.ch);
	ledger_done(&c.led);
	free(sw);
	free(rw);
	return ok;
}

static void test_close(const struct chan_strategy *s)
{
	static const size_t caps[] = { 0, 1, 3, 1024 };
	uint64_t rounds = scaled(60, 4), r = seed_for(3, 3);
	bool mpmc = has(s, CHAN_CAP_MPMC);

	for (size_t ci = 0; ci < 4; ci++) {
		size_t cap = caps[ci];
		uint64_t acc = 0, ok = 0;
		int64_t t0 = now_ns();

		if (cap == 0 && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu", s->name, cap);
		for (uint64_t i = 0; i < rounds; i++) {
			unsigned n1 = mpmc ? 1 + (unsigned)(rnd(&r) % 4) : 1;
			unsigned n2 = mpmc ? 1 + (unsigned)(rnd(&r) % 4) : 1;

			snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu blocked-senders S=%u",
				 s->name, cap, n1);
			acc += cl_blocked_senders(s, cap, n1, &r);
			snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu blocked-receivers R=%u",
				 s->name, cap, n2);
			cl_blocked_receivers(s, cap, n2, &r);
			snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu race S=%u R=%u", s->name,
				 cap, n1, n2);
			ok += cl_race(s, cap, n1, n2, 2000, &r);
		}
		report(s, "close", t0,
		       "cap=%-4zu rounds=%" PRIu64 " blocked-accepted=%" PRIu64
		       " race-accepted=%" PRIu64 " ok",
		       cap, rounds, acc, ok);
	}
}

/* ---- deadlines racing --------------------------------------------------- */

struct dl {
	const struct chan_strategy *s;
	void *ch;
	struct ledger led;
	uint64_t per;
	atomic_int stop;
};

static void *dl_sender(void *arg)
{
	struct dl_worker *w = arg;
	const struct chan_strategy *s = w->d->s;
	uint64_t r = seed_for(w->id, 4);

	for (uint64_t q = 0; q < w->d->per; q++) {
		uint64_t item = item_make(w->id, q);
		int rc = s->send_until(w->d->ch, &item, short_deadline(&r));

		if (rc == 0) {
			w->ok[q] = 1;
			w->n_ok++;
		} else if (rc == -ETIMEDOUT) {
			w->n_timeout++;
		} else {
			fail("send_until seq %" PRIu64 ": %d", q, rc);
		}
	}
	return NULL;
}

static void *dl_receiver(void *arg)
{
	struct dl_worker *w = arg;
	const struct chan_strategy *s = w->d->s;
	int64_t *last = last_new(w->d->led.nprod);
	uint64_t r = seed_for(w->id, 5), item;

	while (!atomic_load(&w->d->stop)) {
		int rc = s->recv_until(w->d->ch, &item, short_deadline(&r));

		if (rc == 0) {
			ledger_take(&w->d->led, item, last);
			w->n_ok++;
		} else if (rc == -ETIMEDOUT) {
			w->n_timeout++;
		} else {
			fail("recv_until: %d", rc);
		}
	}
	free(last);
	return NULL;
}

/* After a storm of timeouts nobody is waiting: try calls see an idle
 * channel, and a blocking pair of calls meets. */
static void check_no_ghost(const struct chan_strategy *s, void *ch, size_t cap)
{
	struct echo e = { .s = s, .ch = ch, .n = 200 };
	uint64_t v = 0;

	CHECK_EQ(s->len(ch), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(s->try_recv(ch, &v), -EAGAIN);
	if (cap == 0) {
		/* a ghost receiver would swallow this */
		for (int i = 0; i < 3; i++)
			CHECK_EQ(s->try_send(ch, &v), -EAGAIN);
		CHECK_EQ(s->send_until(ch, &v, now_ns() + 1000), -ETIMEDOUT);
		CHECK_EQ(s->recv_until(ch, &v, now_ns() + 1000), -ETIMEDOUT);
	} else {
		size_t n = cap < 64 ? cap : 64;

		for (size_t i = 0; i < n; i++)
			CHECK_EQ(s->try_send(ch, &(uint64_t){ 1000 + i }), 0);
		if (n == cap)
			CHECK_EQ(s->try_send(ch, &v), -EAGAIN);
		for (size_t i = 0; i < n; i++) {
			CHECK_EQ(s->try_recv(ch, &v), 0);
			CHECK_EQ(v, 1000 + i);
		}
		CHECK_EQ(s->try_recv(ch, &v), -EAGAIN);
	}
	/* blocking pairs still meet, in both directions */
	echo_start(&e);
	for (unsigned i = 0; i < e.n; i++) {
		v = 7 * i;
		CHECK_EQ(s->send(ch, &v), 0);
		CHECK_EQ(s->recv(e.to_main, &v), 0);
		CHECK_EQ(v, 7 * i + 1);
		v = 3 * i;
		CHECK_EQ(s->send(e.to_echo, &v), 0);
		CHECK_EQ(s->recv(ch, &v), 0);
		CHECK_EQ(v, 3 * i + 1);
		CHECK_EQ(s->send(e.to_echo, &v), 0);
	}
	echo_stop(&e);
	CHECK_EQ(s->len(ch), 0);
}

static void test_deadline(const struct chan_strategy *s)
{
	static const size_t caps[] = { 0, 1, 3, 1024 };
	bool mpmc = has(s, CHAN_CAP_MPMC);
	unsigned ns = mpmc ? 4 : 1, nr = mpmc ? 3 : 1;

	if (!s->send_until || !s->recv_until) {
		printf("stress_chan [%s] deadline  skipped (no _until)\n", s->name);
		return;
	}
	for (size_t ci = 0; ci < 4; ci++) {
		struct dl d = { .s = s, .per = scaled(4000, 100) };
		struct dl_worker *sw;
		struct dl_counts n;
		int64_t *last;
		size_t cap = caps[ci];
		int64_t t0 = now_ns();
		uint64_t item;
		int rc;

		if (cap == 0 && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "%s deadline cap=%zu S=%u R=%u", s->name, cap, ns,
			 nr);
		CHECK_EQ(s->create(&d.ch, sizeof(uint64_t), cap), 0);
		ledger_init(&d.led, ns, d.per);
		sw = dl_run(&d, ns, nr, d.per, &d.stop, dl_sender, dl_receiver, &n);
		/* what is still buffered was accepted too */
		last = last_new(ns);
		while ((rc = s->try_recv(d.ch, &item)) == 0)
			ledger_take(&d.led, item, last);
		CHECK_EQ(rc, -EAGAIN);
		free(last);
		dl_check(&d.led, sw, ns, n.ok, "send returned 0", "send timed out");
		check_no_ghost(s, d.ch, cap);
		s->destroy(d.ch);
		ledger_done(&d.led);
		dl_free(sw, ns);
		report(s, "deadline", t0,
		       "cap=%-4zu S=%u R=%u sent=%" PRIu64 " send-timeouts=%" PRIu64
		       " recv-timeouts=%" PRIu64 " ok",
		       cap, ns, nr, n.ok, n.tmo, n.rtmo);
	}
}

/* ---- send then try_recv (linearizability) ------------------------------- */

struct lin {
	const struct chan_strategy *s;
	void *ch;
	struct ledger led;
	uint64_t per;
};

struct lin_worker {
	struct lin *l;
	unsigned id;
	pthread_t t;
};

static void *lin_thread(void *arg)
{
	struct lin_worker *w = arg;
	const struct chan_strategy *s = w->l->s;
	int64_t *last = last_new(w->l->led.nprod);

	for (uint64_t q = 0; q < w->l->per; q++) {
		uint64_t item = item_make(w->id, q), got;
		int rc;

		CHECK_EQ(s->send(w->l->ch, &item), 0);
		rc = s->try_recv(w->l->ch, &got);
		if (rc != 0)
			fail("thread %u: try_recv after a completed send returned %d (seq %" PRIu64
			     ")",
			     w->id, rc, q);
		ledger_take(&w->l->led, got, last);
	}
	free(last);
	return NULL;
}

static void test_lin(const struct chan_strategy *s)
{
	static const unsigned nthr[] = { 1, 2, 4, 8 };

	for (size_t k = 0; k < 4; k++) {
		unsigned n = nthr[k];
		struct lin l = { .s = s, .per = scaled(20000, 200) };
		struct lin_worker *w = xcalloc(n, sizeof *w);
		int64_t t0 = now_ns();
		uint64_t v;

		if (n > 1 && !has(s, CHAN_CAP_MPMC))
			break;
		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "%s lin T=%u cap=%u", s->name, n, n);
		CHECK_EQ(s->create(&l.ch, sizeof(uint64_t), n), 0);
		ledger_init(&l.led, n, l.per);
		for (unsigned i = 0; i < n; i++) {
			w[i] = (struct lin_worker){ .l = &l, .id = i };
			spawn(&w[i].t, lin_thread, &w[i]);
		}
		for (unsigned i = 0; i < n; i++)
			join(w[i].t);
		CHECK_EQ(s->try_recv(l.ch, &v), -EAGAIN);
		CHECK_EQ(s->len(l.ch), 0);
		for (unsigned i = 0; i < n; i++)
			ledger_expect_prefix(&l.led, i, l.per);
		s->destroy(l.ch);
		ledger_done(&l.led);
		free(w);
		report(s, "lin", t0, "T=%u cap=%u pairs=%" PRIu64 " ok", n, n, l.per * n);
	}
}

/* ---- a chain of 1000 threads ------------------------------------------- */

#define CHAIN_LEN 1000

struct chain {
	const struct chan_strategy *s;
	void **ch; /* CHAIN_LEN + 1 channels */
	uint64_t values;
};

struct chain_link {
	struct chain *c;
	unsigned i;
};

static void *chain_thread(void *arg)
{
	struct chain_link *k = arg;
	const struct chan_strategy *s = k->c->s;
	uint64_t v;
	int rc;

	while ((rc = s->recv(k->c->ch[k->i], &v)) == 0) {
		v++;
		CHECK_EQ(s->send(k->c->ch[k->i + 1], &v), 0);
	}
	CHECK_EQ(rc, -EPIPE);
	CHECK_EQ(s->close(k->c->ch[k->i + 1]), 0);
	return NULL;
}

static void *chain_feeder(void *arg)
{
	struct chain *c = arg;

	for (uint64_t j = 0; j < c->values; j++)
		CHECK_EQ(c->s->send(c->ch[0], &(uint64_t){ j * 1000000 }), 0);
	CHECK_EQ(c->s->close(c->ch[0]), 0);
	return NULL;
}

static void test_chain(const struct chan_strategy *s)
{
	struct chain c = { .s = s, .values = scaled(100, 3) };
	struct chain_link *links = xcalloc(CHAIN_LEN, sizeof *links);
	pthread_t *t = xcalloc(CHAIN_LEN, sizeof *t), feeder;
	size_t cap = has(s, CHAN_CAP_UNBUFFERED) ? 0 : 1;
	size_t stack = STRESS_SANITIZED ? 256 * 1024 : 64 * 1024;
	int64_t t0 = now_ns();
	uint64_t v, j = 0;
	int rc;

	if (!has(s, CHAN_CAP_BLOCKING)) {
		printf("stress_chan [%s] chain     skipped (spinning strategy)\n", s->name);
		free(links);
		free(t);
		return;
	}
	arm(180);
	snprintf(g_ctx, sizeof g_ctx, "%s chain of %d cap=%zu", s->name, CHAIN_LEN, cap);
	c.ch = xcalloc(CHAIN_LEN + 1, sizeof *c.ch);
	for (unsigned i = 0; i <= CHAIN_LEN; i++)
		CHECK_EQ(s->create(&c.ch[i], sizeof(uint64_t), cap), 0);
	for (unsigned i = 0; i < CHAIN_LEN; i++) {
		links[i] = (struct chain_link){ .c = &c, .i = i };
		spawn_stack(&t[i], stack, chain_thread, &links[i]);
	}
	spawn(&feeder, chain_feeder, &c);
	while ((rc = s->recv(c.ch[CHAIN_LEN], &v)) == 0) {
		if (v != j * 1000000 + CHAIN_LEN)
			fail("chain: value %" PRIu64 " arrived as %" PRIu64 ", want %" PRIu64, j, v,
			     j * 1000000 + CHAIN_LEN);
		j++;
	}
	CHECK_EQ(rc, -EPIPE);
	CHECK_EQ(j, c.values);
	stress_moved(j); /* each value once through all the links, in order */
	join(feeder);
	for (unsigned i = 0; i < CHAIN_LEN; i++)
		join(t[i]);
	for (unsigned i = 0; i <= CHAIN_LEN; i++)
		s->destroy(c.ch[i]);
	free(c.ch);
	free(links);
	free(t);
	report(s, "chain", t0, "threads=%d cap=%zu values=%" PRIu64 " ok", CHAIN_LEN, cap,
	       c.values);
}

/* ---- send_many / recv_many ---------------------------------------------- */

#define MANY_MAX 64

static void *many_producer(void *arg)
{
	struct mx_worker *w = arg;
	const struct chan_strategy *s = w->m->s;
	uint64_t r = seed_for(w->id, 6), buf[MANY_MAX];
	uint64_t q = 0;

	while (q < w->m->per) {
		size_t n = 1 + rnd(&r) % MANY_MAX;
		long rc;

		if (n > w->m->per - q)
			n = (size_t)(w->m->per - q);
		for (size_t i = 0; i < n; i++)
			buf[i] = item_make(w->id, q + i);
		if (w->id % 3 == 2) {
			rc = s->send(w->m->ch, buf) == 0 ? 1 : -1;
		} else {
			rc = s->send_many(w->m->ch, buf, n);
		}
		if (rc < 1 || (size_t)rc > n)
			fail("producer %u: send_many(%zu) returned %ld", w->id, n, rc);
		q += (uint64_t)rc;
		w->count += (uint64_t)rc;
	}
	return NULL;
}

static void *many_consumer(void *arg)
{
	struct mx_worker *w = arg;
	const struct chan_strategy *s = w->m->s;
	int64_t *last = last_new(w->m->led.nprod);
	uint64_t r = seed_for(w->id, 7), buf[MANY_MAX];

	for (;;) {
		size_t max = 1 + rnd(&r) % MANY_MAX;
		long rc;

		if (w->id % 3 == 2) {
			int e = s->recv(w->m->ch, buf);

			rc = e == 0 ? 1 : e;
		} else {
			rc = s->recv_many(w->m->ch, buf, max);
		}
		if (rc == -EPIPE)
			break;
		if (rc < 1 || (size_t)rc > max)
			fail("consumer %u: recv_many(%zu) returned %ld", w->id, max, rc);
		for (long i = 0; i < rc; i++)
			ledger_take(&w->m->led, buf[i], last);
		w->count += (uint64_t)rc;
	}
	free(last);
	return NULL;
}

static void test_many(const struct chan_strategy *s)
{
	static const unsigned shapes[][2] = { { 1, 1 }, { 2, 2 }, { 4, 4 }, { 4, 1 }, { 1, 4 } };
	static const size_t caps[] = { 0, 1, 3, 1024 };

	if (!s->send_many || !s->recv_many) {
		printf("stress_chan [%s] many      skipped (no send_many/recv_many)\n", s->name);
		return;
	}
	for (size_t ci = 0; ci < 4; ci++) {
		if (caps[ci] == 0 && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
			unsigned np = shapes[k][0], nc = shapes[k][1];
			struct mx m = { .s = s };
			uint64_t sent;
			int64_t t0 = now_ns();

			if ((np > 1 || nc > 1) && !has(s, CHAN_CAP_MPMC))
				continue;
			arm(120);
			snprintf(g_ctx, sizeof g_ctx, "%s many P=%u C=%u cap=%zu", s->name, np, nc,
				 caps[ci]);
			m.per = scaled(30000, 500) / np;
			CHECK_EQ(s->create(&m.ch, sizeof(uint64_t), caps[ci]), 0);
			ledger_init(&m.led, np, m.per);
			sent = mx_run(&m, np, nc, many_producer, many_consumer);
			CHECK_EQ(s->send_many(m.ch, &(uint64_t){ 0 }, 1), -EPIPE);
			CHECK_EQ(s->recv_many(m.ch, &(uint64_t){ 0 }, 1), -EPIPE);
			s->destroy(m.ch);
			ledger_done(&m.led);
			report(s, "many", t0, "P=%u C=%u cap=%-4zu items=%" PRIu64 " ok", np, nc,
			       caps[ci], sent);
		}
	}
}

/* ---- main --------------------------------------------------------------- */

/* ---- ctx: cancellation racing send_ctx / recv_ctx / select_ctx (weft) ---- */

/* A thread's current context, which the canceller may cancel at any time;
 * the owner swaps in a fresh one after each -ECANCELED. */
struct ctx_slot {
	pthread_mutex_t mu;
	weft_ctx_t *ctx;
};

struct ctx_worker {
	weft_chan_t *ch;
	struct ctx_slot slot;
	struct ledger *led;
	unsigned pid;
	uint64_t per;
	bool use_select;
	uint64_t cancels;
};

static weft_ctx_t *slot_renew(struct ctx_slot *sl)
{
	weft_ctx_t *fresh, *old;

	CHECK_EQ(weft_ctx_with_cancel(&fresh, weft_ctx_background()), 0);
	pthread_mutex_lock(&sl->mu);
	old = sl->ctx;
	sl->ctx = fresh;
	pthread_mutex_unlock(&sl->mu);
	weft_ctx_release(old);
	return fresh;
}

static void *ctx_producer(void *arg)
{
	struct ctx_worker *w = arg;
	weft_ctx_t *ctx = w->slot.ctx;

	for (uint64_t q = 0; q < w->per;) {
		uint64_t item = item_make(w->pid, q);
		int rc;

		if (w->use_select) {
			weft_case_t cs[2] = { { NULL, WEFT_RECV, NULL, 0 }, { w->ch, WEFT_SEND, &item, 0 } };
			rc = weft_select_ctx(cs, 2, ctx);
			if (rc == 1)
				rc = cs[1].err;
		} else {
			rc = weft_chan_send_ctx(w->ch, &item, ctx);
		}
		if (rc == 0) {
			q++; /* accepted: the next one */
		} else {
			/* refused: the same item again, with a fresh context */
			if (rc != -ECANCELED)
				fail("send_ctx: %d", rc);
			w->cancels++;
			ctx = slot_renew(&w->slot);
		}
	}
	return NULL;
}

static void *ctx_consumer(void *arg)
{
	struct ctx_worker *w = arg;
	weft_ctx_t *ctx = w->slot.ctx;
	int64_t *last = last_new(w->led->nprod);

	for (;;) {
		uint64_t item;
		int rc;

		if (w->use_select) {
			weft_case_t cs[2] = { { w->ch, WEFT_RECV, &item, 0 }, { NULL, WEFT_SEND, NULL, 0 } };
			rc = weft_select_ctx(cs, 2, ctx);
			if (rc == 0)
				rc = cs[0].err;
		} else {
			rc = weft_chan_recv_ctx(w->ch, &item, ctx);
		}
		if (rc == 0) {
			ledger_take(w->led, item, last);
		} else if (rc == -EPIPE) {
			break;
		} else {
			if (rc != -ECANCELED)
				fail("recv_ctx: %d", rc);
			w->cancels++;
			ctx = slot_renew(&w->slot);
		}
	}
	free(last);
	return NULL;
}

struct canceller {
	struct ctx_worker *ws;
	unsigned n;
	atomic_int stop;
};

static void *ctx_canceller(void *arg)
{
	struct canceller *c = arg;
	uint64_t r = seed_for(99, c->n);

	while (!atomic_load(&c->stop)) {
		struct ctx_slot *sl = &c->ws[rnd(&r) % c->n].slot;

		pthread_mutex_lock(&sl->mu);
		weft_ctx_cancel(sl->ctx);
		pthread_mutex_unlock(&sl->mu);
		sleep_ns((int64_t)(rnd(&r) % 50000));
	}
	return NULL;
}

/* Every accepted send is received exactly once and in order per producer,
 * every refused send is retried (so all arrive), whatever the cancels hit. */
static void test_ctx(void)
{
	static const size_t caps[] = { 0, 1, 16 };
	enum { NP = 3, NC = 3 };

	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		int64_t t0 = now_ns();
		uint64_t per = scaled(20000, 200);
		struct ctx_worker ws[NP + NC];
		struct ledger led;
		pthread_t th[NP + NC], ct;
		weft_chan_t *ch;
		uint64_t cancels = 0;

		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "ctx cap=%zu", caps[c]);
		CHECK_EQ(weft_chan_create(&ch, 8, caps[c]), 0);
		ledger_init(&led, NP, per);
		for (unsigned i = 0; i < NP + NC; i++) {
			ws[i] = (struct ctx_worker){ .ch = ch, .led = &led, .pid = i, .per = per,
						     .use_select = i & 1 };
			pthread_mutex_init(&ws[i].slot.mu, NULL);
			CHECK_EQ(weft_ctx_with_cancel(&ws[i].slot.ctx, weft_ctx_background()), 0);
		}
		struct canceller cn = { .ws = ws, .n = NP + NC };
		atomic_init(&cn.stop, 0);
		for (unsigned i = 0; i < NP + NC; i++)
			spawn(&th[i], i < NP ? ctx_producer : ctx_consumer, &ws[i]);
		spawn(&ct, ctx_canceller, &cn);
		for (unsigned i = 0; i < NP; i++)
			join(th[i]);
		CHECK_EQ(weft_chan_close(ch), 0);
		for (unsigned i = NP; i < NP + NC; i++)
			join(th[i]);
		atomic_store(&cn.stop, 1);
		join(ct);
		for (unsigned i = 0; i < NP; i++)
			ledger_expect_prefix(&led, i, per);
		for (unsigned i = 0; i < NP + NC; i++) {
			cancels += ws[i].cancels;
			weft_ctx_release(ws[i].slot.ctx);
			pthread_mutex_destroy(&ws[i].slot.mu);
		}
		printf("%s [weft] %-*s cap=%-4zu P=%d C=%d items=%" PRIu64 " cancels=%" PRIu64 " ok  %.0f ms\n",
		       g_prog, g_what_width, "ctx", caps[c], NP, NC, (uint64_t)NP * per, cancels,
		       (now_ns() - t0) / 1e6);
		ledger_done(&led);
		weft_chan_destroy(ch);
	}
}

int main(int argc, char **argv)
{
	unsigned n = 0;

	if (!stress_args(argc, argv, "stress_chan", 9))
		return 2;
	for (const struct chan_strategy *const *sp = chan_strategies; *sp; sp++) {
		const struct chan_strategy *s = *sp;

		if (!want_strategy(s))
			continue;
		n++;
		if (want("matrix"))
			test_matrix(s);
		if (want("close"))
			test_close(s);
		if (want("deadline"))
			test_deadline(s);
		if (want("lin"))
			test_lin(s);
		if (want("chain"))
			test_chain(s);
		if (want("many"))
			test_many(s);
	}
	if ((!g_strategy_name || !strcmp(g_strategy_name, "weft")) && want("ctx"))
		test_ctx();
	return stress_done(n, "no strategy ran");
}
