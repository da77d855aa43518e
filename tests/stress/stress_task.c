/* tests/stress/stress_task.c: the task runtime under a random mix.
 *
 * Sub-tests:
 *   mix    NT tasks each do K random operations: sends and receives on
 *          shared channels of capacity 0, 1 and 64 (plain, and with short
 *          deadlines that often pass), weft_sleep of 0-50 us, weft_yield,
 *          and starting a child task; plain threads send and receive on
 *          the same channels, and a sweeper task keeps receiving so a
 *          blocking send always finds a partner in the end. Every value accepted by a send is received
 *          exactly once (after the close, what is left is drained), every
 *          child runs once, nothing is invented.
 *   procs  the same while the main thread changes the carrier count
 *          (weft_runtime_set_procs 1..4) every few milliseconds.
 *
 * Usage: stress_task [size]. size (default 1, may be fractional) multiplies
 * the operation counts; sanitizer builds divide them by 10 (and
 * ThreadSanitizer, whose fiber per task is slow to make, by 20).
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_task: items moved N lost
 * 0", counts values received exactly once and child tasks run once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/chan.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#define STRESS_OWN_HARNESS
#include "stress.h"

#if defined(__SANITIZE_THREAD__)
#define SCALE_DIV 20
#elif defined(__SANITIZE_ADDRESS__)
#define SCALE_DIV 10
#else
#define SCALE_DIV 1
#endif

#define NCH 3
#define NTHREADS 2

static double g_size = 1.0;

struct mix {
	weft_chan_t *ch[NCH];
	unsigned nt;       /* tasks (ids 0..nt-1); threads: ids nt.. */
	unsigned k;        /* operations each */
	atomic_uchar *seen; /* (id, seq) received */
	atomic_ulong sent, received, children, children_ran;
	weft_wg_t senders, receivers, kids;
	atomic_int bad, stop;
};

