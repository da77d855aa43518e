/* bench/chan.c: the channel benchmark scenarios (see chan.h).
 *
 * One runner (run_case) does all the threading and timing: it creates the
 * channels, starts one thread per worker, releases them together through a
 * barrier, joins them (reporting a hang instead of waiting forever), and
 * checks what they moved. A scenario is only the choice of worker functions
 * and channels.
 *
 * Item values: producer i of P sends i, i + P, i + 2P, ... below the item
 * count, so every value in [0, items) is sent exactly once and the
 * receivers' count and sum (mod 2^64) must come to items and
 * items * (items - 1) / 2.
 */
#include "chan.h"
#include "measure.h"

#include <weft/common.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { CASE_SEND = 1, CASE_RECV = 2 }; /* struct chan_case op */

#define MAX_CHANS 64
#define IDLE_THREADS 64
#define NS_PER_S BENCH_NS_PER_S

#define CAPS(fam, kind, p, c)                                                   \
	{ fam, kind, p, c, 0, 0, 0 }, { fam, kind, p, c, 1, 0, 0 }, { fam, kind, p, c, 1024, 0, 0 }
#define CAPS_BUFFERED(fam, kind, p, c)                                          \
	{ fam, kind, p, c, 1, 0, 0 }, { fam, kind, p, c, 1024, 0, 0 }

const struct chan_bench_case chan_bench_cases[] = {
	/* the hardware floor first: the report puts it on top */
	{ "floor", CHAN_BENCH_FLOOR_CLOCK, 1, 0, 0, 0, 0 },
	{ "floor", CHAN_BENCH_FLOOR_CAS, 1, 0, 0, 0, 0 },
	{ "pingpong", CHAN_BENCH_FLOOR, 1, 1, 0, 0, 0 },
	{ "floor", CHAN_BENCH_FLOOR_FUTEX, 1, 1, 0, 0, 0 },
	CAPS_BUFFERED("seq", CHAN_BENCH_SEQ, 1, 1),
	CAPS("spsc", CHAN_BENCH_PC, 1, 1),
	CAPS("mpsc", CHAN_BENCH_PC, 2, 1),
	CAPS("mpsc", CHAN_BENCH_PC, 4, 1),
	CAPS("mpsc", CHAN_BENCH_PC, 8, 1),
	CAPS("spmc", CHAN_BENCH_PC, 1, 2),
	CAPS("spmc", CHAN_BENCH_PC, 1, 4),
	CAPS("spmc", CHAN_BENCH_PC, 1, 8),
	CAPS("mpmc", CHAN_BENCH_PC, 2, 2),
	CAPS("mpmc", CHAN_BENCH_PC, 4, 4),
	CAPS("mpmc", CHAN_BENCH_PC, 8, 8),
	CAPS("select_rx", CHAN_BENCH_SELECT_RX, 4, 1),
	CAPS("select_both", CHAN_BENCH_SELECT_BOTH, 2, 2),
	/* the price of select_try's linearizable "none ready" (two passes and
	 * two version reads per case): one thread, every channel empty */
	{ "select_try", CHAN_BENCH_SELECT_TRY, 2, 0, 0, 0, 0 },
	{ "select_try", CHAN_BENCH_SELECT_TRY, 2, 0, 1024, 0, 0 },
	{ "select_try", CHAN_BENCH_SELECT_TRY, 8, 0, 0, 0, 0 },
	{ "select_try", CHAN_BENCH_SELECT_TRY, 8, 0, 1024, 0, 0 },
	{ "pingpong", CHAN_BENCH_PINGPONG, 1, 1, 1, 0, 0 },
	{ "idle", CHAN_BENCH_IDLE, IDLE_THREADS, 0, 1, 0, 0 },
	{ "pipeline", CHAN_BENCH_PIPELINE, 1, 3, 0, 0, 0 },
	{ "pipeline", CHAN_BENCH_PIPELINE, 1, 3, 64, 0, 0 },
	{ "pipeline", CHAN_BENCH_PIPELINE, 1, 3, 1024, 0, 0 },
	/* Go's patterns with more workers than cores (issue 13's programs) */
	{ "fanout", CHAN_BENCH_FANOUT, 8, 8, 0, 0, 0 },
	{ "seedpool", CHAN_BENCH_SEEDPOOL, 100, 1, 200, 0, 0 },
	/* time and memory against items: 1M, 10M, 100M by default */
	{ "scale", CHAN_BENCH_PC, 1, 1, 1024, 1, 0 },
	{ "scale", CHAN_BENCH_PC, 1, 1, 1024, 10, 0 },
	{ "scale", CHAN_BENCH_PC, 1, 1, 1024, 100, 1 },
};
const size_t chan_bench_ncases = sizeof chan_bench_cases / sizeof chan_bench_cases[0];

/* weft's own count of its futex syscalls (lib/internal/futex.h; the static
 * library exports them to the tests and benchmarks): process-wide, so a
 * run's difference is what the weft strategy cost in syscalls. The other
 * strategies block in code weft cannot count (pthread, TBB, moodycamel). */
uint64_t weft__futex_waits(void);
uint64_t weft__futex_wakes(void);

/* One step of a spin-wait. Every 4096 steps it yields, so that on a
 * machine busy elsewhere (both threads on one core) a round trip costs a
 * yield rather than a whole time slice. */
