/* bench/pool.c: the worker pool benchmark scenarios (see pool.h).
 *
 * One job function per kind reads the run it belongs to from a file-scope
 * pointer (runs are sequential), so a job's arg is only its id + 1 and no
 * memory is allocated per job: the only memory a run needs is the pool's
 * and the results channel's, whatever the job count.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/pool.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "baseline/pool_mutex.h"
#include "measure.h"

#define NS_PER_S BENCH_NS_PER_S
#define RESULTS_CAP 200
#define SMOKE_BASE 100000 /* below: no 1000-worker cases */

const struct pool_bench_case pool_bench_cases[] = {
	{ "seed", POOL_BENCH_STREAM, 100, 200, 0, 0, 10 },
	{ "seed_10x", POOL_BENCH_STREAM, 100, 200, 0, 0, 1 },
#define COSTS(w)                                                                \
	{ "cost", POOL_BENCH_STREAM, w, 200, 0, 0, 10 },                         \
	{ "cost", POOL_BENCH_STREAM, w, 200, 1000, 0, 50 },                      \
	{ "cost", POOL_BENCH_STREAM, w, 200, 10000, 0, 500 }
	COSTS(2),
	COSTS(8),
	COSTS(100),
	COSTS(1000),
#undef COSTS
	{ "sleep", POOL_BENCH_STREAM, 100, 200, 0, 100000, 50 },
	{ "latency", POOL_BENCH_LATENCY, 100, 200, 0, 100000, 1000 },
	{ "idle", POOL_BENCH_IDLE, 100, 200, 0, 0, 0 },
};
const size_t pool_bench_ncases = sizeof pool_bench_cases / sizeof pool_bench_cases[0];

/* ---- strategies --------------------------------------------------------- */

static int m_create(void **out, unsigned workers, size_t queue)
{
	struct mpool_opts o = { .workers = workers, .queue_capacity = queue };

	return mpool_create((mpool_t **)out, &o);
}
static int m_submit(void *p, int (*fn)(void *), void *arg)
{
	return mpool_submit(p, fn, arg);
}
static int m_wait(void *p)
{
	return mpool_wait(p);
}
static int m_shutdown(void *p, int how)
{
	return mpool_shutdown(p, how == 2 ? MPOOL_CANCEL : MPOOL_DRAIN);
}
static void m_destroy(void *p)
{
	mpool_destroy(p);
}
static int m_counts(void *p, struct pool_counts *out)
{
	struct mpool_stats st;
	int rc = mpool_stats(p, &st);

	*out = (struct pool_counts){ st.submitted, st.completed, st.failed, st.discarded };
	return rc;
}
static uint64_t m_wakes(void *p)
{
	struct mpool_stats st;

	return mpool_stats(p, &st) ? 0 : st.futex_wakes;
}

static const struct pool_strategy pool_strategy_mutex = {
	.name = "mutex", .create = m_create, .submit = m_submit, .wait = m_wait,
	.shutdown = m_shutdown, .destroy = m_destroy, .counts = m_counts, .futex_wakes = m_wakes,
};

static int w_create_opts(void **out, unsigned workers, size_t queue, int sched_batch, int tasks)
{
	weft_pool_opts_t o = { .workers = workers, .queue_capacity = queue,
			       .name = "bench-pool", .sched_batch = sched_batch, .tasks = tasks };

	return weft_pool_create((weft_pool_t **)out, &o);
}
static int w_create(void **out, unsigned workers, size_t queue)
{
	return w_create_opts(out, workers, queue, 0, 0);
}
/* weft_batch: the same pool with its workers under SCHED_BATCH */
static int w_create_batch(void **out, unsigned workers, size_t queue)
{
	return w_create_opts(out, workers, queue, 1, 0);
}
/* weft_tasks: the same pool with its workers as tasks (opts.tasks), and the
 * scenario's producer and drainer tasks too (.tasks), as in Go's program */