struct actor {
	struct mix *m;
	unsigned id;
	uint64_t rng;
	unsigned seq; /* values this actor sent (accepted) */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void take(struct mix *m, uint64_t v)
{
	uint64_t id = v >> 32, seq = v & 0xffffffffu;
	if (id >= m->nt + NTHREADS || seq >= m->k || atomic_fetch_add(&m->seen[id * m->k + seq], 1)) {
		fprintf(stderr, "stress_task: invented or repeated value %#llx\n", (unsigned long long)v);
		atomic_fetch_add(&m->bad, 1);
	}
	atomic_fetch_add(&m->received, 1);
}

static void child(void *p)
{
	struct mix *m = p;
	atomic_fetch_add(&m->children_ran, 1);
	weft_wg_done(&m->kids);
}

/* One random step; sends only while the actor has values left. */
static void step(struct actor *a, bool may_block)
{
	struct mix *m = a->m;
	weft_chan_t *ch = m->ch[rnd(&a->rng) % NCH];
	uint64_t v, r = rnd(&a->rng) % 16;
	int rc;

	if (r < 6 && a->seq < m->k) {
		v = (uint64_t)a->id << 32 | a->seq;
		rc = r < 3 && may_block ? weft_chan_send(ch, &v)
					: weft_chan_send_until(ch, &v, weft_deadline((int64_t)(rnd(&a->rng) % 20000)));
		if (rc == 0) {
			a->seq++;
			atomic_fetch_add(&m->sent, 1);
		} else if (rc != -ETIMEDOUT) {
			atomic_fetch_add(&m->bad, 1);
		}
	} else if (r < 11) {
		rc = weft_chan_recv_until(ch, &v, weft_deadline((int64_t)(rnd(&a->rng) % 20000)));
		if (rc == 0)
			take(m, v);
		else if (rc != -ETIMEDOUT)
			atomic_fetch_add(&m->bad, 1);
	} else if (r < 13) {
		weft_sleep((int64_t)(rnd(&a->rng) % 50000));
	} else if (r < 15) {
		weft_yield();
	} else if (weft_in_task()) {
		weft_wg_add(&m->kids, 1);
		atomic_fetch_add(&m->children, 1);
		CHECK_EQ(weft_go(child, m), 0);
	}
}

static void task_actor(void *p)
{
	struct actor *a = p;
	for (unsigned i = 0; i < a->m->k; i++)
		step(a, true);
	weft_wg_done(&a->m->senders);
}

static void *thread_actor(void *p)
{
	struct actor *a = p;
	for (unsigned i = 0; i < a->m->k; i++)
		step(a, false);
	weft_wg_done(&a->m->senders);
	return NULL;
}

/* while the actors run: keep receiving, so a plain (blocking) send always
 * finds a partner in the end, whatever the others do */
static void sweeper(void *p)
{
	struct mix *m = p;
	uint64_t v;
	for (unsigned c = 0; !atomic_load(&m->stop); c = (c + 1) % NCH)
		if (weft_chan_recv_until(m->ch[c], &v, weft_deadline(200000)) == 0)
			take(m, v);
	weft_wg_done(&m->receivers);
}

/* after the close: drain what is left */
static void drainer(void *p)
{
	struct mix *m = p;
	for (unsigned c = 0; c < NCH; c++) {
		uint64_t v;
		while (weft_chan_recv(m->ch[c], &v) == 0)
			take(m, v);
	}
	weft_wg_done(&m->receivers);
}

static void run_mix(bool change_procs)
{
	static const size_t caps[NCH] = {0, 1, 64};
	struct mix m = {.nt = 200, .k = (unsigned)(2000 * g_size / SCALE_DIV)};
	if (m.k < 20)
		m.k = 20;
	unsigned na = m.nt + NTHREADS;
	struct actor *a = calloc(na, sizeof *a);
	pthread_t th[NTHREADS];
	int64_t t0 = weft_now();

	m.seen = calloc((size_t)na * m.k, 1);
	CHECK(a && m.seen);
	for (unsigned c = 0; c < NCH; c++)
		CHECK_EQ(weft_chan_create(&m.ch[c], sizeof(uint64_t), caps[c]), 0);
	weft_wg_init(&m.senders);
	weft_wg_init(&m.receivers);
	weft_wg_init(&m.kids);
	weft_wg_add(&m.senders, na);
	weft_wg_add(&m.receivers, 1);
	CHECK_EQ(weft_go(sweeper, &m), 0);
	for (unsigned i = 0; i < na; i++) {
		uint64_t key = 0x9E3779B97F4A7C15ull * (i + 1);
		a[i] = (struct actor){.m = &m, .id = i,
				      .rng = stress_seed_or(key ^ (uint64_t)t0, key ^ change_procs)};
		if (i < m.nt)
			CHECK_EQ(weft_go(task_actor, &a[i]), 0);
		else
			CHECK_EQ(pthread_create(&th[i - m.nt], NULL, thread_actor, &a[i]), 0);
	}
	uint64_t r = stress_seed_or((uint64_t)t0 | 1, 1);
	while (change_procs && weft_wg_wait_until(&m.senders, weft_deadline(3000000)) == -ETIMEDOUT)
		CHECK_EQ(weft_runtime_set_procs(1 + (unsigned)(rnd(&r) % 4)), 0);
	CHECK_EQ(weft_wg_wait(&m.senders), 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&m.stop, 1);
	CHECK_EQ(weft_wg_wait(&m.receivers), 0);
	for (unsigned c = 0; c < NCH; c++)
		CHECK_EQ(weft_chan_close(m.ch[c]), 0);
	weft_wg_add(&m.receivers, 1);
	CHECK_EQ(weft_go(drainer, &m), 0);
	CHECK_EQ(weft_wg_wait(&m.receivers), 0);
	CHECK_EQ(weft_wg_wait(&m.kids), 0);
	if (change_procs)
		CHECK_EQ(weft_runtime_set_procs(0), 0);

	CHECK_EQ(atomic_load(&m.bad), 0);
	CHECK_EQ(atomic_load(&m.received), atomic_load(&m.sent));
	CHECK_EQ(atomic_load(&m.children_ran), atomic_load(&m.children));
	/* exactly the values each actor's sends accepted: its first seq ones */
	for (unsigned i = 0; i < na; i++)
		for (unsigned s = 0; s < m.k; s++)
			CHECK_EQ(atomic_load(&m.seen[(size_t)i * m.k + s]), s < a[i].seq);
	stress_moved(atomic_load(&m.sent) + atomic_load(&m.children_ran));
	printf("stress_task %-5s %u tasks + %u threads x %u ops: %lu values once, %lu children, %.0f ms\n",
	       change_procs ? "procs" : "mix", m.nt, NTHREADS, m.k, (unsigned long)atomic_load(&m.sent),
	       (unsigned long)atomic_load(&m.children), (weft_now() - t0) / 1e6);
	for (unsigned c = 0; c < NCH; c++)
		weft_chan_destroy(m.ch[c]);
	free(m.seen);
	free(a);
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_task"))
		return 2;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	run_mix(false);
	run_mix(true);
	return stress_summary();
}