static inline void spin_step(unsigned *spins)
{
	if (++*spins % 4096 == 0) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* ---- workers ---------------------------------------------------------- */

struct bench;

struct worker {
	alignas(64) struct bench *b;
	void (*fn)(struct worker *w);
	const char *role;
	unsigned id;
	pthread_t tid;
	/* progress, stored relaxed by the worker alone; read by the hang
	 * report and, after the join, by the checks */
	_Atomic uint64_t sent, received;
	uint64_t sum; /* of the values received */
	int err;      /* first unexpected return code, with where */
	const char *err_at;
	int joined;
};

/* one cache line each way for the hardware floor */
struct floor_line {
	alignas(64) _Atomic uint64_t seq;
};

struct bench {
	const struct chan_bench_case *c;
	const struct chan_strategy *s;
	uint64_t items;
	unsigned nch;
	void *ch[MAX_CHANS];
	_Atomic unsigned senders_left[MAX_CHANS]; /* the last one closes */
	pthread_barrier_t go;
	struct bench_hist *lat; /* pingpong, floor, futex floor: the timed samples */
	int64_t clock_ns; /* subtracted from each sample */
	uint64_t warmup;  /* pingpong, floor: untimed round trips first */
	struct floor_line *line; /* floor: [0] ping, [1] pong; futex: [0] word, [1] ack */
	_Atomic int64_t stamp;   /* futex floor: when the wake was issued */
	int hung;                /* released by close after the timeout */
	uint64_t base;           /* base items (for the name) */
	/* strategies with a runtime (s->rt: weft tasks, Boost fibers): the
	 * workers are its user-space threads, one group started held,
	 * released by go and joined by join */
	const struct chan_runtime *rt;
	void *group;
};

/* 0 + 1 + ... + (n - 1), mod 2^64: what the receivers' sum must be */
static uint64_t value_sum(uint64_t n)
{
	return n % 2 ? n * ((n - 1) / 2) : (n / 2) * (n - 1);
}

static void progress(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, n, memory_order_relaxed);
}

/* Record the first failure and close every channel, so that the other
 * workers return (with -EPIPE) instead of waiting for this one forever. */
static void fail(struct worker *w, const char *at, int rc)
{
	struct bench *b = w->b;

	if (!w->err_at) {
		w->err = rc;
		w->err_at = at;
	}
	for (unsigned i = 0; i < b->nch; i++)
		b->s->close(b->ch[i]);
}

static void sender_done(struct worker *w, void *ch, unsigned slot)
{
	struct bench *b = w->b;

	/* acq_rel: every sender's last send before the close; pairs with the
	 * other senders' decrements */
	if (atomic_fetch_sub_explicit(&b->senders_left[slot], 1, memory_order_acq_rel) == 1)
		b->s->close(ch);
}

/* Producer i of P (P = c->producers) on channel i % nch. */
static void producer(struct worker *w)
{
	struct bench *b = w->b;
	unsigned np = b->c->producers, slot = w->id % b->nch;
	void *ch = b->ch[slot];
	uint64_t n = 0;

	for (uint64_t v = w->id; v < b->items; v += np) {
		int rc = b->s->send(ch, &v);

		if (rc) {
			fail(w, "send", rc);
			break;
		}
		progress(&w->sent, ++n);
	}
	sender_done(w, ch, slot);
}

/* Receive from ch until it is closed and drained: count and sum. */
static void drain(struct worker *w, void *ch)
{
	uint64_t v, n = 0, sum = 0;
	int rc;

	while ((rc = w->b->s->recv(ch, &v)) == 0) {
		sum += v;
		progress(&w->received, ++n);
	}
	if (rc != -EPIPE)
		fail(w, "recv", rc);
	w->sum = sum;
}

static void consumer(struct worker *w)
{
	drain(w, w->b->ch[0]);
}

/* One thread: fill the channel with cap items, drain it, repeat. */
static void seq_worker(struct worker *w)
{
	struct bench *b = w->b;
	void *ch = b->ch[0];
	uint64_t cap = b->c->capacity, v = 0, x, sum = 0;
	int rc;

	while (v < b->items) {
		uint64_t end = b->items - v < cap ? b->items : v + cap;

		for (uint64_t k = v; k < end; k++) {
			if ((rc = b->s->send(ch, &k)) != 0) {
				fail(w, "send", rc);
				goto out;
			}
		}
		for (uint64_t k = v; k < end; k++) {
			if ((rc = b->s->recv(ch, &x)) != 0) {
				fail(w, "recv", rc);
				goto out;
			}
			sum += x;
		}
		v = end;
		progress(&w->sent, v);
		progress(&w->received, v);
	}
out:
	w->sum = sum;
}

/* Select over a receive case on every channel until all are closed. */
static void select_receiver(struct worker *w)
{
	struct bench *b = w->b;
	struct chan_case cs[MAX_CHANS];
	uint64_t v, n = 0, sum = 0;
	unsigned open = b->nch;

	for (unsigned i = 0; i < b->nch; i++)
		cs[i] = (struct chan_case){ .chan = b->ch[i], .op = CASE_RECV, .elem = &v };
	while (open) {
		int i = b->s->select(cs, b->nch);

		if (i < 0 || (unsigned)i >= b->nch) {
			fail(w, "select", i < 0 ? i : -ERANGE);
			break;
		}
		if (cs[i].err == -EPIPE) {
			cs[i].chan = NULL;
			open--;
		} else if (cs[i].err) {
			fail(w, "select case", cs[i].err);
			break;
		} else {
			sum += v;
			progress(&w->received, ++n);
		}
	}
	w->sum = sum;
}

/* select_try over a receive case on every channel, all empty: each call
 * must say -EAGAIN (counted as sent and received, so check() holds). */
