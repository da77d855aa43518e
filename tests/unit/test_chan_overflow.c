/* tests/unit/test_chan_overflow.c: overflow policies of buffered channels
 * (weft_chan_create_opts, lib/chan_overflow.c, lib/spill.c).
 *
 * Bad input; BLOCK through create_opts and the stats of a plain channel;
 * DROP_NEWEST (every send variant and a select SEND case refuse with
 * -ENOBUFS when full, the element stays the caller's, counted);
 * DROP_OLDEST (on_drop once per evicted element, the newest kept, and
 * with 4 concurrent senders: received + evicted is exactly what was sent,
 * each once); SPILL: FIFO across the memory/disk boundary (small blocks,
 * so the file is really written and read), no file visible in the spill
 * directory, close-and-drain of spilled elements, len and stats,
 * spill_max_bytes (try_send -EAGAIN, a deadline, a blocked send released
 * by a receive), a select receiving what sits only on disk, a select
 * sending into a spill at its limit whose ring has room, 3 senders x
 * 2 receivers exactly once and FIFO per sender (threads, then tasks), and
 * a disk error (RLIMIT_FSIZE, SIGXFSZ ignored) failing the send with
 * -EFBIG while everything accepted before is delivered in order.
 *
 * Usage: test_chan_overflow [items]   (default 200000; less under sanitizers)
 * No durations are asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/task.h>

#include "check.h"
#include "participant.h"
#include "tmpdir.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static uint64_t g_items = 200000;
static char g_dir[256];

static weft_chan_t *mk(int policy, size_t esize, size_t cap)
{
	weft_chan_opts_t o = {.elem_size = esize, .capacity = cap, .overflow = policy,
			      .spill_dir = g_dir, .spill_block_bytes = 4096};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	return c;
}

static void test_bad_input(void)
{
	weft_chan_t *c = NULL;
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 4};
	CHECK_EQ(weft_chan_create_opts(NULL, &o), -EINVAL);
	CHECK_EQ(weft_chan_create_opts(&c, NULL), -EINVAL);
	o.overflow = 4;
	CHECK_EQ(weft_chan_create_opts(&c, &o), -EINVAL);
	o.overflow = -1;
	CHECK_EQ(weft_chan_create_opts(&c, &o), -EINVAL);
	for (int pol = 1; pol <= 3; pol++) {
		weft_chan_opts_t z = {.elem_size = 8, .capacity = 0, .overflow = pol};
		CHECK_EQ(weft_chan_create_opts(&c, &z), -EINVAL);
	}
	weft_chan_opts_t s0 = {.elem_size = 0, .capacity = 4, .overflow = WEFT_OVERFLOW_SPILL};
	CHECK_EQ(weft_chan_create_opts(&c, &s0), -EINVAL);
	weft_chan_opts_t nd = {.elem_size = 8, .capacity = 4, .overflow = WEFT_OVERFLOW_SPILL,
			       .spill_dir = "/nonexistent/weft-test-dir"};
	CHECK_EQ(weft_chan_create_opts(&c, &nd), -ENOENT);
	CHECK(c == NULL);
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(NULL, &st), -EINVAL);
	/* BLOCK through opts is the plain channel, with counters */
	weft_chan_opts_t b = {.elem_size = 8, .capacity = 4};
	CHECK_EQ(weft_chan_create_opts(&c, &b), 0);
	CHECK_EQ(weft_chan_stats(c, NULL), -EINVAL);
	for (uint64_t i = 0; i < 10; i++) {
		CHECK_EQ(weft_chan_send(c, &i), 0);
		CHECK_EQ(weft_chan_recv(c, &i), 0);
	}
	uint64_t v = 1;
	CHECK_EQ(weft_chan_send(c, &v), 0);
	CHECK_EQ(weft_chan_try_send(c, &v), 0);
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, 12);
	CHECK_EQ(st.received, 10);
	CHECK_EQ(st.len, 2);
	CHECK_EQ(st.dropped, 0);
	CHECK_EQ(st.overflow, WEFT_OVERFLOW_BLOCK);
	weft_chan_destroy(c);
}