static int w_create_tasks(void **out, unsigned workers, size_t queue)
{
	return w_create_opts(out, workers, queue, 0, 1);
}
static int w_submit(void *p, int (*fn)(void *), void *arg)
{
	return weft_pool_submit(p, fn, arg);
}
static int w_wait(void *p)
{
	return weft_pool_wait(p);
}
static int w_shutdown(void *p, int how)
{
	return weft_pool_shutdown(p, how == 2 ? WEFT_POOL_CANCEL : WEFT_POOL_DRAIN);
}
static void w_destroy(void *p)
{
	weft_pool_destroy(p);
}
static int w_counts(void *p, struct pool_counts *out)
{
	weft_pool_stats_t st;
	int rc = weft_pool_stats(p, &st);

	*out = (struct pool_counts){ st.submitted, st.completed, st.failed, st.discarded };
	return rc;
}
static uint64_t w_wakes(void *p)
{
	weft_pool_stats_t st;

	return weft_pool_stats(p, &st) ? 0 : st.futex_wakes;
}

static const struct pool_strategy pool_strategy_weft = {
	.name = "weft", .create = w_create, .submit = w_submit, .wait = w_wait,
	.shutdown = w_shutdown, .destroy = w_destroy, .counts = w_counts, .futex_wakes = w_wakes,
};

static const struct pool_strategy pool_strategy_weft_batch = {
	.name = "weft_batch", .create = w_create_batch, .submit = w_submit, .wait = w_wait,
	.shutdown = w_shutdown, .destroy = w_destroy, .counts = w_counts, .futex_wakes = w_wakes,
};

static const struct pool_strategy pool_strategy_weft_tasks = {
	.name = "weft_tasks", .create = w_create_tasks, .submit = w_submit, .wait = w_wait,
	.shutdown = w_shutdown, .destroy = w_destroy, .counts = w_counts, .futex_wakes = w_wakes,
	.tasks = 1,
};

#ifdef WEFT_GO_PEER
extern const struct pool_strategy pool_strategy_go; /* bench/peers/go_peer.c */
#endif

const struct pool_strategy *const pool_strategies[] = {
	&pool_strategy_weft,
	&pool_strategy_weft_batch,
	&pool_strategy_weft_tasks,
	&pool_strategy_mutex,
#ifdef WEFT_GO_PEER
	&pool_strategy_go,
#endif
	NULL,
};

const char *const pool_strategies_skipped[] = {
#ifdef WEFT_GO_PEER_SKIPPED
	WEFT_GO_PEER_SKIPPED,
#endif
	NULL,
};

/* ---- job work ---------------------------------------------------------- */

/* splitmix64: the "few ns of arithmetic" on a job's payload */
static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* n rounds of a dependent xorshift chain (about a cycle each) */
static inline uint64_t burn(uint64_t x, uint64_t n)
{
	x |= 1;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		__asm__ __volatile__("" : "+r"(x));
	}
	return x;
}

/* burn() rounds per microsecond on this machine: the best of 5 timings of
 * 200k rounds (the best is the one least disturbed by other threads) */
static uint64_t rounds_per_us(void)
{
	static uint64_t cached;
	double best = 0;

	if (cached)
		return cached;
	for (int k = 0; k < 5; k++) {
		int64_t t0 = bench_now_ns();
		uint64_t x = burn((uint64_t)t0, 200000);
		int64_t dt = bench_now_ns() - t0;

		__asm__ __volatile__("" ::"r"(x));
		if (dt > 0 && 200000.0 * 1000 / (double)dt > best)
			best = 200000.0 * 1000 / (double)dt;
	}
	cached = best > 1 ? (uint64_t)best : 1000;
	return cached;
}

/* ---- one run ----------------------------------------------------------- */

struct result {
	uint64_t id, val;
};

struct run {
	const struct pool_bench_case *c;
	const struct pool_strategy *s;
	void *pool;
	weft_chan_t *results;
	uint64_t jobs;
	uint64_t burn_rounds;
	pthread_barrier_t go;
	_Atomic uint64_t submitted; /* by the producer, relaxed: progress */
	_Atomic int stop;           /* the producer gives up (hang) */
	int submit_rc;              /* the producer's first error */
	/* latency: when the job running now began; written by the job, read
	 * after the pool's wait, which orders it */
	int64_t start_ns;
	_Atomic uint64_t ran;
};

