/* overflow_policies: a fast producer and a slow consumer, met in turn by
 * each answer to backpressure the seed names: block, drop, spill to disk,
 * scale the workers.
 *
 * The producer sends 2000 elements of 64 bytes as fast as it can into a
 * channel of 100; the consumer takes one every 50 us. Each policy prints
 * what it did:
 *   block        the producer waits for room (its blocked time)
 *   drop_newest  a send that finds the channel full is refused (-ENOBUFS):
 *                the element stays the producer's; the count
 *   drop_oldest  the oldest buffered element is evicted and handed to
 *                on_drop (which would free what it owns); the count
 *   spill        what does not fit in memory goes to an unlinked file in
 *                $TMPDIR (4 KiB blocks here) and comes back in order
 *   scale        a pipeline stage with 1 worker and max_workers 8, each
 *                item taking 2 ms: workers are added while its input
 *                stays backed up, and retire when idle
 * Every line is checked (nothing lost or invented, order kept where the
 * policy keeps it); the figures vary from run to run.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

#define N 2000

struct elem {
	uint64_t seq;
	char payload[56];
};

struct consumer {
	weft_chan_t *c;
	uint64_t got, in_order, last;
};

static void *consume(void *a)
{
	struct consumer *k = a;
	struct elem e;
	k->in_order = 1;
	while (weft_chan_recv(k->c, &e) == 0) {
		if (k->got && e.seq <= k->last)
			k->in_order = 0;
		k->last = e.seq;
		k->got++;
		weft_sleep(50000);
	}
	return NULL;
}

static uint64_t evicted;

static void on_drop(void *elem, void *user)
{
	(void)elem;
	(void)user;
	evicted++; /* a real element's resources would be freed here */
}

static int run(int policy, const char *name)
{
	weft_chan_opts_t o = {.elem_size = sizeof(struct elem), .capacity = 100, .overflow = policy,
			      .on_drop = on_drop, .spill_block_bytes = 4096};
	weft_chan_t *c;
	int rc = weft_chan_create_opts(&c, &o);
	if (rc) {
		printf("%s: create: %s\n", name, weft_strerror(rc));
		return 1;
	}
	struct consumer k = {c, 0, 0, 0};
	pthread_t t;
	pthread_create(&t, NULL, consume, &k);
	struct elem e;
	memset(&e, 0, sizeof e);
	uint64_t refused = 0;
	int64_t t0 = weft_now();
	for (uint64_t i = 0; i < N; i++) {
		e.seq = i;
		rc = weft_chan_send(c, &e);
		if (rc == -ENOBUFS)
			refused++;
		else if (rc)
			return 1;
	}
	double send_ms = (double)(weft_now() - t0) / 1e6;
	weft_chan_stats_t st;
	weft_chan_stats(c, &st);
	weft_chan_close(c);
	pthread_join(t, NULL);
	double all_ms = (double)(weft_now() - t0) / 1e6;
	weft_chan_stats_t end;
	weft_chan_stats(c, &end);
	weft_chan_destroy(c);
	int ok = k.in_order;
	switch (policy) {
	case WEFT_OVERFLOW_BLOCK:
		ok &= k.got == N;
		printf("block:       producer blocked %.0f of %.0f ms; %llu of %d received, in order\n",
		       send_ms, all_ms, (unsigned long long)k.got, N);
		break;
	case WEFT_OVERFLOW_DROP_NEWEST:
		ok &= k.got + refused == N && end.dropped == refused;
		printf("drop_newest: %llu refused (-ENOBUFS, still the producer's), %llu received; "
		       "producer done in %.1f ms\n",
		       (unsigned long long)refused, (unsigned long long)k.got, send_ms);
		break;
	case WEFT_OVERFLOW_DROP_OLDEST:
		ok &= k.got + evicted == N && end.dropped == evicted && refused == 0;
		printf("drop_oldest: %llu evicted (each handed to on_drop once), %llu received, the "
		       "newest; producer done in %.1f ms\n",
		       (unsigned long long)evicted, (unsigned long long)k.got, send_ms);
		break;
	default:
		ok &= k.got == N && end.spill_bytes == 0;
		printf("spill:       %llu elements spilled, %llu KiB in the spill when the producer "
		       "finished (%llu KiB written to the file), %llu received in order; producer done "
		       "in %.1f ms\n",
		       (unsigned long long)end.spilled, (unsigned long long)(st.spill_bytes >> 10),
		       (unsigned long long)(end.spill_file_written >> 10),
		       (unsigned long long)k.got, send_ms);
	}
	return ok ? 0 : 1;
}

static int slow_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	weft_sleep(2000000);
	return weft_emit(out, in);
}

static int run_scale(void)
{
	weft_chan_t *in, *out;
	weft_pipeline_t *p;
	if (weft_chan_create(&in, 8, 32) || weft_pipeline_create(&p, NULL))
		return 1;
	weft_stage_opts_t o = {.name = "slow", .workers = 1, .max_workers = 8,
			       .out_capacity = 400, .idle_ns = 5000000};
	if (weft_pipeline_stage(p, in, &out, slow_fn, NULL, &o))
		return 1;
	int64_t t0 = weft_now();
	unsigned most = 1;
	weft_stage_stats_t st;
	for (uint64_t i = 0; i < 400; i++) {
		weft_chan_send(in, &i);
		weft_pipeline_stats(p, &st, 1);
		if (st.workers > most)
			most = st.workers;
	}
	/* drained: wait (bounded) for the extra workers to retire when idle */
	for (int i = 0; i < 2000; i++) {
		weft_pipeline_stats(p, &st, 1);
		if (st.in == 400 && st.workers == 1)
			break;
		weft_sleep(1000000);
	}
	double ms = (double)(weft_now() - t0) / 1e6;
	weft_chan_close(in);
	int rc = weft_pipeline_wait(p);
	weft_pipeline_stats(p, &st, 1);
	printf("scale:       1 worker grew to %u (%llu added, %llu retired when idle), 400 items of "
	       "2 ms in %.0f ms (one worker: 800 ms)\n",
	       most, (unsigned long long)st.workers_added, (unsigned long long)st.workers_retired,
	       ms);
	int ok = rc == 0 && weft_chan_len(out) == 400 && st.workers_added >= 1 &&
		 st.workers_retired == st.workers_added;
	weft_pipeline_destroy(p);
	weft_chan_destroy(in);
	return ok ? 0 : 1;
}

int main(void)
{
	printf("producer: %d elements of 64 bytes into a channel of 100; consumer: one per 50 us\n",
	       N);
	int bad = run(WEFT_OVERFLOW_BLOCK, "block");
	bad |= run(WEFT_OVERFLOW_DROP_NEWEST, "drop_newest");
	bad |= run(WEFT_OVERFLOW_DROP_OLDEST, "drop_oldest");
	bad |= run(WEFT_OVERFLOW_SPILL, "spill");
	bad |= run_scale();
	return bad;
}