static void test_drop_newest(void)
{
	weft_chan_t *c = mk(WEFT_OVERFLOW_DROP_NEWEST, 8, 4);
	uint64_t v;
	for (v = 0; v < 4; v++)
		CHECK_EQ(weft_chan_send(c, &v), 0);
	v = 100;
	CHECK_EQ(weft_chan_send(c, &v), -ENOBUFS);
	CHECK_EQ(weft_chan_try_send(c, &v), -ENOBUFS);
	CHECK_EQ(weft_chan_send_until(c, &v, weft_now() - 1), -ENOBUFS);
	CHECK_EQ(weft_chan_send_until(c, &v, WEFT_FOREVER), -ENOBUFS);
	CHECK_EQ(weft_chan_send_ctx(c, &v, weft_ctx_background()), -ENOBUFS);
	CHECK_EQ(weft_chan_send_many(c, &v, 1), -ENOBUFS);
	weft_case_t cs[1] = {{.chan = c, .op = WEFT_SEND, .elem = &v}};
	CHECK_EQ(weft_select(cs, 1), 0);
	CHECK_EQ(cs[0].err, -ENOBUFS);
	CHECK_EQ(weft_select_try(cs, 1), 0);
	CHECK_EQ(cs[0].err, -ENOBUFS);
	CHECK_EQ(v, 100); /* still the caller's */
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.dropped, 8);
	CHECK_EQ(st.sent, 4);
	CHECK_EQ(st.len, 4);
	CHECK_EQ(weft_chan_len(c), 4);
	for (uint64_t i = 0; i < 4; i++) {
		CHECK_EQ(weft_chan_recv(c, &v), 0);
		CHECK_EQ(v, i);
	}
	/* room again: a send of many sends what fits */
	uint64_t many[6] = {10, 11, 12, 13, 14, 15};
	CHECK_EQ(weft_chan_send_many(c, many, 6), 4);
	CHECK_EQ(weft_chan_close(c), 0);
	CHECK_EQ(weft_chan_send(c, &v), -EPIPE);
	for (uint64_t i = 0; i < 4; i++) {
		CHECK_EQ(weft_chan_recv(c, &v), 0);
		CHECK_EQ(v, 10 + i);
	}
	CHECK_EQ(weft_chan_recv(c, &v), -EPIPE);
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.received, 8);
	weft_chan_destroy(c);
}

struct drops {
	_Atomic uint64_t n;
	_Atomic uint64_t sum;
	uint8_t *seen; /* by value */
	uint64_t nvals;
};

static void on_drop(void *elem, void *user)
{
	struct drops *d = user;
	uint64_t v = *(uint64_t *)elem;
	CHECK(v < d->nvals);
	CHECK_EQ(d->seen[v]++, 0); /* each evicted element once */
	atomic_fetch_add(&d->n, 1);
}

static void test_drop_oldest(void)
{
	struct drops d = {.nvals = 10};
	d.seen = calloc(10, 1);
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 4, .overflow = WEFT_OVERFLOW_DROP_OLDEST,
			      .on_drop = on_drop, .user = &d};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	for (uint64_t v = 0; v < 8; v++)
		CHECK_EQ(weft_chan_send(c, &v), 0);
	uint64_t v = 8;
	CHECK_EQ(weft_chan_try_send(c, &v), 0);
	v = 9;
	CHECK_EQ(weft_chan_send_until(c, &v, weft_now() - 1), 0);
	CHECK_EQ(d.n, 6);
	for (uint64_t i = 0; i < 6; i++)
		CHECK_EQ(d.seen[i], 1);
	for (uint64_t i = 6; i < 10; i++) {
		CHECK_EQ(weft_chan_recv(c, &v), 0);
		CHECK_EQ(v, i);
	}
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, 10);
	CHECK_EQ(st.dropped, 6);
	CHECK_EQ(st.received, 4);
	weft_chan_destroy(c);
	free(d.seen);
}

/* 4 senders, 1 receiver: every value is received or evicted, once */
struct dro {
	weft_chan_t *c;
	uint64_t base, n;
};