static struct run *cur; /* the run the jobs belong to */

static int stream_job(void *arg)
{
	const struct run *r = cur;
	uint64_t id = (uint64_t)(uintptr_t)arg - 1;
	struct result x = { id, mix(id) };

	if (r->burn_rounds) {
		uint64_t y = burn(x.val, r->burn_rounds);

		__asm__ __volatile__("" ::"r"(y));
	}
	if (r->c->sleep_ns)
		bench_sleep_ns(r->c->sleep_ns);
	return weft_chan_send(r->results, &x) != 0;
}

static int latency_job(void *arg)
{
	struct run *r = cur;

	(void)arg;
	r->start_ns = bench_now_ns();
	/* relaxed: read after the pool's wait, which orders it */
	atomic_fetch_add_explicit(&r->ran, 1, memory_order_relaxed);
	return 0;
}

static int nop_job(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&cur->ran, 1, memory_order_relaxed);
	return 0;
}

static void produce(struct run *r)
{
	for (uint64_t i = 0; i < r->jobs; i++) {
		int rc;

		if (atomic_load_explicit(&r->stop, memory_order_relaxed))
			break;
		rc = r->s->submit(r->pool, stream_job, (void *)(uintptr_t)(i + 1));
		if (rc) {
			r->submit_rc = rc;
			break;
		}
		atomic_store_explicit(&r->submitted, i + 1, memory_order_relaxed);
	}
}

static void *producer(void *arg)
{
	struct run *r = arg;

	pthread_barrier_wait(&r->go);
	produce(r);
	return NULL;
}

/* The drainer: receives every result (until deadline). */
struct drain {
	struct run *r;
	int64_t deadline;
	uint64_t got, idsum, bad;
	int rc;
	weft_wg_t *wg;  /* tasks: the drainer is done */
	weft_wg_t *pwg; /* tasks: the producer is done */
};

static void drain(struct drain *d)
{
	d->rc = 0;
	while (d->got < d->r->jobs) {
		struct result x;

		d->rc = weft_chan_recv_until(d->r->results, &x, d->deadline);
		if (d->rc)
			break;
		d->got++;
		d->idsum += x.id;
		d->bad += x.id >= d->r->jobs || x.val != mix(x.id);
	}
}

/* tasks strategies: the producer and the drainer are tasks, as Go's are
 * goroutines (the thread that runs the benchmark waits on a WaitGroup) */
static void produce_task(void *arg)
{
	struct drain *d = arg;

	produce(d->r);
	weft_wg_done(d->pwg);
}

static void drain_task(void *arg)
{
	struct drain *d = arg;

	drain(d);
	weft_wg_done(d->wg);
}

/* set while a hung run is being released */
static _Atomic int releasing;

static void *watchdog(void *arg)
{
	(void)arg;
	bench_sleep_ns(10 * NS_PER_S);
	if (!atomic_load(&releasing))
		return NULL;
	fprintf(stderr, "weft-bench: pool: cancel did not release the threads; exiting\n");
	fflush(stderr);
	_exit(124);
}

int pool_bench_supported(const struct pool_bench_case *c, const struct pool_strategy *s,
			 uint64_t base)
{
	if (s->run_stream && (c->kind != POOL_BENCH_STREAM || c->cost_ns))
		return 0;
	if (s == &pool_strategy_weft_batch && c->kind == POOL_BENCH_IDLE)
		return 0; /* parked workers burn nothing under either policy */
	return c->workers < 1000 || base >= SMOKE_BASE;
}

uint64_t pool_bench_jobs(const struct pool_bench_case *c, uint64_t base)
{
	uint64_t n;

	if (c->kind == POOL_BENCH_IDLE)
		return 0;
	n = base / c->jobs_div;
	return n < 100 ? 100 : n;
}