static void select_try_empty(struct worker *w)
{
	struct bench *b = w->b;
	struct chan_case cs[MAX_CHANS];
	uint64_t v;

	for (unsigned i = 0; i < b->nch; i++)
		cs[i] = (struct chan_case){ b->ch[i], CASE_RECV, &v, 0 };
	for (uint64_t k = 0; k < b->items; k++) {
		int i = b->s->select_try(cs, b->nch);

		if (i != -EAGAIN) {
			fail(w, "select_try on empty channels", i < 0 ? i : -EEXIST);
			break;
		}
		w->sum += k;
		if ((k & 1023) == 0) {
			progress(&w->sent, k + 1);
			progress(&w->received, k + 1);
		}
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
}

/* Thread i of 2 selects over "send on channel i" and "receive on channel
 * 1 - i" until it has sent its values (those = i mod 2) and received the
 * other thread's. */
static void select_both_worker(struct worker *w)
{
	struct bench *b = w->b;
	void *out = b->ch[w->id], *in = b->ch[1 - w->id];
	uint64_t next = w->id, v, sent = 0, got = 0, sum = 0;
	uint64_t to_recv = (b->items + w->id) / 2; /* values = 1 - id (mod 2) */
	struct chan_case cs[2];

	while (next < b->items || got < to_recv) {
		cs[0] = (struct chan_case){ .chan = next < b->items ? out : NULL,
					    .op = CASE_SEND, .elem = &next };
		cs[1] = (struct chan_case){ .chan = got < to_recv ? in : NULL,
					    .op = CASE_RECV, .elem = &v };
		int i = b->s->select(cs, 2);

		if (i < 0 || i > 1 || cs[i].err) {
			fail(w, "select", i < 0 ? i : i > 1 ? -ERANGE : cs[i].err);
			break;
		}
		if (i == 0) {
			next += 2;
			progress(&w->sent, ++sent);
		} else {
			sum += v;
			progress(&w->received, ++got);
		}
	}
	w->sum = sum;
}

static void timed(struct bench *b, uint64_t i, int64_t t0)
{
	if (i >= b->warmup)
		bench_hist_add(b->lat, bench_now_ns() - t0 - b->clock_ns);
}

/* pingpong: send i on channel 0, wait for it back on channel 1 */
static void pinger(struct worker *w)
{
	struct bench *b = w->b;
	uint64_t v;
	int rc;

	for (uint64_t i = 0; i < b->items; i++) {
		int64_t t0 = bench_now_ns();

		if ((rc = b->s->send(b->ch[0], &i)) != 0) {
			fail(w, "send", rc);
			break;
		}
		if ((rc = b->s->recv(b->ch[1], &v)) != 0) {
			fail(w, "recv", rc);
			break;
		}
		timed(b, i, t0);
		if (v != i) {
			fail(w, "echo (wrong value back)", -EPROTO);
			break;
		}
		progress(&w->sent, i + 1);
		progress(&w->received, i + 1);
		w->sum += v;
	}
	b->s->close(b->ch[0]);
}

static void ponger(struct worker *w)
{
	struct bench *b = w->b;
	uint64_t v, n = 0;
	int rc;

	while ((rc = b->s->recv(b->ch[0], &v)) == 0) {
		if ((rc = b->s->send(b->ch[1], &v)) != 0) {
			fail(w, "send", rc);
			return;
		}
		progress(&w->received, ++n);
		progress(&w->sent, n);
	}
	if (rc != -EPIPE)
		fail(w, "recv", rc);
}

/* the hardware floor: the same round trip on two bare cache lines */
static void floor_pinger(struct worker *w)
{
	struct bench *b = w->b;

	for (uint64_t i = 0; i < b->items; i++) {
		int64_t t0 = bench_now_ns();
		unsigned spins = 0;

		/* release/acquire: only the words themselves are exchanged */
		atomic_store_explicit(&b->line[0].seq, i + 1, memory_order_release);
		while (atomic_load_explicit(&b->line[1].seq, memory_order_acquire) != i + 1)
			spin_step(&spins);
		timed(b, i, t0);
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
	w->sum = value_sum(b->items);
}

static void floor_ponger(struct worker *w)
{
	struct bench *b = w->b;

	for (uint64_t i = 0; i < b->items; i++) {
		unsigned spins = 0;

		while (atomic_load_explicit(&b->line[0].seq, memory_order_acquire) != i + 1)
			spin_step(&spins);
		atomic_store_explicit(&b->line[1].seq, i + 1, memory_order_release);
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
}

/* floor/clock: back-to-back clock reads, each difference a sample */
static void floor_clock(struct worker *w)
{
	struct bench *b = w->b;
	int64_t prev = bench_now_ns();

	for (uint64_t i = 0; i < b->items; i++) {
		int64_t t = bench_now_ns();

		if (i >= b->warmup)
			bench_hist_add(b->lat, t - prev);
		prev = t;
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
	w->sum = value_sum(b->items);
}

/* floor/cas: uncontended compare-and-swap on a line only this thread uses */
static void floor_cas(struct worker *w)
{
	struct bench *b = w->b;
	_Atomic uint64_t *word = &b->line[0].seq;

	for (uint64_t i = 0; i < b->items; i++) {
		uint64_t expect = i;

		/* seq_cst, as a lock or a ticket takes it; always succeeds */
		atomic_compare_exchange_strong(word, &expect, i + 1);
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
	w->sum = value_sum(b->items);
}

static long futex(_Atomic uint64_t *addr, int op, uint32_t val)
{
	/* the low 32 bits of the word (little-endian: its first 4 bytes) */
	return syscall(SYS_futex, (uint32_t *)(void *)addr, op | FUTEX_PRIVATE_FLAG, val,
		       NULL, NULL, 0);
}

/* floor/futex_wake: the waker waits until the sleeper has announced it is
 * going to sleep, gives it 50 us to get there, stamps the time and wakes
 * it; the sleeper reads the clock when FUTEX_WAIT returns. One sample per
 * wake-up: the kernel's wake path plus the scheduler putting the thread on
 * a core. */
static void floor_waker(struct worker *w)
{
	struct bench *b = w->b;
	_Atomic uint64_t *word = &b->line[0].seq, *ack = &b->line[1].seq;

	for (uint64_t i = 0; i < b->items; i++) {
		unsigned spins = 0;

		/* acquire: the sleeper's announcement (ack = 2i + 1); ack only
		 * grows, and the sleeper may already be one step further */
		while (atomic_load_explicit(ack, memory_order_acquire) < 2 * i + 1)
			spin_step(&spins);
		bench_sleep_ns(50000);
		atomic_store_explicit(&b->stamp, bench_now_ns(), memory_order_relaxed);
		/* release: the stamp before the word; pairs with the sleeper */
		atomic_store_explicit(word, 1, memory_order_release);
		futex(word, FUTEX_WAKE, 1);
		while (atomic_load_explicit(ack, memory_order_acquire) < 2 * i + 2)
			spin_step(&spins);
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
	w->sum = value_sum(b->items);
}

static void floor_sleeper(struct worker *w)
{
	struct bench *b = w->b;
	_Atomic uint64_t *word = &b->line[0].seq, *ack = &b->line[1].seq;

	for (uint64_t i = 0; i < b->items; i++) {
		atomic_store_explicit(word, 0, memory_order_relaxed);
		/* release: word reset before the waker may set it */
		atomic_store_explicit(ack, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(word, memory_order_acquire) == 0)
			futex(word, FUTEX_WAIT, 0);
		int64_t t = bench_now_ns();

		if (i >= b->warmup)
			bench_hist_add(b->lat, t - atomic_load_explicit(&b->stamp, memory_order_relaxed) -
						 b->clock_ns);
		atomic_store_explicit(ack, 2 * i + 2, memory_order_release);
	}
	progress(&w->sent, b->items);
	progress(&w->received, b->items);
}

/* pipeline, stage 0: generate 0 .. items-1 on channel 0, then close it */
static void pipe_generate(struct worker *w)
{
	struct bench *b = w->b;
	int rc;

	for (uint64_t v = 0; v < b->items; v++) {
		if ((rc = b->s->send(b->ch[0], &v)) != 0) {
			fail(w, "send", rc);
			break;
		}
		progress(&w->sent, v + 1);
	}
	b->s->close(b->ch[0]);
}

/* pipeline, stages 1 and 2 (worker ids 1, 2): receive from channel id - 1
 * until it is closed and drained, send on channel id (stage 1: every
 * square; stage 2: the even ones), then close channel id */
static void pipe_stage(struct worker *w)
{
	struct bench *b = w->b;
	void *in = b->ch[w->id - 1], *out = b->ch[w->id];
	uint64_t v, got = 0, sent = 0;
	int rc;

	while ((rc = b->s->recv(in, &v)) == 0) {
		progress(&w->received, ++got);
		if (w->id == 1)
			v *= v;
		else if (v % 2)
			continue;
		if ((rc = b->s->send(out, &v)) != 0) {
			fail(w, "send", rc);
			return;
		}
		progress(&w->sent, ++sent);
	}
	if (rc != -EPIPE)
		fail(w, "recv", rc);
	b->s->close(out);
}


static void pipe_worker(struct worker *w)
{
	if (w->id == 0)
		pipe_generate(w);
	else if (w->id < 3)
		pipe_stage(w);
	else
		drain(w, w->b->ch[2]); /* count and sum what stage 2 kept */
}

/* Receive from in until it is closed and drained, sending each value (its
 * square if square) into out: 0, or -1 after fail(). */
static int relay(struct worker *w, void *in, void *out, bool square)
{
	uint64_t v, got = 0, sent = 0;
	int rc;

	while ((rc = w->b->s->recv(in, &v)) == 0) {
		progress(&w->received, ++got);
		if (square)
			v *= v;
		if ((rc = w->b->s->send(out, &v)) != 0) {
			fail(w, "send", rc);
			return -1;
		}
		progress(&w->sent, ++sent);
	}
	if (rc != -EPIPE) {
		fail(w, "recv", rc);
		return -1;
	}
	return 0;
}

/* fanout (N = producers squaring workers): id 0 generates into ch[0]; ids
 * 1..N square from ch[0] into their own ch[id] and close it; ids N+1..2N
 * forward ch[id - N] into ch[N + 1] (the last to finish closes it); id
 * 2N+1 drains ch[N + 1]. The seed's fanOut and FanIn. */
static void fanout_worker(struct worker *w)
{
	struct bench *b = w->b;
	unsigned n = b->c->producers;

	if (w->id == 0) {
		pipe_generate(w);
		return;
	}
	if (w->id == 2 * n + 1) {
		drain(w, b->ch[n + 1]);
		return;
	}
	bool square = w->id <= n;
	void *in = square ? b->ch[0] : b->ch[w->id - n], *out = square ? b->ch[w->id] : b->ch[n + 1];

	if (relay(w, in, out, square) != 0)
		return;
	if (square)
		b->s->close(out);
	else
		sender_done(w, out, n + 1);
}

/* seedpool (W = producers workers): id 0 generates jobs into ch[0]; ids
 * 1..W range over it and send each job's square into ch[1] (the last to
 * finish closes it); id W+1 drains ch[1]. */
static void seedpool_worker(struct worker *w)
{
	struct bench *b = w->b;
	unsigned nw = b->c->producers;

	if (w->id == 0) {
		pipe_generate(w);
		return;
	}
	if (w->id == nw + 1) {
		drain(w, b->ch[1]);
		return;
	}
	if (relay(w, b->ch[0], b->ch[1], true) == 0)
		sender_done(w, b->ch[1], 1);
}

/* idle: block in recv on an empty channel until it is closed */
static void idle_receiver(struct worker *w)
{
	struct bench *b = w->b;
	uint64_t v;
	int rc = b->s->recv(b->ch[w->id], &v);

	if (rc != -EPIPE)
		fail(w, "recv (before close)", rc);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&w->b->go);
	w->fn(w);
	return NULL;
}

/* a worker in a runtime's group (struct chan_runtime): the group holds it
 * until go and counts it done when it returns */
static void rt_worker_main(void *arg)
{
	struct worker *w = arg;

	w->fn(w);
}

/* ---- the runner ------------------------------------------------------- */

/* s's name is a whole word of list */
static int in_list(const char *list, const struct chan_strategy *s)
{
	const char *p = list;
	size_t n = strlen(s->name);

	while ((p = strstr(p, s->name)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
			return 1;
		p += n;
	}
	return 0;
}

int chan_bench_is_floor(const struct chan_bench_case *c)
{
	return c->kind == CHAN_BENCH_FLOOR || c->kind == CHAN_BENCH_FLOOR_CLOCK ||
	       c->kind == CHAN_BENCH_FLOOR_CAS || c->kind == CHAN_BENCH_FLOOR_FUTEX;
}

static int has_latency(const struct chan_bench_case *c)
{
	return c->kind == CHAN_BENCH_PINGPONG || c->kind == CHAN_BENCH_FLOOR ||
	       c->kind == CHAN_BENCH_FLOOR_CLOCK || c->kind == CHAN_BENCH_FLOOR_FUTEX;
}

#ifdef WEFT_GO_PEER
/* only a name: chan_bench_supported and chan_bench_run decide for it */
const struct chan_strategy chan_strategy_go = { .name = "go" };
#endif

int chan_bench_supported(const struct chan_bench_case *c, const struct chan_strategy *s)
{
	if (chan_bench_is_floor(c))
		return s == NULL;
	if (!s)
		return 0;
#ifdef WEFT_GO_PEER
	if (s == &chan_strategy_go)
		return (c->kind == CHAN_BENCH_PC && !c->scale_x10) ||
		       c->kind == CHAN_BENCH_PIPELINE || c->kind == CHAN_BENCH_FANOUT ||
		       c->kind == CHAN_BENCH_SEEDPOOL;
#endif
	if (c->capped && !in_list(CHAN_SCALE_STRATEGIES, s))
		return 0;
	if (c->capacity == 0 && !(s->caps & CHAN_CAP_UNBUFFERED))
		return 0;
	switch (c->kind) {
	case CHAN_BENCH_PC:
		return (c->producers == 1 && c->consumers == 1) || (s->caps & CHAN_CAP_MPMC);
	case CHAN_BENCH_SEQ:
		return c->capacity > 0;
	case CHAN_BENCH_SELECT_RX:
	case CHAN_BENCH_SELECT_BOTH:
		return s->select != NULL;
	case CHAN_BENCH_SELECT_TRY:
		return s->select_try != NULL;
	case CHAN_BENCH_FANOUT:
	case CHAN_BENCH_SEEDPOOL:
		return (s->caps & (CHAN_CAP_MPMC | CHAN_CAP_BLOCKING)) ==
		       (CHAN_CAP_MPMC | CHAN_CAP_BLOCKING);
	default:
		return 1;
	}
}

uint64_t chan_bench_items(const struct chan_bench_case *c, uint64_t base)
{
	uint64_t n = base;

	if (c->kind == CHAN_BENCH_IDLE)
		return 0;
	if (c->scale_x10)
		n = base / 10 * c->scale_x10;
	else if (c->kind == CHAN_BENCH_FLOOR_CLOCK || c->kind == CHAN_BENCH_FLOOR_CAS)
		n = base;
	else if (c->kind == CHAN_BENCH_FLOOR_FUTEX)
		n = base / 5000;
	else if (c->kind == CHAN_BENCH_PINGPONG || c->kind == CHAN_BENCH_FLOOR)
		n = base / 50;
	else if (c->kind == CHAN_BENCH_SELECT_TRY)
		n = base / 10;
	else if (c->kind == CHAN_BENCH_SEEDPOOL)
		n = base / 20;
	else if (c->capacity < 2)
		n = base / 100;
	return n < 100 ? 100 : n;
}

char *chan_bench_name(char *buf, size_t size, const struct chan_bench_case *c,
		      const struct chan_strategy *s, uint64_t base_items)
{
	char cap[64] = "", threads[48] = "";
	int pingpong = c->kind == CHAN_BENCH_PINGPONG || c->kind == CHAN_BENCH_FLOOR;
	static const char *const floors[] = {
		[CHAN_BENCH_FLOOR_CLOCK] = "clock",
		[CHAN_BENCH_FLOOR_CAS] = "cas",
		[CHAN_BENCH_FLOOR_FUTEX] = "futex_wake",
	};

	if (c->kind == CHAN_BENCH_FLOOR_CLOCK || c->kind == CHAN_BENCH_FLOOR_CAS ||
	    c->kind == CHAN_BENCH_FLOOR_FUTEX) {
		snprintf(buf, size, "chan/floor/%s/hw_floor", floors[c->kind]);
		return buf;
	}
	if (c->scale_x10)
		snprintf(cap, sizeof cap, "/cap:%zu/items:%llu", c->capacity,
			 (unsigned long long)chan_bench_items(c, base_items));
	else if (!pingpong)
		snprintf(cap, sizeof cap, "/cap:%zu", c->capacity);
	if (c->kind == CHAN_BENCH_IDLE || c->kind == CHAN_BENCH_SELECT_BOTH)
		snprintf(threads, sizeof threads, "/threads:%u", c->producers);
	else if (c->kind == CHAN_BENCH_SELECT_TRY)
		snprintf(threads, sizeof threads, "/cases:%u", c->producers);
	else if (c->kind == CHAN_BENCH_FANOUT || c->kind == CHAN_BENCH_SEEDPOOL)
		snprintf(threads, sizeof threads, "/workers:%u", c->producers);
	else if (c->kind == CHAN_BENCH_SELECT_RX ||
		 (c->kind == CHAN_BENCH_PC && (c->producers > 1 || c->consumers > 1)))
		snprintf(threads, sizeof threads, "/threads:%ux%u", c->producers, c->consumers);
	snprintf(buf, size, "chan/%s%s%s/%s", c->family, cap, threads,
		 s ? s->name : "hw_floor");
	return buf;
}

/* Join every worker by the timeout: 0, or -ETIMEDOUT (some still run). */
static int join_all(struct worker *w, unsigned n, int64_t timeout_ns)
{
	struct timespec dl;

	if (n && w[0].b->rt)
		return w[0].b->rt->group_join(w[0].b->group, weft_deadline(timeout_ns));

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ns / NS_PER_S;
	for (unsigned i = 0; i < n; i++) {
		if (w[i].joined)
			continue;
		if (pthread_timedjoin_np(w[i].tid, NULL, &dl) != 0)
			return -ETIMEDOUT;
		w[i].joined = 1;
	}
	return 0;
}

/* A run that does not finish in time is a hang: print each thread's
 * progress, then close every channel to release the threads (close wakes
 * every waiter) and fail the run. If even that does not release them,
 * exit 124: nothing more can be measured in this process. */
static void hang(struct bench *b, struct worker *w, unsigned n, int64_t timeout_ns,
		 struct chan_bench_result *r)
{
	char name[160];
	uint64_t sent = 0, received = 0;

	chan_bench_name(name, sizeof name, b->c, b->s, b->base);
	fprintf(stderr, "weft-bench: %s hung: not finished after %lld s (%llu items)\n",
		name, (long long)(timeout_ns / NS_PER_S), (unsigned long long)b->items);
	for (unsigned i = 0; i < n; i++) {
		sent += atomic_load(&w[i].sent);
		received += atomic_load(&w[i].received);
		fprintf(stderr, "  worker %u (%s): sent %llu, received %llu%s\n", i, w[i].role,
			(unsigned long long)atomic_load(&w[i].sent),
			(unsigned long long)atomic_load(&w[i].received),
			w[i].err_at ? " (failed)" : "");
	}
	for (unsigned i = 0; i < b->nch; i++)
		if (b->s && b->s->len)
			fprintf(stderr, "  channel %u: len %zu\n", i, b->s->len(b->ch[i]));
	snprintf(r->error, sizeof r->error,
		 "hung: not finished after %lld s (sent %llu, received %llu of %llu); "
		 "see stderr",
		 (long long)(timeout_ns / NS_PER_S), (unsigned long long)sent,
		 (unsigned long long)received, (unsigned long long)b->items);
	b->hung = 1;
	for (unsigned i = 0; i < b->nch; i++)
		b->s->close(b->ch[i]);
	if (b->nch == 0 || join_all(w, n, 10 * NS_PER_S) != 0) {
		fprintf(stderr, "weft-bench: %s: close did not release the threads; exiting\n",
			name);
		fflush(stderr);
		_exit(124);
	}
	fprintf(stderr, "  (close released every thread; the run is failed)\n");
}

/* Worker i's function and role for case c. */
static void assign(const struct chan_bench_case *c, struct worker *w, unsigned i)
{
	static const struct {
		void (*fn[2])(struct worker *w); /* [0]: the first producers, [1]: the rest */
		const char *role[2];
	} roles[] = {
		[CHAN_BENCH_SEQ] = { { seq_worker, seq_worker }, { "send+recv", "send+recv" } },
		[CHAN_BENCH_PC] = { { producer, consumer }, { "producer", "consumer" } },
		[CHAN_BENCH_SELECT_RX] = { { producer, select_receiver },
					   { "sender", "select receiver" } },
		[CHAN_BENCH_SELECT_BOTH] = { { select_both_worker, select_both_worker },
					     { "select send+recv", "select send+recv" } },
		[CHAN_BENCH_PINGPONG] = { { pinger, ponger }, { "pinger", "ponger" } },
		[CHAN_BENCH_FLOOR] = { { floor_pinger, floor_ponger }, { "pinger", "ponger" } },
		[CHAN_BENCH_IDLE] = { { idle_receiver, idle_receiver },
				      { "idle receiver", "idle receiver" } },
		[CHAN_BENCH_FLOOR_CLOCK] = { { floor_clock, floor_clock }, { "clock", "clock" } },
		[CHAN_BENCH_FLOOR_CAS] = { { floor_cas, floor_cas }, { "cas", "cas" } },
		[CHAN_BENCH_FLOOR_FUTEX] = { { floor_waker, floor_sleeper }, { "waker", "sleeper" } },
		[CHAN_BENCH_PIPELINE] = { { pipe_worker, pipe_worker },
					  { "generate", "square / keep-even / drain" } },
		[CHAN_BENCH_SELECT_TRY] = { { select_try_empty, select_try_empty },
					    { "select_try", "select_try" } },
		[CHAN_BENCH_FANOUT] = { { fanout_worker, fanout_worker },
					{ "generate", "square / forward / drain" } },
		[CHAN_BENCH_SEEDPOOL] = { { seedpool_worker, seedpool_worker },
					  { "generate", "worker / drain" } },
	};
	unsigned second = i >= c->producers; /* pingpong, floor: 1 "producer" */

	w->fn = roles[c->kind].fn[second];
	w->role = roles[c->kind].role[second];
}

static unsigned nthreads(const struct chan_bench_case *c)
{
	switch (c->kind) {
	case CHAN_BENCH_SEQ:
	case CHAN_BENCH_FLOOR_CLOCK:
	case CHAN_BENCH_FLOOR_CAS:
	case CHAN_BENCH_SELECT_TRY:
		return 1;
	case CHAN_BENCH_SELECT_BOTH:
	case CHAN_BENCH_PINGPONG:
	case CHAN_BENCH_FLOOR:
	case CHAN_BENCH_FLOOR_FUTEX:
		return 2;
	case CHAN_BENCH_IDLE:
		return c->producers;
	case CHAN_BENCH_PIPELINE:
		return 4;
	case CHAN_BENCH_FANOUT:
		return 2 * c->producers + 2;
	case CHAN_BENCH_SEEDPOOL:
		return c->producers + 2;
	default:
		return c->producers + c->consumers;
	}
}

static unsigned nchannels(const struct chan_bench_case *c)
{
	switch (c->kind) {
	case CHAN_BENCH_SELECT_RX:
	case CHAN_BENCH_SELECT_TRY:
		return c->producers;
	case CHAN_BENCH_SELECT_BOTH:
	case CHAN_BENCH_PINGPONG:
		return 2;
	case CHAN_BENCH_FLOOR:
	case CHAN_BENCH_FLOOR_CLOCK:
	case CHAN_BENCH_FLOOR_CAS:
	case CHAN_BENCH_FLOOR_FUTEX:
		return 0;
	case CHAN_BENCH_IDLE:
		return c->producers;
	case CHAN_BENCH_PIPELINE:
		return 3;
	case CHAN_BENCH_FANOUT:
		return c->producers + 2;
	case CHAN_BENCH_SEEDPOOL:
		return 2;
	default:
		return 1;
	}
}

/* After the join: every worker's errors, then exactly-once delivery. */
static void check(const struct bench *b, const struct worker *w, unsigned n,
		  struct chan_bench_result *r)
{
	uint64_t sent = 0, received = 0, sum = 0, want;

	for (unsigned i = 0; i < n; i++) {
		if (w[i].err_at) {
			snprintf(r->error, sizeof r->error,
				 "worker %u (%s): %s returned %d (%s)", i, w[i].role,
				 w[i].err_at, w[i].err, strerror(-w[i].err));
			return;
		}
		sent += atomic_load(&w[i].sent);
		received += atomic_load(&w[i].received);
		sum += w[i].sum;
	}
	if (b->c->kind == CHAN_BENCH_IDLE)
		return;
	if (b->c->kind == CHAN_BENCH_PIPELINE) {
		uint64_t kept = (b->items + 1) / 2, ksum = 0;

		for (uint64_t k = 0; k < kept; k++)
			ksum += 4 * k * k; /* (2k)^2, mod 2^64 */
		if (atomic_load(&w[0].sent) != b->items ||
		    atomic_load(&w[1].received) != b->items ||
		    atomic_load(&w[1].sent) != b->items ||
		    atomic_load(&w[2].received) != b->items ||
		    atomic_load(&w[2].sent) != kept || atomic_load(&w[3].received) != kept ||
		    w[3].sum != ksum)
			snprintf(r->error, sizeof r->error,
				 "pipeline lost or invented items: generated %llu, squared %llu, "
				 "kept %llu, drained %llu of %llu (sum %llu, want %llu)",
				 (unsigned long long)atomic_load(&w[0].sent),
				 (unsigned long long)atomic_load(&w[1].sent),
				 (unsigned long long)atomic_load(&w[2].sent),
				 (unsigned long long)atomic_load(&w[3].received),
				 (unsigned long long)kept, (unsigned long long)w[3].sum,
				 (unsigned long long)ksum);
		return;
	}
	if (b->c->kind == CHAN_BENCH_FANOUT || b->c->kind == CHAN_BENCH_SEEDPOOL) {
		const struct worker *d = &w[n - 1]; /* the drain */
		uint64_t sq = 0;

		for (uint64_t v = 0; v < b->items; v++)
			sq += v * v; /* mod 2^64, as the workers square */
		if (atomic_load(&w[0].sent) != b->items ||
		    atomic_load(&d->received) != b->items || d->sum != sq)
			snprintf(r->error, sizeof r->error,
				 "lost or invented items: generated %llu, drained %llu of %llu "
				 "(sum of squares %llu, want %llu)",
				 (unsigned long long)atomic_load(&w[0].sent),
				 (unsigned long long)atomic_load(&d->received),
				 (unsigned long long)b->items, (unsigned long long)d->sum,
				 (unsigned long long)sq);
		return;
	}
	if (b->c->kind == CHAN_BENCH_PINGPONG || b->c->kind == CHAN_BENCH_FLOOR ||
	    b->c->kind == CHAN_BENCH_FLOOR_FUTEX) {
		sent /= 2; /* each side counts every round trip */
		received /= 2;
	}
	want = value_sum(b->items);
	if (sent != b->items || received != b->items || sum != want)
		snprintf(r->error, sizeof r->error,
			 "lost or invented items: sent %llu, received %llu of %llu "
			 "(sum %llu, want %llu)",
			 (unsigned long long)sent, (unsigned long long)received,
			 (unsigned long long)b->items, (unsigned long long)sum,
			 (unsigned long long)want);
}

static int setup(struct bench *b, struct chan_bench_result *r)
{
	const struct chan_bench_case *c = b->c;

	for (unsigned i = 0; i < b->nch; i++) {
		int rc = b->s->create(&b->ch[i], sizeof(uint64_t), c->capacity);

		if (rc) {
			snprintf(r->error, sizeof r->error, "create(cap %zu): %d (%s)",
				 c->capacity, rc, strerror(-rc));
			b->nch = i;
			return -1;
		}
		atomic_init(&b->senders_left[i], 0);
	}
	if (c->kind == CHAN_BENCH_PC || c->kind == CHAN_BENCH_SELECT_RX)
		for (unsigned i = 0; i < c->producers; i++)
			atomic_fetch_add(&b->senders_left[i % b->nch], 1);
	if (c->kind == CHAN_BENCH_FANOUT) /* the forwarders into the last */
		atomic_store(&b->senders_left[b->nch - 1], c->producers);
	if (c->kind == CHAN_BENCH_SEEDPOOL) /* the workers into results */
		atomic_store(&b->senders_left[1], c->producers);
	if (has_latency(c)) {
		b->warmup = b->items / 10 < 1000 ? b->items / 10 : 1000;
		b->lat = calloc(1, sizeof *b->lat); /* zeroed: touched now, not timed */
		if (!b->lat) {
			snprintf(r->error, sizeof r->error, "out of memory");
			return -1;
		}
		/* the clock's own cost; not subtracted from the clock floor */
		b->clock_ns = c->kind == CHAN_BENCH_FLOOR_CLOCK ? 0 : bench_clock_cost_ns();
	}
	if (chan_bench_is_floor(c)) {
		b->line = aligned_alloc(64, 2 * sizeof *b->line);
		if (!b->line) {
			snprintf(r->error, sizeof r->error, "out of memory");
			return -1;
		}
		atomic_init(&b->line[0].seq, 0);
		atomic_init(&b->line[1].seq, 0);
	}
	return 0;
}

static void teardown(struct bench *b)
{
	for (unsigned i = 0; i < b->nch; i++)
		b->s->destroy(b->ch[i]);
	free(b->lat);
	free(b->line);
}

int chan_bench_run(const struct chan_bench_case *c, const struct chan_strategy *s,
		   const struct chan_bench_params *p, struct chan_bench_result *r)
{
	struct bench b = { .c = c, .s = s };
	unsigned n = nthreads(c);
	struct worker *w;
	struct bench_meter m = { 0 };
	int64_t timeout = p->timeout_ns > 0 ? p->timeout_ns : 120 * NS_PER_S;
	uint64_t futex0 = 0;

	memset(r, 0, sizeof *r);
	if (!chan_bench_supported(c, s)) {
		snprintf(r->error, sizeof r->error, "not supported by this strategy");
		return -1;
	}
	b.items = chan_bench_items(c, p->base_items);
	b.base = p->base_items;
	if (nthreads(c) > 2 && !chan_bench_is_floor(c) && c->kind != CHAN_BENCH_IDLE &&
	    !in_list(CHAN_FULL_ITEMS_STRATEGIES, s))
		b.items = b.items / 10 < 100 ? 100 : b.items / 10;
#ifdef WEFT_GO_PEER
	if (s == &chan_strategy_go)
		return go_peer_chan_run(c, b.items, timeout, r);
#endif
	b.nch = nchannels(c);
	w = aligned_alloc(64, n * sizeof *w);
	if (!w) {
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	memset(w, 0, n * sizeof *w);
	if (setup(&b, r) != 0)
		goto out;

	bench_peak_rss_reset(); /* refused: the process's lifetime peak */
	futex0 = weft__futex_waits() + weft__futex_wakes();
	b.rt = s ? s->rt : NULL;
	if (b.rt && !(b.group = b.rt->group_create(n))) {
		snprintf(r->error, sizeof r->error, "%s: out of memory", b.rt->name);
		goto out;
	}
	pthread_barrier_init(&b.go, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		w[i].b = &b;
		w[i].id = i;
		assign(c, &w[i], i);
		if (b.rt ? b.rt->group_spawn(b.group, rt_worker_main, &w[i]) != 0
			 : pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			/* the workers already started wait at the barrier */
			fprintf(stderr, "weft-bench: starting a worker failed\n");
			abort();
		}
	}
	bench_meter_start(&m);
	if (b.rt)
		b.rt->group_go(b.group);
	else
		pthread_barrier_wait(&b.go);
	if (c->kind == CHAN_BENCH_IDLE) {
		bench_sleep_ns(p->idle_ns > 0 ? p->idle_ns : NS_PER_S);
		bench_meter_stop(&m);
		for (unsigned i = 0; i < b.nch; i++)
			s->close(b.ch[i]);
		if (join_all(w, n, timeout) != 0)
			hang(&b, w, n, timeout, r);
		r->release_ns = bench_now_ns() - m.end_ns;
	} else {
		if (join_all(w, n, timeout) != 0)
			hang(&b, w, n, timeout, r);
		bench_meter_stop(&m);
	}
	pthread_barrier_destroy(&b.go);

	r->items = b.items;
	r->wall_ns = m.wall_ns;
	r->cpu_ns = m.cpu_ns;
	r->ctx_switches = m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	r->futex_calls = s && (!strcmp(s->name, "weft") || b.rt == &chan_runtime_tasks)
				 ? (int64_t)(weft__futex_waits() + weft__futex_wakes() - futex0)
				 : -1;
	if (!b.hung)
		check(&b, w, n, r);
	if (b.lat && b.lat->count && !r->error[0]) {
		r->has_latency = 1;
		bench_hist_latency(b.lat, b.clock_ns, &r->lat);
	}
	if (b.rt)
		b.rt->group_destroy(b.group);
out:
	teardown(&b);
	free(w);
	return r->error[0] ? -1 : 0;
}