static void *dro_sender(void *a)
{
	struct dro *s = a;
	for (uint64_t i = 0; i < s->n; i++) {
		uint64_t v = s->base + i;
		CHECK_EQ(weft_chan_send(s->c, &v), 0);
	}
	return NULL;
}

static _Atomic uint64_t g_drop_count;
static uint8_t *g_drop_seen;

static void on_drop_conc(void *elem, void *user)
{
	(void)user;
	uint64_t v = *(uint64_t *)elem;
	CHECK_EQ(__atomic_fetch_add(&g_drop_seen[v], 1, __ATOMIC_RELAXED), 0);
	atomic_fetch_add(&g_drop_count, 1);
}

static void test_drop_oldest_concurrent(void)
{
	const uint64_t per = g_items / 4, total = 4 * per;
	g_drop_seen = calloc(total, 1);
	g_drop_count = 0;
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 16, .overflow = WEFT_OVERFLOW_DROP_OLDEST,
			      .on_drop = on_drop_conc};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	pthread_t t[4];
	struct dro s[4];
	for (int i = 0; i < 4; i++) {
		s[i] = (struct dro){c, (uint64_t)i * per, per};
		participant_create(&t[i], NULL, dro_sender, &s[i]);
	}
	uint64_t got = 0, v, last[4] = {0};
	bool first[4] = {true, true, true, true};
	for (;;) {
		int rc = weft_chan_recv_until(c, &v, weft_deadline(2000000));
		if (rc == -ETIMEDOUT) {
			/* every send accepted and nothing left: done */
			weft_chan_stats_t st;
			CHECK_EQ(weft_chan_stats(c, &st), 0);
			if (st.sent == total && weft_chan_len(c) == 0)
				break;
			continue;
		}
		CHECK_EQ(rc, 0);
		CHECK(v < total);
		CHECK_EQ(__atomic_fetch_add(&g_drop_seen[v], 1, __ATOMIC_RELAXED), 0);
		int k = (int)(v / per);
		CHECK(first[k] || v > last[k]); /* FIFO per sender */
		first[k] = false;
		last[k] = v;
		got++;
	}
	for (int i = 0; i < 4; i++)
		participant_join(t[i]);
	while (weft_chan_try_recv(c, &v) == 0) {
		CHECK_EQ(__atomic_fetch_add(&g_drop_seen[v], 1, __ATOMIC_RELAXED), 0);
		got++;
	}
	CHECK_EQ(got + g_drop_count, total);
	for (uint64_t i = 0; i < total; i++)
		CHECK_EQ(g_drop_seen[i], 1);
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.dropped, g_drop_count);
	CHECK_EQ(st.sent, total);
	CHECK_EQ(st.received, got);
	weft_chan_destroy(c);
	free(g_drop_seen);
}

/* ---- SPILL ---- */

struct big {
	uint64_t seq;
	uint64_t pad[5]; /* 48 bytes: 85 per 4 KiB block */
};