char *pool_bench_name(char *buf, size_t size, const struct pool_bench_case *c,
		      const struct pool_strategy *s)
{
	char extra[64] = "";

	if (c->kind == POOL_BENCH_LATENCY)
		snprintf(extra, sizeof extra, "/gap_us:%lld", (long long)(c->sleep_ns / 1000));
	else if (c->sleep_ns)
		snprintf(extra, sizeof extra, "/sleep_us:%lld", (long long)(c->sleep_ns / 1000));
	else if (!strcmp(c->scenario, "cost"))
		snprintf(extra, sizeof extra, "/cost_ns:%lld", (long long)c->cost_ns);
	else if (c->kind == POOL_BENCH_STREAM)
		snprintf(extra, sizeof extra, "/queue:%zu", c->queue);
	snprintf(buf, size, "pool/%s/workers:%u%s/%s", c->scenario, c->workers, extra, s->name);
	return buf;
}

/* After a run: the strategy's counts must say every job ran once. */
static void check_counts(struct run *r, uint64_t want, struct pool_bench_result *out)
{
	struct pool_counts k;
	int rc = r->s->counts(r->pool, &k);

	if (rc)
		snprintf(out->error, sizeof out->error, "stats: %d (%s)", rc, strerror(-rc));
	else if (k.submitted != want || k.completed != want || k.failed || k.discarded)
		snprintf(out->error, sizeof out->error,
			 "pool counts wrong: submitted %llu, completed %llu, failed %llu, "
			 "discarded %llu (want %llu, %llu, 0, 0)",
			 (unsigned long long)k.submitted, (unsigned long long)k.completed,
			 (unsigned long long)k.failed, (unsigned long long)k.discarded,
			 (unsigned long long)want, (unsigned long long)want);
}

static int run_stream(struct run *r, const struct pool_bench_params *p,
		      struct pool_bench_result *out)
{
	int64_t timeout = p->timeout_ns > 0 ? p->timeout_ns : 120 * NS_PER_S;
	uint64_t want_sum = r->jobs % 2 ? r->jobs * ((r->jobs - 1) / 2)
					: (r->jobs / 2) * (r->jobs - 1);
	pthread_t prod;
	struct bench_meter m = { 0 };
	weft_wg_t wg = WEFT_WG_INIT, pwg = WEFT_WG_INIT;
	struct drain d = { .r = r, .wg = &wg, .pwg = &pwg };
	int rc = 0;

	if (r->c->cost_ns)
		r->burn_rounds = rounds_per_us() * (uint64_t)r->c->cost_ns / 1000;
	rc = weft_chan_create(&r->results, sizeof(struct result), RESULTS_CAP);
	if (rc) {
		snprintf(out->error, sizeof out->error, "results channel: %d", rc);
		return -1;
	}
	pthread_barrier_init(&r->go, NULL, 2);
	if (!r->s->tasks && pthread_create(&prod, NULL, producer, r) != 0) {
		snprintf(out->error, sizeof out->error, "pthread_create failed");
		pthread_barrier_destroy(&r->go);
		weft_chan_destroy(r->results);
		r->results = NULL;
		return -1;
	}
	out->rss_per_run = bench_peak_rss_reset();
	bench_meter_start(&m);
	d.deadline = m.t0 + timeout;
	if (r->s->tasks) {
		weft_wg_add(&wg, 1);
		weft_wg_add(&pwg, 1);
		rc = weft_go(produce_task, &d);
		if (rc)
			weft_wg_done(&pwg);
		if (rc || (rc = weft_go(drain_task, &d)) != 0) {
			snprintf(out->error, sizeof out->error, "weft_go: %d", rc);
			atomic_store(&r->stop, 1);
			r->s->shutdown(r->pool, 2); /* a blocked producer returns */
			weft_wg_wait(&pwg);
			pthread_barrier_destroy(&r->go);
			return -1;
		}
		/* the drainer ends by the deadline; a producer still blocked
		 * then is released below */
		weft_wg_wait(&wg);
	} else {
		pthread_barrier_wait(&r->go);
		drain(&d);
	}
	rc = d.rc;
	if (rc) {
		pthread_t dog;
		char name[160];

		pool_bench_name(name, sizeof name, r->c, r->s);
		fprintf(stderr,
			"weft-bench: %s: %s after %llu of %llu results (%llu submitted); "
			"canceling\n",
			name, rc == -ETIMEDOUT ? "hung" : "results channel failed",
			(unsigned long long)d.got, (unsigned long long)r->jobs,
			(unsigned long long)atomic_load(&r->submitted));
		snprintf(out->error, sizeof out->error,
			 "%s: %llu of %llu results received (%llu submitted)",
			 rc == -ETIMEDOUT ? "hung" : "recv failed", (unsigned long long)d.got,
			 (unsigned long long)r->jobs,
			 (unsigned long long)atomic_load(&r->submitted));
		atomic_store(&releasing, 1);
		pthread_create(&dog, NULL, watchdog, NULL);
		pthread_detach(dog);
		atomic_store(&r->stop, 1);
		weft_chan_close(r->results); /* blocked jobs return */
		r->s->shutdown(r->pool, 2);  /* a blocked producer returns */
		if (r->s->tasks)
			weft_wg_wait(&pwg);
		else
			pthread_join(prod, NULL);
		pthread_barrier_destroy(&r->go);
		atomic_store(&releasing, 0); /* released: the run is only failed */
		fprintf(stderr, "  (cancel released every thread; the run is failed)\n");
		return -1;
	}
	if (r->s->tasks)
		weft_wg_wait(&pwg);
	else
		pthread_join(prod, NULL);
	bench_meter_stop(&m);
	out->peak_rss_kb = bench_peak_rss_kb();
	out->wall_ns = m.wall_ns;
	out->cpu_ns = m.cpu_ns;
	out->ctx_switches = m.ctx_switches;
	pthread_barrier_destroy(&r->go);

