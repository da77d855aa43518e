/* tests/stress/stress_chan_overflow.c: overflow policies under concurrency.
 *
 * Sub-tests (participants as threads, then as tasks):
 *   spill   4 senders x 3 receivers through a SPILL channel with a small
 *           ring (16) and small blocks (1 KiB: the file is written and read
 *           all the time), rounds with and without spill_max_bytes and with
 *           send / try_send / send_until / send_many mixed: every element
 *           received exactly once, FIFO per sender as each receiver sees
 *           it, nothing left, no file in the spill directory; the senders
 *           finish, the channel is closed, the receivers drain it.
 *   drop    DROP_OLDEST and DROP_NEWEST, 4 senders x 2 receivers: every
 *           value is received, evicted (on_drop) or refused (-ENOBUFS),
 *           exactly once, and the counters agree.
 *
 * Usage: stress_chan_overflow [size] [tests]. size (default 1, may be
 * fractional) multiplies every count; sanitizer builds divide them by 10.
 * Nothing here is random: WEFT_STRESS_SEED is read and printed like every
 * suite's but changes nothing. The last line, "stress_chan_overflow: items
 * moved N lost 0", counts elements received exactly once (spill) and
 * elements received or evicted to on_drop exactly once (drop; refused
 * sends, which stay the caller's, not counted).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/task.h>

#include "check.h"
#include "participant.h"
#include "tmpdir.h"
#define STRESS_OWN_HARNESS
#include "stress.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define NS 4 /* senders */

static double g_size = 1.0;
static char g_dir[256];

static uint64_t scaled(double base, uint64_t lo)
{
	double v = base * g_size / (SANITIZED ? 10 : 1);
	return v < (double)lo ? lo : (uint64_t)v;
}

struct sender {
	weft_chan_t *c;
	unsigned id;
	uint64_t per;
	int mode; /* 0 send, 1 try_send (retry), 2 send_until, 3 send_many */
	_Atomic uint8_t *fate; /* drop: 1 refused */
	uint64_t refused;
};

static uint64_t val(unsigned id, uint64_t seq)
{
	return ((uint64_t)id << 40) | seq;
}

static void *sender_main(void *a)
{
	struct sender *s = a;
	uint64_t batch[8];
	for (uint64_t i = 0; i < s->per;) {
		uint64_t v = val(s->id, i);
		int rc;
		switch (s->mode) {
		case 1:
			rc = weft_chan_try_send(s->c, &v);
			if (rc == -EAGAIN) {
				weft_yield();
				continue;
			}
			break;
		case 2:
			rc = weft_chan_send_until(s->c, &v, weft_deadline(100000));
			if (rc == -ETIMEDOUT)
				continue;
			break;
		case 3: {
			size_t k = 0;
			for (; k < 8 && i + k < s->per; k++)
				batch[k] = val(s->id, i + k);
			long m = weft_chan_send_many(s->c, batch, k);
			if (m == -ENOBUFS) {
				atomic_store(&s->fate[s->id * s->per + i], 1);
				s->refused++;
				i++;
				continue;
			}
			CHECK(m >= 1);
			i += (uint64_t)m;
			continue;
		}
		default:
			rc = weft_chan_send(s->c, &v);
		}
		if (rc == -ENOBUFS) {
			atomic_store(&s->fate[s->id * s->per + i], 1);
			s->refused++;
		} else {
			CHECK_EQ(rc, 0);
		}
		i++;
	}
	return NULL;
}

struct receiver {
	weft_chan_t *c;
	uint64_t per;
	_Atomic uint8_t *seen;
	uint64_t got;
};

static void *receiver_main(void *a)
{
	struct receiver *r = a;
	int64_t last[NS];
	for (int i = 0; i < NS; i++)
		last[i] = -1;
	uint64_t v[4];
	for (;;) {
		long k = weft_chan_recv_many(r->c, v, 1 + r->got % 4);
		if (k == -EPIPE)
			break;
		CHECK(k >= 1);
		for (long j = 0; j < k; j++) {
			unsigned id = (unsigned)(v[j] >> 40);
			uint64_t seq = v[j] & ((1ULL << 40) - 1);
			CHECK(id < NS && seq < r->per);
			CHECK((int64_t)seq > last[id]); /* FIFO per sender */
			last[id] = (int64_t)seq;
			CHECK_EQ(atomic_fetch_add(&r->seen[id * r->per + seq], 1), 0);
			r->got++;
		}
	}
	return NULL;
}

