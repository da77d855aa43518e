/* tests/stress/stress_select.c: select stress, run on every strategy in
 * chan_strategies[] that has select.
 *
 * Sub-tests (each prints one line per strategy and configuration):
 *   fan       producers send into several channels through select (send
 *             cases, disabled NULL cases mixed in), consumers receive
 *             through select over all channels; some threads use plain
 *             calls or select_try on the same channels. Exactly once,
 *             FIFO per producer per channel; close wakes the consumers.
 *   self      a select with a send and a receive case on the same
 *             unbuffered channel never pairs with itself: one selecting
 *             thread against a partner, and several selecting threads
 *             against each other
 *   deadline  select_until with short deadlines on both sides: a send case
 *             that completed is received exactly once, a timed-out select
 *             sent nothing; afterwards no ghost waiter is left behind
 *   close     close wakes every select blocked on it (receive cases and
 *             send cases get err -EPIPE, nothing is delivered), and close
 *             racing active selecting producers loses nothing
 *   nonblock  Go's TestNonblockSelectRace and ...Race2: c1 (capacity 1)
 *             holds a value, c2 is empty; one thread runs select_try over
 *             { recv c1, recv c2 } while another sends to c2 (Race2:
 *             closes c2) and only then takes c1's value. One case is ready
 *             at every instant, so select_try must never say -EAGAIN, nor
 *             select_until with a passed deadline -ETIMEDOUT; and the two
 *             values are taken exactly once between them.
 *
 * Usage: stress_select [size] [strategy] [tests]. size (default 1, may be
 * fractional) multiplies every item count; ThreadSanitizer and
 * AddressSanitizer builds divide the counts by 10. strategy ("all" or
 * empty: every one) restricts the run to one name; tests (e.g. "self,close")
 * to those sub-tests. WEFT_STRESS_SEED=<n> in the environment seeds every
 * random stream from n (tests/common/stress.h); the last line is
 * "stress_select: items moved N lost 0", counting the elements the ledger
 * saw received exactly once (fan, self, deadline, close's race), close's
 * prefilled elements drained in order once its blocked selects woke, and
 * nonblock's values (c1's, and c2's when it is sent one) taken exactly
 * once.
 */
#include <errno.h>
#include <sched.h>

#include "stress.h"

enum { SEND = 1, RECV = 2 };

/* ---- case sets ----------------------------------------------------------- */

#define MAXK 4
#define MAXCASES (2 * MAXK + 4)

/* A case array over k channels, all with operation op, with disabled cases
 * (NULL channel, random op) mixed in; map[i] is the channel index of case
 * i, or -1 for a disabled one. */
struct caseset {
	struct chan_case c[MAXCASES];
	int map[MAXCASES];
	size_t n;
	int junk_send;     /* a disabled SEND case points here */
	uint64_t junk_recv; /* and a disabled RECV case here */
};

static void caseset_build(struct caseset *cs, void *const *ch, unsigned k, int op,
			  void *elems /* RECV: k uint64_t; SEND: one uint64_t */, uint64_t *r)
{
	unsigned nnull = 1 + (unsigned)(rnd(r) % 3), j = 0, total = k + nnull;

	cs->n = 0;
	for (unsigned i = 0; i < total; i++) {
		bool put_null = j == k || (nnull > 0 && rnd(r) % 2 == 0);
		struct chan_case *c = &cs->c[cs->n];

		if (put_null) {
			nnull--;
			c->chan = NULL;
			c->op = rnd(r) % 2 ? SEND : RECV;
			c->elem = c->op == SEND ? (void *)&cs->junk_send : (void *)&cs->junk_recv;
			cs->map[cs->n] = -1;
		} else {
			c->chan = ch[j];
			c->op = op;
			c->elem = op == SEND ? elems : (void *)((uint64_t *)elems + j);
			cs->map[cs->n] = (int)j;
			j++;
		}
		c->err = 12345;
		cs->n++;
	}
	CHECK_EQ(j, k);
}

/* Check what a select returned: an enabled case; returns its channel. */
static int caseset_chosen(struct caseset *cs, int idx, const char *who)
{
	if (idx < 0 || (size_t)idx >= cs->n)
		fail("%s: select returned %d (of %zu cases)", who, idx, cs->n);
	if (cs->map[idx] < 0 || cs->c[idx].chan == NULL)
		fail("%s: select chose disabled case %d", who, idx);
	if (cs->c[idx].err != 0 && cs->c[idx].err != -EPIPE)
		fail("%s: case %d err %d", who, idx, cs->c[idx].err);
	return cs->map[idx];
}

static void caseset_disable_chan(struct caseset *cs, int chan_index)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->map[i] == chan_index)
			cs->c[i].chan = NULL;
}

/* ---- fan: exactly once through select ------------------------------------ */

struct fan {
	const struct chan_strategy *s;
	void *ch[MAXK];
	unsigned k;
	struct ledger led;
	uint64_t per;
};

struct fan_worker {
	struct fan *f;
	unsigned id;
	uint64_t count;
	uint64_t per_chan[MAXK];
	pthread_t t;
};