	if (r->submit_rc)
		snprintf(out->error, sizeof out->error, "submit: %d (%s)", r->submit_rc,
			 strerror(-r->submit_rc));
	else if (d.bad || d.idsum != want_sum)
		snprintf(out->error, sizeof out->error,
			 "wrong results: %llu bad, sum of ids %llu (want %llu)",
			 (unsigned long long)d.bad, (unsigned long long)d.idsum,
			 (unsigned long long)want_sum);
	else if ((rc = r->s->wait(r->pool)) != 0)
		snprintf(out->error, sizeof out->error, "wait: %d", rc);
	else
		check_counts(r, r->jobs, out);
	/* nothing more may arrive: every job sent exactly one result */
	if (!out->error[0] && weft_chan_len(r->results) != 0)
		snprintf(out->error, sizeof out->error, "extra results: %zu",
			 weft_chan_len(r->results));
	return out->error[0] ? -1 : 0;
}

/* Submit-to-start latency: one job at a time on an idle pool, each
 * sample into the log-linear histogram (clock cost subtracted), so the
 * memory is fixed whatever the sample count. */
static int run_latency(struct run *r, struct pool_bench_result *out)
{
	struct bench_hist *h = calloc(1, sizeof *h); /* zeroed: touched now, not timed */
	struct bench_meter m = { 0 };
	int64_t clock_ns = bench_clock_cost_ns();
	int rc = 0;

	if (!h) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	out->rss_per_run = bench_peak_rss_reset();
	bench_meter_start(&m);
	for (uint64_t i = 0; i < r->jobs; i++) {
		int64_t sub;

		bench_sleep_ns(r->c->sleep_ns); /* the workers go back to sleep */
		sub = bench_now_ns();
		rc = r->s->submit(r->pool, latency_job, (void *)(uintptr_t)(i + 1));
		if (!rc)
			rc = r->s->wait(r->pool);
		if (rc) {
			snprintf(out->error, sizeof out->error, "submit or wait at job %llu: %d (%s)",
				 (unsigned long long)i, rc, strerror(-rc));
			break;
		}
		if (atomic_load_explicit(&r->ran, memory_order_relaxed) != i + 1) {
			snprintf(out->error, sizeof out->error,
				 "job %llu never started (wait returned; %llu jobs ran)",
				 (unsigned long long)i, (unsigned long long)atomic_load(&r->ran));
			break;
		}
		bench_hist_add(h, r->start_ns - sub - clock_ns);
	}
	bench_meter_stop(&m);
	out->wall_ns = m.wall_ns;
	out->cpu_ns = m.cpu_ns;
	out->ctx_switches = m.ctx_switches;
	out->peak_rss_kb = bench_peak_rss_kb();
	if (!out->error[0])
		check_counts(r, r->jobs, out);
	if (!out->error[0]) {
		out->has_latency = 1;
		bench_hist_latency(h, clock_ns, &out->lat);
	}
	free(h);
	return out->error[0] ? -1 : 0;
}