static void stress_spill(bool tasks)
{
	for (int round = 0; round < 4; round++) {
		uint64_t per = scaled(150000, 3000);
		int64_t t0 = weft_now();
		weft_chan_opts_t o = {.elem_size = 8, .capacity = 16, .overflow = WEFT_OVERFLOW_SPILL,
				      .spill_dir = g_dir, .spill_block_bytes = 1024,
				      .spill_max_bytes = round % 2 ? 4096 : 0};
		weft_chan_t *c;
		CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
		_Atomic uint8_t *seen = calloc(NS * per, 1);
		struct sender s[NS];
		struct receiver r[3];
		pthread_t ts[NS], tr[3];
		for (unsigned i = 0; i < NS; i++) {
			s[i] = (struct sender){c, i, per, (int)((i + (unsigned)round) % 4), NULL, 0};
			participant_create(&ts[i], NULL, sender_main, &s[i]);
		}
		/* in even rounds the receivers start late: the spill grows first */
		if (round % 2 == 0)
			weft_sleep(5000000);
		for (int i = 0; i < 3; i++) {
			r[i] = (struct receiver){c, per, seen, 0};
			participant_create(&tr[i], NULL, receiver_main, &r[i]);
		}
		for (int i = 0; i < NS; i++)
			participant_join(ts[i]);
		weft_chan_stats_t st;
		CHECK_EQ(weft_chan_stats(c, &st), 0);
		uint64_t spilled = st.spilled, written = st.spill_file_written;
		CHECK_EQ(dir_entries(g_dir), 0);
		CHECK_EQ(weft_chan_close(c), 0);
		for (int i = 0; i < 3; i++)
			participant_join(tr[i]);
		CHECK_EQ(r[0].got + r[1].got + r[2].got, NS * per);
		for (uint64_t i = 0; i < NS * per; i++)
			CHECK_EQ(seen[i], 1);
		CHECK_EQ(weft_chan_stats(c, &st), 0);
		CHECK_EQ(st.sent, NS * per);
		CHECK_EQ(st.received, NS * per);
		CHECK_EQ(st.len, 0);
		CHECK_EQ(st.spill_bytes, 0);
		stress_moved(NS * per);
		printf("stress_chan_overflow: %-7s spill round %d (max %5" PRIu64 " B): %" PRIu64
		       " elements, %" PRIu64 " spilled, %" PRIu64 " KiB written, %6.1f ms\n",
		       tasks ? "tasks" : "threads", round, o.spill_max_bytes, NS * per, spilled,
		       written >> 10, (double)(weft_now() - t0) / 1e6);
		weft_chan_destroy(c);
		free((void *)seen);
	}
}

static _Atomic uint8_t *g_seen;
static uint64_t g_per;
static _Atomic uint64_t g_evicted;

static void on_drop(void *elem, void *user)
{
	(void)user;
	uint64_t v = *(uint64_t *)elem;
	unsigned id = (unsigned)(v >> 40);
	uint64_t seq = v & ((1ULL << 40) - 1);
	CHECK(id < NS && seq < g_per);
	CHECK_EQ(atomic_fetch_add(&g_seen[id * g_per + seq], 1), 0);
	atomic_fetch_add(&g_evicted, 1);
}

static void stress_drop(bool tasks)
{
	for (int pol = WEFT_OVERFLOW_DROP_NEWEST; pol <= WEFT_OVERFLOW_DROP_OLDEST; pol++) {
		uint64_t per = scaled(200000, 3000);
		int64_t t0 = weft_now();
		g_per = per;
		g_evicted = 0;
		g_seen = calloc(NS * per, 1);
		_Atomic uint8_t *refused = calloc(NS * per, 1);
		weft_chan_opts_t o = {.elem_size = 8, .capacity = 32, .overflow = pol,
				      .on_drop = on_drop};
		weft_chan_t *c;
		CHECK_EQ(weft_chan_create_opts(&c, &o), 0);
		struct sender s[NS];
		struct receiver r[2];
		pthread_t ts[NS], tr[2];
		for (unsigned i = 0; i < NS; i++) {
			s[i] = (struct sender){c, i, per, (int)(i % 4), refused, 0};
			participant_create(&ts[i], NULL, sender_main, &s[i]);
		}
		for (int i = 0; i < 2; i++) {
			r[i] = (struct receiver){c, per, g_seen, 0};
			participant_create(&tr[i], NULL, receiver_main, &r[i]);
		}
		uint64_t nref = 0;
		for (int i = 0; i < NS; i++) {
			participant_join(ts[i]);
			nref += s[i].refused;
		}
		CHECK_EQ(weft_chan_close(c), 0);
		for (int i = 0; i < 2; i++)
			participant_join(tr[i]);
		uint64_t got = r[0].got + r[1].got;
		for (uint64_t i = 0; i < NS * per; i++)
			CHECK_EQ(g_seen[i] + refused[i], 1); /* received, evicted or refused: once */
		weft_chan_stats_t st;
		CHECK_EQ(weft_chan_stats(c, &st), 0);
		CHECK_EQ(got + g_evicted + nref, NS * per);
		CHECK_EQ(st.received, got);
		if (pol == WEFT_OVERFLOW_DROP_NEWEST) {
			CHECK_EQ(g_evicted, 0);
			CHECK_EQ(st.dropped, nref);
			CHECK_EQ(st.sent, got);
		} else {
			CHECK_EQ(nref, 0);
			CHECK_EQ(st.dropped, g_evicted);
			CHECK_EQ(st.sent, NS * per);
		}
		stress_moved(got + g_evicted);
		printf("stress_chan_overflow: %-7s %s: %" PRIu64 " sent, %" PRIu64
		       " received, %" PRIu64 " dropped, %6.1f ms\n",
		       tasks ? "tasks" : "threads",
		       pol == WEFT_OVERFLOW_DROP_NEWEST ? "drop_newest" : "drop_oldest", NS * per,
		       got, st.dropped, (double)(weft_now() - t0) / 1e6);
		weft_chan_destroy(c);
		free((void *)g_seen);
		free((void *)refused);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : NULL;
	test_watchdog((unsigned)(400 * (g_size < 1 ? 1 : g_size)));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_chan_overflow"))
		return 2;
	make_temp_dir(g_dir, sizeof g_dir, "weft-ovs");
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		if (!only || strstr(only, "spill"))
			stress_spill(tasks);
		if (!only || strstr(only, "drop"))
			stress_drop(tasks);
	}
	CHECK_EQ(dir_entries(g_dir), 0);
	CHECK_EQ(rmdir(g_dir), 0);
	return stress_summary();
}