/* modes: 0 select, 1 select_try then select, 2 plain send/recv, 3 select */
static unsigned fan_mode(const struct fan_worker *w)
{
	unsigned m = w->id % 4;

	if (m == 1 && !w->f->s->select_try)
		m = 0;
	return m;
}

static void *fan_producer(void *arg)
{
	struct fan_worker *w = arg;
	struct fan *f = w->f;
	const struct chan_strategy *s = f->s;
	uint64_t r = seed_for(w->id, 11), val = 0;
	unsigned mode = fan_mode(w);
	struct caseset cs;

	for (uint64_t q = 0; q < f->per; q++) {
		int idx, j;

		val = item_make(w->id, q);
		if (mode == 2) {
			j = (int)(q % f->k);
			CHECK_EQ(s->send(f->ch[j], &val), 0);
			w->per_chan[j]++;
			w->count++;
			continue;
		}
		if (q % 64 == 0)
			caseset_build(&cs, f->ch, f->k, SEND, &val, &r);
		for (size_t i = 0; i < cs.n; i++)
			cs.c[i].err = 12345;
		idx = -EAGAIN;
		if (mode == 1)
			idx = s->select_try(cs.c, cs.n);
		if (idx == -EAGAIN)
			idx = s->select(cs.c, cs.n);
		j = caseset_chosen(&cs, idx, "producer");
		if (cs.c[idx].err != 0)
			fail("producer %u: send case on channel %d: err %d", w->id, j,
			     cs.c[idx].err);
		w->per_chan[j]++;
		w->count++;
	}
	return NULL;
}

static void *fan_consumer(void *arg)
{
	struct fan_worker *w = arg;
	struct fan *f = w->f;
	const struct chan_strategy *s = f->s;
	uint64_t r = seed_for(w->id, 12), buf[MAXK];
	int64_t *last = last_new((size_t)f->led.nprod * f->k);
	unsigned mode = fan_mode(w), open = f->k;
	struct caseset cs;

	if (mode == 2) {
		unsigned j = w->id % f->k;
		int rc;

		while ((rc = s->recv(f->ch[j], &buf[0])) == 0) {
			ledger_take_lane(&f->led, buf[0], last, f->k, j);
			w->per_chan[j]++;
			w->count++;
		}
		CHECK_EQ(rc, -EPIPE);
		free(last);
		return NULL;
	}
	caseset_build(&cs, f->ch, f->k, RECV, buf, &r);
	while (open > 0) {
		int idx = -EAGAIN, j;

		for (size_t i = 0; i < cs.n; i++)
			cs.c[i].err = 12345;
		if (mode == 1)
			idx = s->select_try(cs.c, cs.n);
		if (idx == -EAGAIN)
			idx = s->select(cs.c, cs.n);
		j = caseset_chosen(&cs, idx, "consumer");
		if (cs.c[idx].err == -EPIPE) {
			caseset_disable_chan(&cs, j);
			open--;
			continue;
		}
		ledger_take_lane(&f->led, buf[j], last, f->k, (unsigned)j);
		w->per_chan[j]++;
		w->count++;
	}
	free(last);
	return NULL;
}