static void test_spill_fifo(void)
{
	const uint64_t n = g_items / 4;
	weft_chan_t *c = mk(WEFT_OVERFLOW_SPILL, sizeof(struct big), 8);
	CHECK_EQ(dir_entries(g_dir), 0);
	struct big b = {0};
	for (uint64_t i = 0; i < n; i++) {
		b.seq = i;
		b.pad[4] = ~i;
		CHECK_EQ(i % 3 ? weft_chan_send(c, &b) : weft_chan_try_send(c, &b), 0);
	}
	CHECK_EQ(weft_chan_len(c), n);
	CHECK_EQ(weft_chan_cap(c), 8);
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, n);
	CHECK_EQ(st.spilled, n - 8);
	CHECK_EQ(st.spill_bytes, (n - 8) * sizeof b);
	CHECK(st.spill_file_written >= (n - 8 - 2 * 85) * sizeof b);
	CHECK_EQ(st.overflow, WEFT_OVERFLOW_SPILL);
	CHECK_EQ(dir_entries(g_dir), 0); /* the file has no name */
	/* half out, then interleave sends and receives across the boundary */
	uint64_t next = 0, sent = n;
	for (; next < n / 2; next++) {
		CHECK_EQ(weft_chan_recv(c, &b), 0);
		CHECK_EQ(b.seq, next);
		CHECK_EQ(b.pad[4], ~next);
	}
	for (uint64_t i = 0; i < n / 2; i++) {
		b.seq = sent;
		b.pad[4] = ~sent;
		CHECK_EQ(weft_chan_send(c, &b), 0);
		sent++;
		for (int k = 0; k < 2 && next < sent; k++, next++) {
			CHECK_EQ(k ? weft_chan_try_recv(c, &b) : weft_chan_recv(c, &b), 0);
			CHECK_EQ(b.seq, next);
			CHECK_EQ(b.pad[4], ~next);
		}
	}
	/* close and drain: spilled elements included */
	CHECK_EQ(weft_chan_close(c), 0);
	CHECK_EQ(weft_chan_send(c, &b), -EPIPE);
	struct big many[7];
	while (next < sent) {
		long k = weft_chan_recv_many(c, many, 7);
		CHECK(k >= 1);
		for (long j = 0; j < k; j++, next++)
			CHECK_EQ(many[j].seq, next);
	}
	CHECK_EQ(weft_chan_recv(c, &b), -EPIPE);
	CHECK_EQ(weft_chan_try_recv(c, &b), -EPIPE);
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, sent);
	CHECK_EQ(st.received, sent);
	CHECK_EQ(st.spill_bytes, 0);
	CHECK_EQ(st.len, 0);
	CHECK(st.spill_file_read > 0);
	weft_chan_destroy(c);
	CHECK_EQ(dir_entries(g_dir), 0);
}

static void test_spill_max(void)
{
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 4, .overflow = WEFT_OVERFLOW_SPILL,
			      .spill_dir = g_dir, .spill_max_bytes = 64 * 8};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	uint64_t v;
	for (v = 0; v < 4 + 64; v++)
		CHECK_EQ(weft_chan_send(c, &v), 0);
	CHECK_EQ(weft_chan_try_send(c, &v), -EAGAIN);
	CHECK_EQ(weft_chan_send_until(c, &v, weft_deadline(2000000)), -ETIMEDOUT);
	weft_ctx_t *ctx;
	CHECK_EQ(weft_ctx_with_timeout(&ctx, weft_ctx_background(), 1000000), 0);
	CHECK_EQ(weft_chan_send_ctx(c, &v, ctx), -ETIMEDOUT);
	weft_ctx_release(ctx);
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.spill_bytes, 64 * 8);
	CHECK_EQ(st.len, 68);
	/* a blocked send is released by a receive */
	struct dro s = {c, 68, 10};
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, dro_sender, &s), 0);
	for (uint64_t i = 0; i < 78; i++) {
		CHECK_EQ(weft_chan_recv(c, &v), 0);
		CHECK_EQ(v, i);
	}
	pthread_join(t, NULL);
	CHECK_EQ(weft_chan_len(c), 0);
	weft_chan_destroy(c);
}