static int run_idle(struct run *r, const struct pool_bench_params *p,
		    struct pool_bench_result *out)
{
	unsigned n = r->c->workers;
	struct bench_meter m = { 0 };
	int64_t t0;
	int rc = 0;

	/* one job per worker, so every worker has run and gone back to sleep */
	for (unsigned i = 0; i < n && !rc; i++)
		rc = r->s->submit(r->pool, nop_job, NULL);
	if (!rc)
		rc = r->s->wait(r->pool);
	if (rc) {
		snprintf(out->error, sizeof out->error, "submit or wait: %d", rc);
		return -1;
	}
	bench_sleep_ns(20 * 1000000); /* past any spinning */
	out->rss_per_run = bench_peak_rss_reset();
	bench_meter_start(&m);
	bench_sleep_ns(p->idle_ns > 0 ? p->idle_ns : NS_PER_S);
	bench_meter_stop(&m);
	out->wall_ns = m.wall_ns;
	out->idle_cpu_ns = out->cpu_ns = m.cpu_ns;
	out->ctx_switches = m.ctx_switches;
	out->peak_rss_kb = bench_peak_rss_kb();
	r->jobs = n;
	check_counts(r, n, out);
	if (!out->error[0] && atomic_load(&r->ran) != n)
		snprintf(out->error, sizeof out->error, "%llu jobs ran, want %u",
			 (unsigned long long)atomic_load(&r->ran), n);
	t0 = bench_now_ns();
	rc = r->s->shutdown(r->pool, 1);
	out->release_ns = bench_now_ns() - t0;
	if (rc && !out->error[0])
		snprintf(out->error, sizeof out->error, "shutdown: %d", rc);
	return out->error[0] ? -1 : 0;
}

int pool_bench_run(const struct pool_bench_case *c, const struct pool_strategy *s,
		   const struct pool_bench_params *p, struct pool_bench_result *out)
{
	struct run r = { .c = c, .s = s };
	uint64_t wakes0;
	int rc;

	memset(out, 0, sizeof *out);
	out->futex_wakes = -1;
	r.jobs = pool_bench_jobs(c, p->base_items);
	out->jobs = r.jobs;
	if (s->run_stream)
		return s->run_stream(c, r.jobs, p->timeout_ns > 0 ? p->timeout_ns : 120 * NS_PER_S,
				     out);
	rc = s->create(&r.pool, c->workers, c->queue);
	if (rc) {
		snprintf(out->error, sizeof out->error, "create(%u workers, queue %zu): %d (%s)",
			 c->workers, c->queue, rc, strerror(-rc));
		return -1;
	}
	atomic_init(&r.submitted, 0);
	atomic_init(&r.stop, 0);
	atomic_init(&r.ran, 0);
	cur = &r;
	wakes0 = s->futex_wakes ? s->futex_wakes(r.pool) : 0;
	switch (c->kind) {
	case POOL_BENCH_STREAM:
		rc = run_stream(&r, p, out);
		break;
	case POOL_BENCH_LATENCY:
		rc = run_latency(&r, out);
		break;
	case POOL_BENCH_IDLE:
		rc = run_idle(&r, p, out);
		break;
	}
	if (s->futex_wakes && c->kind != POOL_BENCH_IDLE)
		out->futex_wakes = (int64_t)(s->futex_wakes(r.pool) - wakes0);
	s->shutdown(r.pool, 1);
	s->destroy(r.pool);
	if (r.results)
		weft_chan_destroy(r.results);
	cur = NULL;
	return rc;
}