static void fan_cell(const struct chan_strategy *s, unsigned np, unsigned nc,
		     const size_t *caps, unsigned k, uint64_t items, uint64_t *r)
{
	struct fan f = { .s = s, .k = k };
	struct fan_worker *pw = xcalloc(np, sizeof *pw), *cw = xcalloc(nc, sizeof *cw);
	uint64_t sent = 0, got = 0, ps[MAXK] = { 0 }, cg[MAXK] = { 0 };
	int64_t t0 = now_ns();
	unsigned order[MAXK];
	char capstr[48];
	int off = 0;

	for (unsigned j = 0; j < k; j++)
		off += snprintf(capstr + off, sizeof capstr - (size_t)off, "%s%zu", j ? "," : "",
				caps[j]);
	snprintf(g_ctx, sizeof g_ctx, "%s fan P=%u C=%u caps=%s", s->name, np, nc, capstr);
	f.per = (items + np - 1) / np;
	for (unsigned j = 0; j < k; j++)
		CHECK_EQ(s->create(&f.ch[j], sizeof(uint64_t), caps[j]), 0);
	ledger_init(&f.led, np, f.per);
	for (unsigned i = 0; i < nc; i++) {
		cw[i] = (struct fan_worker){ .f = &f, .id = i };
		spawn(&cw[i].t, fan_consumer, &cw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		pw[i] = (struct fan_worker){ .f = &f, .id = i };
		spawn(&pw[i].t, fan_producer, &pw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		join(pw[i].t);
		sent += pw[i].count;
		for (unsigned j = 0; j < k; j++)
			ps[j] += pw[i].per_chan[j];
	}
	/* close in a random order while the consumers wait in select */
	shuffle(order, k, r);
	for (unsigned j = 0; j < k; j++)
		CHECK_EQ(s->close(f.ch[order[j]]), 0);
	for (unsigned i = 0; i < nc; i++) {
		join(cw[i].t);
		got += cw[i].count;
		for (unsigned j = 0; j < k; j++)
			cg[j] += cw[i].per_chan[j];
	}
	CHECK_EQ(sent, (uint64_t)np * f.per);
	CHECK_EQ(got, sent);
	for (unsigned j = 0; j < k; j++)
		CHECK_EQ(cg[j], ps[j]);
	for (unsigned i = 0; i < np; i++)
		ledger_expect_prefix(&f.led, i, f.per);
	for (unsigned j = 0; j < k; j++)
		s->destroy(f.ch[j]);
	ledger_done(&f.led);
	free(pw);
	free(cw);
	report(s, "fan", t0, "K=%u P=%u C=%u caps=%-11s items=%" PRIu64 " ok", k, np, nc, capstr,
	       sent);
}

static void test_fan(const struct chan_strategy *s)
{
	static const unsigned shapes[][2] = { { 1, 1 }, { 2, 2 }, { 4, 4 },
					      { 1, 4 }, { 4, 1 }, { 8, 8 } };
	static const size_t capsets[][3] = {
		{ 0, 0, 0 }, { 1, 1, 1 }, { 3, 3, 3 }, { 1024, 1024, 1024 }, { 0, 1, 1024 },
	};
	uint64_t items = scaled(40000, 400), r = seed_for(1, 1);

	for (size_t c = 0; c < sizeof capsets / sizeof capsets[0]; c++) {
		bool unbuf = capsets[c][0] == 0 || capsets[c][1] == 0 || capsets[c][2] == 0;

		if (unbuf && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
			if ((shapes[k][0] > 1 || shapes[k][1] > 1) && !has(s, CHAN_CAP_MPMC))
				continue;
			arm(120);
			fan_cell(s, shapes[k][0], shapes[k][1], capsets[c], 3, items, &r);
		}
	}
	/* one channel: select over a single enabled case plus disabled ones */
	if (has(s, CHAN_CAP_UNBUFFERED | CHAN_CAP_MPMC)) {
		static const size_t c0[1] = { 0 }, c3[1] = { 3 };

		arm(120);
		fan_cell(s, 4, 4, c0, 1, items, &r);
		fan_cell(s, 4, 4, c3, 1, items, &r);
	}
}

/* ---- self: a select never meets itself ----------------------------------- */

struct self {
	const struct chan_strategy *s;
	void *ch;
	unsigned nsel; /* selecting threads: ids 0 .. nsel-1; partner: id nsel */
	uint64_t iters;
	struct ledger led;
	atomic_uint done;
};

struct self_worker {
	struct self *x;
	unsigned id;
	uint64_t sent, got;
	pthread_t t;
};

static void *self_selector(void *arg)
{
	struct self_worker *w = arg;
	struct self *x = w->x;
	const struct chan_strategy *s = x->s;
	int64_t *last = last_new(x->led.nprod);
	uint64_t r = seed_for(w->id, 21), out = 0, in = 0, junk = 0;
	struct chan_case c[4];
	int is = 0, ir = 0;

	for (uint64_t i = 0; i < x->iters; i++) {
		int idx;
		size_t n = 0;

		/* shuffle the order of the two cases, with a disabled one */
		if (rnd(&r) % 2) {
			is = (int)n;
			c[n++] = (struct chan_case){ x->ch, SEND, &out, 12345 };
			c[n++] = (struct chan_case){ NULL, RECV, &junk, 12345 };
			ir = (int)n;
			c[n++] = (struct chan_case){ x->ch, RECV, &in, 12345 };
		} else {
			ir = (int)n;
			c[n++] = (struct chan_case){ x->ch, RECV, &in, 12345 };
			is = (int)n;
			c[n++] = (struct chan_case){ x->ch, SEND, &out, 12345 };
			c[n++] = (struct chan_case){ NULL, SEND, &junk, 12345 };
		}
		out = item_make(w->id, w->sent);
		idx = s->select(c, n);
		if (idx != is && idx != ir)
			fail("selector %u: select returned %d", w->id, idx);
		if (c[idx].err == -EPIPE)
			break;
		if (c[idx].err != 0)
			fail("selector %u: err %d", w->id, c[idx].err);
		if (idx == is) {
			w->sent++;
			continue;
		}
		if (item_pid(in) == w->id)
			fail("selector %u received its own value %#" PRIx64 ": the select met itself",
			     w->id, in);
		ledger_take(&x->led, in, last);
		w->got++;
	}
	atomic_fetch_add(&x->done, 1);
	free(last);
	return NULL;
}

/* The partner: randomly a blocking send or recv, until the channel closes. */
static void *self_partner(void *arg)
{
	struct self_worker *w = arg;
	struct self *x = w->x;
	const struct chan_strategy *s = x->s;
	int64_t *last = last_new(x->led.nprod);
	uint64_t r = seed_for(w->id, 22), v;
	int rc;

	for (;;) {
		if (rnd(&r) % 2) {
			v = item_make(w->id, w->sent);
			rc = s->send(x->ch, &v);
			if (rc == 0)
				w->sent++;
		} else {
			rc = s->recv(x->ch, &v);
			if (rc == 0) {
				if (item_pid(v) == w->id)
					fail("partner received its own value");
				ledger_take(&x->led, v, last);
				w->got++;
			}
		}
		if (rc == -EPIPE)
			break;
		if (rc != 0)
			fail("partner: %d", rc);
	}
	free(last);
	return NULL;
}

static void self_run(const struct chan_strategy *s, unsigned nsel, bool partner)
{
	struct self x = { .s = s, .nsel = nsel, .iters = scaled(100000, 1000) / nsel };
	unsigned nt = nsel + (partner ? 1 : 0);
	struct self_worker *w = xcalloc(nt, sizeof *w);
	uint64_t sent = 0, got = 0;
	int64_t t0 = now_ns();

	snprintf(g_ctx, sizeof g_ctx, "%s self selectors=%u partner=%d", s->name, nsel,
		 partner);
	CHECK_EQ(s->create(&x.ch, sizeof(uint64_t), 0), 0);
	/* a thread sends at most one value per iteration; the partner at most
	 * one per selector iteration, over all selectors */
	ledger_init(&x.led, nt, x.iters * nsel + 1);
	for (unsigned i = 0; i < nt; i++) {
		w[i] = (struct self_worker){ .x = &x, .id = i };
		spawn(&w[i].t, i < nsel ? self_selector : self_partner, &w[i]);
	}
	/* with a partner: close once every selector is done (the partner then
	 * gets -EPIPE); without: once at most one selector is left, which may
	 * wait forever for a peer that will not come */
	while (atomic_load(&x.done) < (partner ? nsel : nsel - 1))
		sleep_ns(200000);
	CHECK_EQ(s->close(x.ch), 0);
	for (unsigned i = 0; i < nt; i++) {
		join(w[i].t);
		sent += w[i].sent;
		got += w[i].got;
	}
	CHECK_EQ(got, sent);
	for (unsigned i = 0; i < nt; i++)
		ledger_expect_prefix(&x.led, i, w[i].sent);
	if (partner && nsel == 1) {
		/* every value the selector sent went to the partner and back */
		CHECK_EQ(w[nsel].got, w[0].sent);
		CHECK_EQ(w[0].got, w[nsel].sent);
	}
	s->destroy(x.ch);
	ledger_done(&x.led);
	report(s, "self", t0, "selectors=%u partner=%s exchanges=%" PRIu64 " ok", nsel,
	       partner ? "yes" : "no", sent);
	free(w);
}

static void test_self(const struct chan_strategy *s)
{
	if (!has(s, CHAN_CAP_UNBUFFERED)) {
		printf("stress_select [%s] self     skipped (no unbuffered)\n", s->name);
		return;
	}
	arm(120);
	self_run(s, 1, true);
	if (!has(s, CHAN_CAP_MPMC))
		return;
	arm(120);
	self_run(s, 2, true);
	arm(120);
	self_run(s, 4, false);
}

/* ---- deadline: select_until racing -------------------------------------- */

#define DLK 2

struct dl {
	const struct chan_strategy *s;
	void *ch[DLK];
	struct ledger led;
	uint64_t per;
	atomic_int stop;
};

static void *dl_sender(void *arg)
{
	struct dl_worker *w = arg;
	struct dl *d = w->d;
	uint64_t r = seed_for(w->id, 31), val = 0;
	struct caseset cs;

	caseset_build(&cs, d->ch, DLK, SEND, &val, &r);
	for (uint64_t q = 0; q < d->per; q++) {
		int idx;

		val = item_make(w->id, q);
		idx = d->s->select_until(cs.c, cs.n, short_deadline(&r));
		if (idx == -ETIMEDOUT) {
			w->n_timeout++;
			continue;
		}
		caseset_chosen(&cs, idx, "sender");
		if (cs.c[idx].err != 0)
			fail("sender %u: err %d", w->id, cs.c[idx].err);
		w->ok[q] = 1;
		w->n_ok++;
	}
	return NULL;
}

/* ids 0, 1: select_until over both channels; id 2: plain recv_until */
static void *dl_receiver(void *arg)
{
	struct dl_worker *w = arg;
	struct dl *d = w->d;
	int64_t *last = last_new((size_t)d->led.nprod * DLK);
	uint64_t r = seed_for(w->id, 32), buf[DLK];
	struct caseset cs;

	caseset_build(&cs, d->ch, DLK, RECV, buf, &r);
	while (!atomic_load(&d->stop)) {
		int idx, j;

		if (w->id == 2) {
			int rc = d->s->recv_until(d->ch[0], &buf[0], short_deadline(&r));

			if (rc == -ETIMEDOUT) {
				w->n_timeout++;
				continue;
			}
			if (rc != 0)
				fail("recv_until: %d", rc);
			ledger_take_lane(&d->led, buf[0], last, DLK, 0);
			w->n_ok++;
			continue;
		}
		idx = d->s->select_until(cs.c, cs.n, short_deadline(&r));
		if (idx == -ETIMEDOUT) {
			w->n_timeout++;
			continue;
		}
		j = caseset_chosen(&cs, idx, "receiver");
		if (cs.c[idx].err != 0)
			fail("receiver %u: err %d", w->id, cs.c[idx].err);
		ledger_take_lane(&d->led, buf[j], last, DLK, (unsigned)j);
		w->n_ok++;
	}
	free(last);
	return NULL;
}

/* Nobody waits any more: idle channels look idle to try calls and to a
 * select, and a select still meets a blocking partner. */
static void check_no_ghost(const struct chan_strategy *s, void *const *ch, const size_t *caps)
{
	uint64_t v = 0, buf[DLK];
	struct chan_case rc[DLK], sc[DLK];

	for (unsigned j = 0; j < DLK; j++) {
		CHECK_EQ(s->len(ch[j]), 0);
		CHECK_EQ(s->try_recv(ch[j], &v), -EAGAIN);
		if (caps[j] == 0)
			CHECK_EQ(s->try_send(ch[j], &v), -EAGAIN);
		rc[j] = (struct chan_case){ ch[j], RECV, &buf[j], 0 };
		sc[j] = (struct chan_case){ ch[j], SEND, &v, 0 };
	}
	if (s->select_try) {
		CHECK_EQ(s->select_try(rc, DLK), -EAGAIN);
		if (caps[0] == 0 && caps[1] == 0)
			CHECK_EQ(s->select_try(sc, DLK), -EAGAIN);
	}
	CHECK_EQ(s->select_until(rc, DLK, now_ns() + 2000), -ETIMEDOUT);
	if (caps[0] == 0 && caps[1] == 0)
		CHECK_EQ(s->select_until(sc, DLK, now_ns() + 2000), -ETIMEDOUT);
	for (unsigned j = 0; j < DLK; j++) {
		struct echo e = { .s = s, .ch = ch[j], .n = 100 };
		struct chan_case one[2];

		echo_start(&e);
		for (unsigned i = 0; i < e.n; i++) {
			int idx;

			/* a select's send case meets a blocking receiver */
			v = 5 * i;
			one[0] = (struct chan_case){ NULL, RECV, &buf[0], 0 };
			one[1] = (struct chan_case){ ch[j], SEND, &v, 0 };
			idx = s->select(one, 2);
			CHECK_EQ(idx, 1);
			CHECK_EQ(one[1].err, 0);
			CHECK_EQ(s->recv(e.to_main, &buf[0]), 0);
			CHECK_EQ(buf[0], 5 * i + 1);
			/* a select's receive case meets a blocking sender */
			v = 3 * i;
			CHECK_EQ(s->send(e.to_echo, &v), 0);
			one[0] = (struct chan_case){ ch[j], RECV, &buf[0], 0 };
			one[1] = (struct chan_case){ NULL, SEND, &v, 0 };
			idx = s->select(one, 2);
			CHECK_EQ(idx, 0);
			CHECK_EQ(one[0].err, 0);
			CHECK_EQ(buf[0], 3 * i + 1);
			CHECK_EQ(s->send(e.to_echo, &v), 0);
		}
		echo_stop(&e);
		CHECK_EQ(s->len(ch[j]), 0);
	}
}

static void test_deadline(const struct chan_strategy *s)
{
	static const size_t capsets[][DLK] = { { 0, 0 }, { 1, 1 }, { 3, 3 }, { 0, 3 } };
	bool mpmc = has(s, CHAN_CAP_MPMC);
	unsigned ns = mpmc ? 3 : 1, nr = mpmc ? 3 : 1;

	if (!s->select_until) {
		printf("stress_select [%s] deadline skipped (no select_until)\n", s->name);
		return;
	}
	for (size_t ci = 0; ci < sizeof capsets / sizeof capsets[0]; ci++) {
		const size_t *caps = capsets[ci];
		struct dl d = { .s = s, .per = scaled(10000, 100) };
		struct dl_worker *sw;
		struct dl_counts n;
		int64_t t0 = now_ns();
		uint64_t item;

		if ((caps[0] == 0 || caps[1] == 0) && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "%s deadline caps=%zu,%zu", s->name, caps[0], caps[1]);
		for (unsigned j = 0; j < DLK; j++)
			CHECK_EQ(s->create(&d.ch[j], sizeof(uint64_t), caps[j]), 0);
		ledger_init(&d.led, ns, d.per);
		sw = dl_run(&d, ns, nr, d.per, &d.stop, dl_sender, dl_receiver, &n);
		for (unsigned j = 0; j < DLK; j++) {
			int rc;

			while ((rc = s->try_recv(d.ch[j], &item)) == 0)
				ledger_take(&d.led, item, NULL);
			CHECK_EQ(rc, -EAGAIN);
		}
		dl_check(&d.led, sw, ns, n.ok, "select sent it", "select timed out");
		check_no_ghost(s, d.ch, caps);
		for (unsigned j = 0; j < DLK; j++)
			s->destroy(d.ch[j]);
		ledger_done(&d.led);
		dl_free(sw, ns);
		report(s, "deadline", t0,
		       "caps=%zu,%zu S=%u R=%u sent=%" PRIu64 " send-timeouts=%" PRIu64
		       " recv-timeouts=%" PRIu64 " ok",
		       caps[0], caps[1], ns, nr, n.ok, n.tmo, n.rtmo);
	}
}

/* ---- close: wakes every select ------------------------------------------- */

#define CLK 3

struct cl {
	const struct chan_strategy *s;
	void *ch[CLK];     /* the receive side: empty */
	void *full[CLK];   /* the send side: full (or unbuffered, nobody receiving) */
	atomic_uint started;
	/* racing variant */
	struct ledger led;
	uint64_t close_at;
	atomic_ullong recv_count;
};

struct cl_worker {
	struct cl *c;
	unsigned id;
	unsigned recv_closed, send_closed;
	uint64_t ok;
	pthread_t t;
};

/* Blocked in a select over receive cases on the empty channels, send cases
 * on the full ones and disabled cases; each close must wake it with the
 * matching case and err -EPIPE. Runs until every case is closed. */
static void *cl_blocked(void *arg)
{
	struct cl_worker *w = arg;
	struct cl *c = w->c;
	uint64_t r = seed_for(w->id, 41), buf[CLK], val = item_make(w->id, 0);
	struct chan_case cs[2 * CLK + 1];
	int kind[2 * CLK + 1]; /* 0 disabled, 1 recv, 2 send */
	size_t n = 0;
	unsigned open;

	for (unsigned j = 0; j < CLK; j++) {
		cs[n] = (struct chan_case){ c->ch[j], RECV, &buf[j], 12345 };
		kind[n++] = 1;
		if (w->id % 2 == 1) {
			cs[n] = (struct chan_case){ c->full[j], SEND, &val, 12345 };
			kind[n++] = 2;
		}
	}
	cs[n] = (struct chan_case){ NULL, rnd(&r) % 2 ? SEND : RECV, &val, 12345 };
	kind[n++] = 0;
	open = (unsigned)n - 1;
	atomic_fetch_add(&c->started, 1);
	while (open > 0) {
		int idx = c->s->select(cs, n);

		if (idx < 0 || (size_t)idx >= n || kind[idx] == 0)
			fail("blocked select %u returned %d", w->id, idx);
		if (cs[idx].err != -EPIPE)
			fail("blocked select %u: case %d completed with err %d on a channel "
			     "nobody else uses",
			     w->id, idx, cs[idx].err);
		if (kind[idx] == 1)
			w->recv_closed++;
		else
			w->send_closed++;
		cs[idx].chan = NULL;
		open--;
	}
	return NULL;
}

static unsigned cl_blocked_round(const struct chan_strategy *s, size_t cap, unsigned nt,
				 uint64_t *r)
{
	unsigned wakes = 0;

	struct cl c = { .s = s };
	struct cl_worker *w = xcalloc(nt, sizeof *w);
	unsigned order[2 * CLK];

	for (unsigned j = 0; j < CLK; j++) {
		CHECK_EQ(s->create(&c.ch[j], sizeof(uint64_t), cap), 0);
		CHECK_EQ(s->create(&c.full[j], sizeof(uint64_t), cap), 0);
		for (size_t i = 0; i < cap; i++)
			CHECK_EQ(s->try_send(c.full[j], &(uint64_t){ 100 * j + i }), 0);
	}
	for (unsigned i = 0; i < nt; i++) {
		w[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&w[i].t, cl_blocked, &w[i]);
	}
	while (atomic_load(&c.started) < nt)
		sleep_ns(50000);
	/* close the six channels in a random order, pausing now and then */
	shuffle(order, 2 * CLK, r);
	for (unsigned j = 0; j < 2 * CLK; j++) {
		unsigned o = order[j];

		if (rnd(r) % 2)
			sleep_ns((int64_t)(rnd(r) % 200000));
		CHECK_EQ(s->close(o < CLK ? c.ch[o] : c.full[o - CLK]), 0);
	}
	for (unsigned i = 0; i < nt; i++) {
		join(w[i].t);
		CHECK_EQ(w[i].recv_closed, CLK);
		CHECK_EQ(w[i].send_closed, i % 2 == 1 ? CLK : 0);
		wakes += w[i].recv_closed + w[i].send_closed;
	}
	/* the blocked sends delivered nothing: exactly the prefill remains */
	for (unsigned j = 0; j < CLK; j++) {
		uint64_t v;
		int rc;

		for (size_t i = 0; i < cap; i++) {
			CHECK_EQ(s->recv(c.full[j], &v), 0);
			CHECK_EQ(v, 100 * j + i);
		}
		CHECK_EQ(s->recv(c.full[j], &v), -EPIPE);
		stress_moved(cap);
		rc = s->recv(c.ch[j], &v);
		CHECK_EQ(rc, -EPIPE);
		s->destroy(c.ch[j]);
		s->destroy(c.full[j]);
	}
	free(w);
	return wakes;
}

/* Producers send seq 0, 1, ... through select over the channels until a
 * send case reports -EPIPE; consumers select over the channels; after a
 * random number of items one consumer closes all channels. */
static void *cl_producer(void *arg)
{
	struct cl_worker *w = arg;
	struct cl *c = w->c;
	uint64_t r = seed_for(w->id, 42), val = 0;
	struct caseset cs;

	caseset_build(&cs, c->ch, CLK, SEND, &val, &r);
	for (uint64_t q = 0; q < c->led.per; q++) {
		int idx;

		val = item_make(w->id, q);
		idx = c->s->select(cs.c, cs.n);
		caseset_chosen(&cs, idx, "producer");
		if (cs.c[idx].err == -EPIPE)
			return NULL;
		w->ok++;
	}
	return NULL; /* limit reached: stop quietly, the close still comes */
}

static void *cl_consumer(void *arg)
{
	struct cl_worker *w = arg;
	struct cl *c = w->c;
	uint64_t r = seed_for(w->id, 43), buf[CLK];
	int64_t *last = last_new((size_t)c->led.nprod * CLK);
	struct caseset cs;
	unsigned open = CLK;

	caseset_build(&cs, c->ch, CLK, RECV, buf, &r);
	while (open > 0) {
		int idx = c->s->select(cs.c, cs.n), j;

		j = caseset_chosen(&cs, idx, "consumer");
		if (cs.c[idx].err == -EPIPE) {
			caseset_disable_chan(&cs, j);
			open--;
			continue;
		}
		ledger_take_lane(&c->led, buf[j], last, CLK, (unsigned)j);
		w->ok++;
		if (atomic_fetch_add(&c->recv_count, 1) + 1 == c->close_at)
			for (unsigned k = 0; k < CLK; k++)
				CHECK_EQ(c->s->close(c->ch[k]), 0);
	}
	free(last);
	return NULL;
}

static uint64_t cl_race_round(const struct chan_strategy *s, size_t cap, unsigned np,
			      unsigned nc, uint64_t *r)
{
	struct cl c = { .s = s };
	struct cl_worker *pw = xcalloc(np, sizeof *pw), *cw = xcalloc(nc, sizeof *cw);
	uint64_t ok = 0, got = 0, per = 1000;

	for (unsigned j = 0; j < CLK; j++)
		CHECK_EQ(s->create(&c.ch[j], sizeof(uint64_t), cap), 0);
	ledger_init(&c.led, np, 2 * per + CLK * cap);
	c.close_at = 1 + rnd(r) % per;
	for (unsigned i = 0; i < nc; i++) {
		cw[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&cw[i].t, cl_consumer, &cw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		pw[i] = (struct cl_worker){ .c = &c, .id = i };
		spawn(&pw[i].t, cl_producer, &pw[i]);
	}
	for (unsigned i = 0; i < np; i++) {
		join(pw[i].t);
		ok += pw[i].ok;
	}
	for (unsigned i = 0; i < nc; i++) {
		join(cw[i].t);
		got += cw[i].ok;
	}
	CHECK_EQ(got, ok);
	CHECK(got >= c.close_at);
	for (unsigned i = 0; i < np; i++)
		ledger_expect_prefix(&c.led, i, pw[i].ok);
	for (unsigned j = 0; j < CLK; j++)
		s->destroy(c.ch[j]);
	ledger_done(&c.led);
	free(pw);
	free(cw);
	return ok;
}

static void test_close(const struct chan_strategy *s)
{
	static const size_t caps[] = { 0, 1, 3, 64 };
	uint64_t rounds = scaled(100, 3), r = seed_for(4, 4);
	bool mpmc = has(s, CHAN_CAP_MPMC);

	for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
		size_t cap = caps[ci];
		uint64_t acc = 0, wakes = 0;
		int64_t t0 = now_ns();

		if (cap == 0 && !has(s, CHAN_CAP_UNBUFFERED))
			continue;
		arm(120);
		for (uint64_t i = 0; i < rounds; i++) {
			unsigned n1 = mpmc ? 1 + (unsigned)(rnd(&r) % 4) : 1;
			unsigned n2 = mpmc ? 1 + (unsigned)(rnd(&r) % 4) : 1;

			snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu blocked selects=%u", s->name,
				 cap, n1 + n2);
			wakes += cl_blocked_round(s, cap, mpmc ? n1 + n2 : 1, &r);
			snprintf(g_ctx, sizeof g_ctx, "%s close cap=%zu race P=%u C=%u", s->name,
				 cap, n1, n2);
			acc += cl_race_round(s, cap, n1, n2, &r);
		}
		report(s, "close", t0,
		       "cap=%-4zu rounds=%" PRIu64 " close-wakes=%" PRIu64 " race-accepted=%" PRIu64
		       " ok",
		       cap, rounds, wakes, acc);
	}
}

/* ---- nonblock: select_try's "none ready" holds at one instant ---------- */

struct nb {
	const struct chan_strategy *s;
	void *c1, *c2;
	bool close_c2; /* Race2: close c2 instead of sending to it */
	atomic_ullong go, done; /* round numbers: started, selector finished */
	int idx, err;           /* the selector's answer in this round */
	uint64_t got;           /* what it received (c1: 1, c2: 2) */
	uint64_t rounds;
};

/* a short random busy wait (0 to about max ns), so either side may reach
 * its step first */
static void nb_jitter(uint64_t *r, unsigned max)
{
	volatile unsigned sink = 0;

	for (unsigned k = (unsigned)(rnd(r) % max); k > 0; k--)
		sink = sink + 1;
}

static void nb_wait_round(atomic_ullong *word, uint64_t round)
{
	for (unsigned spins = 0; atomic_load_explicit(word, memory_order_acquire) != round;
	     spins++)
		if (spins > 256)
			weft_yield(); /* in a task: lets the carrier's others run */
}

#ifndef NB_JITTER
#define NB_JITTER (STRESS_SANITIZED ? 16384 : 1024)
#endif

static void *nb_selector(void *arg)
{
	struct nb *x = arg;
	uint64_t r = seed_for(1, 31);
	struct chan_case c[2];

	for (uint64_t i = 1; i <= x->rounds; i++) {
		nb_wait_round(&x->go, i);
		/* either order, as in Go's test */
		bool flip = rnd(&r) % 2;
		c[flip] = (struct chan_case){ x->c1, RECV, &x->got, 12345 };
		c[!flip] = (struct chan_case){ x->c2, RECV, &x->got, 12345 };
		x->got = 0;
		nb_jitter(&r, 64);
		/* select_until with a passed deadline must poll the same way */
		bool until = x->s->select_until && rnd(&r) % 2;
		int idx = until ? x->s->select_until(c, 2, 0) : x->s->select_try(c, 2);
		x->idx = idx < 0 ? idx : (c[idx].chan == x->c1 ? 1 : 2);
		x->err = idx < 0 ? 0 : c[idx].err;
		atomic_store_explicit(&x->done, i, memory_order_release);
	}
	return NULL;
}

static void nb_run(const struct chan_strategy *s, size_t cap2, bool close_c2)
{
	struct nb x = { .s = s, .close_c2 = close_c2, .rounds = scaled(200000, 20000) };
	uint64_t r = seed_for(2, 32), one = 1, two = 2, v, by_sel[3] = { 0 };
	int64_t t0 = now_ns();
	pthread_t t;

	snprintf(g_ctx, sizeof g_ctx, "%s nonblock c2 cap=%zu %s", s->name, cap2,
		 close_c2 ? "close" : "send");
	spawn(&t, nb_selector, &x);
	for (uint64_t i = 1; i <= x.rounds; i++) {
		CHECK_EQ(s->create(&x.c1, sizeof(uint64_t), 1), 0);
		CHECK_EQ(s->create(&x.c2, sizeof(uint64_t), cap2), 0);
		CHECK_EQ(s->send(x.c1, &one), 0);
		atomic_store_explicit(&x.go, i, memory_order_release);
		/* the selector sees go a cache-line transfer later */
		nb_jitter(&r, NB_JITTER);
		if (close_c2)
			CHECK_EQ(s->close(x.c2), 0);
		else
			CHECK_EQ(s->send(x.c2, &two), 0);
		bool took_c1 = s->try_recv(x.c1, &v) == 0;
		if (took_c1)
			CHECK_EQ(v, one);
		nb_wait_round(&x.done, i);
		if (x.idx < 0)
			fail("round %" PRIu64 ": select_try/until returned %d while a case was ready",
			     i, x.idx);
		by_sel[x.idx]++;
		if (x.idx == 1) {
			/* the selector took c1's value: we cannot have */
			CHECK(!took_c1);
			CHECK_EQ(x.err, 0);
			CHECK_EQ(x.got, one);
		} else if (close_c2) {
			CHECK_EQ(x.err, -EPIPE); /* received "closed" from c2 */
		} else {
			CHECK_EQ(x.err, 0);
			CHECK_EQ(x.got, two);
		}
		/* exactly once: what is left is what nobody took */
		int left1 = s->try_recv(x.c1, &v) == 0;
		int left2 = !close_c2 && s->try_recv(x.c2, &v) == 0;
		CHECK_EQ(left1, !took_c1 && x.idx != 1);
		CHECK_EQ(left2, !close_c2 && x.idx != 2);
		s->destroy(x.c1);
		s->destroy(x.c2);
	}
	join(t);
	stress_moved(x.rounds * (close_c2 ? 1 : 2));
	report(s, "nonblock", t0,
	       "c2 cap=%zu %s rounds=%" PRIu64 " chose c1=%" PRIu64 " c2=%" PRIu64 " ok", cap2,
	       close_c2 ? "close" : "send ", x.rounds, by_sel[1], by_sel[2]);
}

static void test_nonblock(const struct chan_strategy *s)
{
	if (!s->select_try || !has(s, CHAN_CAP_MPMC)) {
		printf("stress_select [%s] nonblock skipped (no select_try, or one receiver)\n",
		       s->name);
		return;
	}
	arm(180);
	nb_run(s, 1, false);
	arm(180);
	nb_run(s, 1, true);
	if (has(s, CHAN_CAP_UNBUFFERED)) {
		arm(180);
		nb_run(s, 0, true);
	}
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	unsigned n = 0;

	if (!stress_args(argc, argv, "stress_select", 8))
		return 2;
	for (const struct chan_strategy *const *sp = chan_strategies; *sp; sp++) {
		const struct chan_strategy *s = *sp;

		if (!want_strategy(s))
			continue;
		if (!s->select) {
			printf("stress_select [%s] skipped (no select)\n", s->name);
			continue;
		}
		n++;
		if (want("fan"))
			test_fan(s);
		if (want("self"))
			test_self(s);
		if (want("deadline"))
			test_deadline(s);
		if (want("close"))
			test_close(s);
		if (want("nonblock"))
			test_nonblock(s);
	}
	return stress_done(n, "no strategy with select ran");
}