/* a select RECV case whose element is only in the spill */
static void test_spill_select(void)
{
	weft_chan_t *c = mk(WEFT_OVERFLOW_SPILL, 8, 2);
	weft_chan_t *other;
	CHECK_EQ(weft_chan_create(&other, 8, 1), 0);
	uint64_t v;
	for (v = 0; v < 5; v++)
		CHECK_EQ(weft_chan_send(c, &v), 0);
	for (uint64_t i = 0; i < 5; i++) {
		weft_case_t cs[2] = {{.chan = other, .op = WEFT_RECV, .elem = &v},
				     {.chan = c, .op = WEFT_RECV, .elem = &v}};
		CHECK_EQ(i % 2 ? weft_select_try(cs, 2) : weft_select(cs, 2), 1);
		CHECK_EQ(cs[1].err, 0);
		CHECK_EQ(v, i);
	}
	weft_case_t cs[2] = {{.chan = other, .op = WEFT_RECV, .elem = &v},
			     {.chan = c, .op = WEFT_RECV, .elem = &v}};
	CHECK_EQ(weft_select_try(cs, 2), -EAGAIN);
	/* a RECV case with no element drops what it takes, from the write
	 * block and from the file alike (memcpy to NULL crashed; found by
	 * fuzz_select) */
	for (v = 0; v < 2 + 4 * 512 + 3; v++) /* ring, 4 blocks on disk, 3 in memory */
		CHECK_EQ(weft_chan_send(c, &v), 0);
	weft_case_t drop[1] = {{.chan = c, .op = WEFT_RECV, .elem = NULL}};
	for (uint64_t i = 0; i < 2 + 4 * 512 + 3 - 1; i++) {
		CHECK_EQ(weft_select_try(drop, 1), 0);
		CHECK_EQ(drop[0].err, 0);
	}
	CHECK_EQ(weft_chan_recv(c, &v), 0);
	CHECK_EQ(v, 2 + 4 * 512 + 3 - 1);
	CHECK_EQ(weft_chan_len(c), 0);
	weft_chan_destroy(c);
	weft_chan_destroy(other);
}

/* a select SEND case on a SPILL channel at its limit whose ring has room
 * (a receive took from the ring, the spill stays full): not ready, so
 * select_try says -EAGAIN and select_until times out (both hung: the
 * ring's room made them retry forever; found by fuzz_select) */
static void test_spill_select_at_limit(void)
{
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 2, .overflow = WEFT_OVERFLOW_SPILL,
			      .spill_dir = g_dir, .spill_max_bytes = 8};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	uint64_t v;
	for (v = 0; v < 3; v++) /* two in the ring, one in the spill: its limit */
		CHECK_EQ(weft_chan_send(c, &v), 0);
	CHECK_EQ(weft_chan_recv(c, &v), 0);
	CHECK_EQ(v, 0);
	weft_case_t cs[1] = {{.chan = c, .op = WEFT_SEND, .elem = &v}};
	CHECK_EQ(weft_select_try(cs, 1), -EAGAIN);
	CHECK_EQ(weft_select_until(cs, 1, weft_deadline(1000000)), -ETIMEDOUT);
	CHECK_EQ(weft_chan_try_send(c, &v), -EAGAIN);
	/* the spill empties: ready again */
	CHECK_EQ(weft_chan_recv(c, &v), 0);
	CHECK_EQ(weft_chan_recv(c, &v), 0);
	CHECK_EQ(v, 2);
	v = 3;
	CHECK_EQ(weft_select_try(cs, 1), 0);
	CHECK_EQ(cs[0].err, 0);
	CHECK_EQ(weft_chan_recv(c, &v), 0);
	CHECK_EQ(v, 3);
	weft_chan_destroy(c);
}

/* 3 senders x 2 receivers through a small ring and small blocks */
struct sp_recv {
	weft_chan_t *c;
	uint64_t per;
	uint8_t *seen;
	uint64_t got;
};

static void *sp_receiver(void *a)
{
	struct sp_recv *r = a;
	uint64_t v, last[3] = {0};
	bool first[3] = {true, true, true};
	while (weft_chan_recv(r->c, &v) == 0) {
		int k = (int)(v / r->per);
		CHECK(k < 3);
		CHECK(first[k] || v > last[k]); /* FIFO per sender */
		first[k] = false;
		last[k] = v;
		CHECK_EQ(__atomic_fetch_add(&r->seen[v], 1, __ATOMIC_RELAXED), 0);
		r->got++;
	}
	return NULL;
}

static void test_spill_concurrent(bool tasks)
{
	participants_tasks(tasks);
	const uint64_t per = g_items / 3;
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 16, .overflow = WEFT_OVERFLOW_SPILL,
			      .spill_dir = g_dir, .spill_block_bytes = 512};
	weft_chan_t *c;
	CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
	uint8_t *seen = calloc(3 * per, 1);
	pthread_t ts[3], tr[2];
	struct dro s[3];
	struct sp_recv r[2];
	for (int i = 0; i < 3; i++) {
		s[i] = (struct dro){c, (uint64_t)i * per, per};
		participant_create(&ts[i], NULL, dro_sender, &s[i]);
	}
	for (int i = 0; i < 2; i++) {
		r[i] = (struct sp_recv){c, per, seen, 0};
		participant_create(&tr[i], NULL, sp_receiver, &r[i]);
	}
	for (int i = 0; i < 3; i++)
		participant_join(ts[i]);
	CHECK_EQ(weft_chan_close(c), 0);
	for (int i = 0; i < 2; i++)
		participant_join(tr[i]);
	CHECK_EQ(r[0].got + r[1].got, 3 * per);
	for (uint64_t i = 0; i < 3 * per; i++)
		CHECK_EQ(seen[i], 1);
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, 3 * per);
	CHECK_EQ(st.received, 3 * per);
	weft_chan_destroy(c);
	free(seen);
	participants_tasks(false);
}

static void test_spill_concurrent_threads(void)
{
	test_spill_concurrent(false);
}

static void test_spill_concurrent_tasks(void)
{
	test_spill_concurrent(true);
}

/* A disk error: the file may not grow past 64 KiB. The send that needs
 * a block written fails with -EFBIG and its element is not queued;
 * everything accepted before is delivered, in order; once the limit is
 * lifted the next send writes the block and goes on. */
static void test_spill_disk_error(void)
{
	struct rlimit old, lim;
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	weft_chan_t *c = mk(WEFT_OVERFLOW_SPILL, 64, 4);
	lim = old;
	lim.rlim_cur = 64 * 1024;
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	unsigned char e[64];
	uint64_t accepted = 0;
	int rc = 0;
	for (uint64_t i = 0; i < 100000; i++) {
		memset(e, (int)(i & 0xff), sizeof e);
		memcpy(e, &i, 8);
		rc = weft_chan_send(c, e);
		if (rc)
			break;
		accepted++;
	}
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
	CHECK_EQ(rc, -EFBIG);
	/* 64 KiB of 4 KiB blocks on disk, one block in memory, the ring */
	CHECK_EQ(accepted, 4 + (64 * 1024 / 4096 + 1) * (4096 / 64));
	weft_chan_stats_t st;
	CHECK_EQ(weft_chan_stats(c, &st), 0);
	CHECK_EQ(st.sent, accepted);
	CHECK_EQ(weft_chan_len(c), accepted);
	/* the limit lifted: the failed write is retried by the next send */
	memcpy(e, &accepted, 8);
	memset(e + 8, (int)(accepted & 0xff), sizeof e - 8);
	CHECK_EQ(weft_chan_send(c, e), 0);
	accepted++;
	weft_chan_close(c);
	for (uint64_t i = 0; i < accepted; i++) {
		CHECK_EQ(weft_chan_recv(c, e), 0);
		uint64_t v;
		memcpy(&v, e, 8);
		CHECK_EQ(v, i);
		CHECK_EQ(e[63], (unsigned char)(i & 0xff));
	}
	CHECK_EQ(weft_chan_recv(c, e), -EPIPE);
	weft_chan_destroy(c);
	signal(SIGXFSZ, prev);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		g_items = strtoull(argv[1], NULL, 10);
	else if (SANITIZED)
		g_items = 20000;
	test_watchdog(240);
	make_temp_dir(g_dir, sizeof g_dir, "weft-ovf");
	RUN(test_bad_input);
	RUN(test_drop_newest);
	RUN(test_drop_oldest);
	RUN(test_drop_oldest_concurrent);
	RUN(test_spill_fifo);
	RUN(test_spill_max);
	RUN(test_spill_select);
	RUN(test_spill_select_at_limit);
	RUN(test_spill_concurrent_threads);
	RUN(test_spill_concurrent_tasks);
	RUN(test_spill_disk_error);
	CHECK_EQ(dir_entries(g_dir), 0);
	CHECK_EQ(rmdir(g_dir), 0);
	printf("test_chan_overflow: passed\n");
	return 0;
}
