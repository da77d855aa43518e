/* bench/pipeline.c: the pipeline and spill families (see pipeline.h). */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/pipeline.h>

#include "chan.h"

#define BLOCK (256 * 1024)

const struct pl_bench_case pl_bench_cases[] = {
	{"pipeline", "seed", PL_SEED, 0, 1, "weft_threads", 100},
	{"pipeline", "seed", PL_SEED, 0, 1, "weft_tasks", 100},
	{"pipeline", "seed", PL_SEED, 0, 1, "go", 100},
	{"pipeline", "seed", PL_SEED, 64, 1, "weft_threads", 10},
	{"pipeline", "seed", PL_SEED, 64, 1, "weft_tasks", 1},
	{"pipeline", "seed", PL_SEED, 64, 1, "go", 1},
	{"pipeline", "seed", PL_SEED, 1024, 1, "weft_threads", 1},
	{"pipeline", "seed", PL_SEED, 1024, 1, "weft_tasks", 1},
	{"pipeline", "seed", PL_SEED, 1024, 1, "go", 1},
	{"pipeline", "ordered", PL_ORDERED, 1024, 1, "unordered", 10},
	{"pipeline", "ordered", PL_ORDERED, 1024, 1, "ordered", 10},
	{"pipeline", "ordered", PL_ORDERED, 1024, 2, "unordered", 10},
	{"pipeline", "ordered", PL_ORDERED, 1024, 2, "ordered", 10},
	{"pipeline", "ordered", PL_ORDERED, 1024, 8, "unordered", 10},
	{"pipeline", "ordered", PL_ORDERED, 1024, 8, "ordered", 10},
	{"pipeline", "fanout", PL_FANOUT, 0, 8, "weft_threads", 100},
	{"pipeline", "fanout", PL_FANOUT, 0, 8, "weft_tasks", 100},
	{"pipeline", "fanout", PL_FANOUT, 0, 8, "go", 100},
	{"pipeline", "fanout", PL_FANOUT, 64, 8, "weft_threads", 100},
	{"pipeline", "fanout", PL_FANOUT, 64, 8, "weft_tasks", 10},
	{"pipeline", "fanout", PL_FANOUT, 64, 8, "go", 10},
	/* workers: the element size here */
	{"spill", "producer_ahead", PL_SPILL, 1024, 64, "spill", 10},
	{"spill", "producer_ahead", PL_SPILL, 1024, 64, "raw_write", 10},
	{"spill", "producer_ahead", PL_SPILL, 1024, 64, "mem_chan", 10},
	{"spill", "producer_ahead", PL_SPILL, 1024, 1024, "spill", 10},
	{"spill", "producer_ahead", PL_SPILL, 1024, 1024, "raw_write", 10},
	{"spill", "producer_ahead", PL_SPILL, 1024, 1024, "mem_chan", 10},
	{"spill", "drop", PL_DROP, 1024, 1, "block", 1},
	{"spill", "drop", PL_DROP, 1024, 1, "drop_newest", 1},
	{"spill", "drop", PL_DROP, 1024, 1, "drop_oldest", 1},
};
const size_t pl_bench_ncases = sizeof pl_bench_cases / sizeof pl_bench_cases[0];

static int is(const struct pl_bench_case *c, const char *v)
{
	return strcmp(c->variant, v) == 0;
}

int pl_bench_supported(const struct pl_bench_case *c)
{
#ifdef WEFT_GO_PEER
	(void)c;
	return 1;
#else
	return !is(c, "go");
#endif
}

char *pl_bench_name(char *buf, size_t size, const struct pl_bench_case *c)
{
	switch (c->kind) {
	case PL_SEED:
		snprintf(buf, size, "pipeline/seed/cap:%zu/%s", c->capacity, c->variant);
		break;
	case PL_ORDERED:
		snprintf(buf, size, "pipeline/ordered/workers:%u/%s", c->workers, c->variant);
		break;
	case PL_FANOUT:
		snprintf(buf, size, "pipeline/fanout:%u/cap:%zu/%s", c->workers, c->capacity,
			 c->variant);
		break;
	case PL_SPILL:
		snprintf(buf, size, "spill/producer_ahead/elem:%u/%s", c->workers, c->variant);
		break;
	case PL_DROP:
		snprintf(buf, size, "spill/drop/cap:%zu/%s", c->capacity, c->variant);
		break;
	}
	return buf;
}

static uint64_t items_for(const struct pl_bench_case *c, uint64_t base)
{
	uint64_t n = base / c->items_div;
	return n < 100 ? 100 : n;
}

/* ---- pipeline family ---- */

struct gen {
	weft_chan_t *start; /* closed to release the source */
	uint64_t n;
};

static int gen_fn(weft_emit_t *out, void *user)
{
	struct gen *g = user;
	int rc = weft_chan_recv_ctx(g->start, NULL, weft_emit_ctx(out));
	if (rc != -EPIPE)
		return rc ? rc : -EINVAL;
	for (uint64_t v = 0; v < g->n; v++) {
		rc = weft_emit(out, &v);
		if (rc)
			return rc;
	}
	return 0;
}

static int square_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	uint64_t v = *(const uint64_t *)in;
	v *= v;
	return weft_emit(out, &v);
}

static int even_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	uint64_t v = *(const uint64_t *)in;
	return v % 2 == 0 ? weft_emit(out, &v) : 0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* about 200 ns of arithmetic */
static int work_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	uint64_t v = *(const uint64_t *)in, h = v;
	for (int i = 0; i < 60; i++)
		h = mix(h + (uint64_t)i);
	uint64_t o[1] = {v ^ (h & 0)}; /* v itself; h keeps the work alive */
	__asm__ volatile("" : : "r"(h));
	return weft_emit(out, o);
}

static int fail(struct pl_bench_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct pl_bench_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
	return -1;
}

struct drain {
	int check_order;
	uint64_t n, sum, bad;
};

static int drain_fn(const void *in, void *user)
{
	struct drain *d = user;
	uint64_t v = *(const uint64_t *)in;
	d->bad |= d->check_order && v != d->n;
	d->sum += v;
	d->n++;
	return 0;
}

static int run_weft_pipeline(const struct pl_bench_case *c, uint64_t n,
			     struct pl_bench_result *r)
{
	int tasks = is(c, "weft_tasks");
	weft_pipeline_t *p;
	struct gen g = {.n = n};
	weft_chan_t *a, *last;
	struct bench_meter m = {0};
	if (weft_chan_create(&g.start, 0, 1) || weft_pipeline_create(&p, NULL))
		return fail(r, "create failed");
	weft_pipeline_set_tasks(p, tasks || (c->kind == PL_ORDERED)); /* ordered: the default */
	weft_stage_opts_t so = {.name = "gen", .out_elem_size = 8, .out_capacity = c->capacity};
	int rc = weft_pipeline_source(p, &a, gen_fn, &g, &so);
	if (c->kind == PL_SEED) {
		weft_chan_t *b;
		weft_stage_opts_t o1 = {.name = "square", .out_capacity = c->capacity};
		weft_stage_opts_t o2 = {.name = "even", .out_capacity = c->capacity};
		rc = rc ? rc : weft_pipeline_stage(p, a, &b, square_fn, NULL, &o1);
		rc = rc ? rc : weft_pipeline_stage(p, b, &last, even_fn, NULL, &o2);
	} else if (c->kind == PL_ORDERED) {
		weft_stage_opts_t o1 = {.name = "work", .workers = c->workers,
					.ordered = is(c, "ordered"), .out_capacity = c->capacity};
		rc = rc ? rc : weft_pipeline_stage(p, a, &last, work_fn, NULL, &o1);
	} else {
		weft_chan_t *outs[16];
		weft_stage_opts_t o1 = {.name = "fan", .out_capacity = c->capacity};
		weft_stage_opts_t o2 = {.name = "merge", .out_capacity = c->capacity};
		rc = rc ? rc : weft_pipeline_fan_out(p, a, outs, c->workers, square_fn, NULL, &o1);
		rc = rc ? rc : weft_pipeline_fan_in(p, outs, c->workers, &last, &o2);
	}
	/* the drain is a sink of one worker (a task when the others are: Go's
	 * drain is its main goroutine) */
	struct drain d = {.check_order = c->kind == PL_ORDERED && is(c, "ordered")};
	weft_stage_opts_t dk = {.name = "drain"};
	rc = rc ? rc : weft_pipeline_sink(p, last, drain_fn, &d, &dk);
	if (rc) {
		weft_pipeline_destroy(p);
		weft_chan_destroy(g.start);
		return fail(r, "setup: %s", weft_strerror(rc));
	}
	bench_sleep_ns(10000000); /* every worker waiting, as Go's program does */
	bench_peak_rss_reset();
	bench_meter_start(&m);
	weft_chan_close(g.start);
	rc = 0;
	rc = weft_pipeline_wait(p);
	bench_meter_stop(&m);
	r->items = n;
	r->wall_ns = m.wall_ns;
	r->cpu_ns = m.cpu_ns;
	r->ctx_switches = m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	weft_pipeline_destroy(p);
	weft_chan_destroy(g.start);
	if (rc)
		return fail(r, "wait: %s", weft_strerror(rc));
	uint64_t k = d.n, sum = d.sum;
	if (d.bad)
		return fail(r, "ordered stage delivered out of order");
	uint64_t want_n = n, want_sum = 0;
	if (c->kind == PL_SEED) {
		want_n = (n + 1) / 2;
		for (uint64_t i = 0; i < want_n; i++)
			want_sum += 4 * i * i;
	} else if (c->kind == PL_ORDERED) {
		want_sum = n * (n - 1) / 2;
	} else {
		for (uint64_t i = 0; i < n; i++)
			want_sum += i * i;
	}
	if (k != want_n || sum != want_sum)
		return fail(r, "lost or invented items: %" PRIu64 " (want %" PRIu64 ")", k, want_n);
	return 0;
}

#ifdef WEFT_GO_PEER
static int run_go(const struct pl_bench_case *c, uint64_t n, int64_t timeout_ns,
		  struct pl_bench_result *r)
{
	struct chan_bench_case cc = {.family = "pipeline",
				     .kind = c->kind == PL_SEED ? CHAN_BENCH_PIPELINE
								: CHAN_BENCH_FANOUT,
				     .producers = c->workers,
				     .consumers = c->workers,
				     .capacity = c->capacity};
	struct chan_bench_result cr;
	memset(&cr, 0, sizeof cr);
	if (go_peer_chan_run(&cc, n, timeout_ns, &cr) != 0) {
		snprintf(r->error, sizeof r->error, "%s", cr.error);
		return -1;
	}
	r->items = n;
	r->wall_ns = cr.wall_ns;
	r->cpu_ns = cr.cpu_ns;
	r->ctx_switches = cr.ctx_switches;
	r->peak_rss_kb = cr.peak_rss_kb;
	return 0;
}
#endif

/* ---- spill family ---- */

#define MAX_ELEM 1024

struct consumer {
	weft_chan_t *c;
	size_t esize;
	uint64_t got, bad;
};

static void *consume(void *a)
{
	struct consumer *k = a;
	uint64_t e[MAX_ELEM / 8];
	while (weft_chan_recv(k->c, e) == 0) {
		if (k->esize >= 16 && e[0] != k->got)
			k->bad++;
		k->got++;
	}
	return NULL;
}

static const char *tmpdir(void)
{
	const char *d = getenv("TMPDIR");
	return d && *d ? d : "/tmp";
}

static int run_spill(const struct pl_bench_case *c, uint64_t n, struct pl_bench_result *r)
{
	struct bench_meter m = {0};
	size_t es = c->workers; /* (the element size, for this family) */
	uint64_t e[MAX_ELEM / 8] = {0};
	n = n * 64 / es; /* the same bytes whatever the element size */
	uint64_t bytes = n * es;
	bench_peak_rss_reset();
	if (is(c, "raw_write")) {
		int fd = open(tmpdir(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail(r, "open %s: %s", tmpdir(), strerror(errno));
		char *buf = calloc(1, BLOCK);
		int64_t t0 = bench_now_ns();
		bench_meter_start(&m);
		uint64_t off = 0;
		for (; off < bytes; off += BLOCK) {
			size_t len = bytes - off < BLOCK ? (size_t)(bytes - off) : BLOCK;
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
				close(fd);
				free(buf);
				return fail(r, "pwrite: %s", strerror(errno));
			}
		}
		int64_t t1 = bench_now_ns();
		for (off = 0; off < bytes; off += BLOCK) {
			size_t len = bytes - off < BLOCK ? (size_t)(bytes - off) : BLOCK;
			if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
				close(fd);
				free(buf);
				return fail(r, "pread: %s", strerror(errno));
			}
		}
		bench_meter_stop(&m);
		r->write_ns = t1 - t0;
		r->read_ns = bench_now_ns() - t1;
		close(fd);
		free(buf);
	} else {
		weft_chan_opts_t o = {.elem_size = es, .capacity = c->capacity,
				      .overflow = is(c, "spill") ? WEFT_OVERFLOW_SPILL
								 : WEFT_OVERFLOW_BLOCK};
		weft_chan_t *ch;
		int rc = weft_chan_create_opts(&ch, &o);
		if (rc)
			return fail(r, "create: %s", weft_strerror(rc));
		struct consumer k = {ch, es, 0, 0};
		pthread_t t;
		int64_t t0 = bench_now_ns(), t1;
		bench_meter_start(&m);
		if (is(c, "mem_chan"))
			pthread_create(&t, NULL, consume, &k);
		for (uint64_t i = 0; i < n; i++) {
			e[0] = i;
			if ((rc = weft_chan_send(ch, e)) != 0)
				break;
		}
		t1 = bench_now_ns();
		if (!is(c, "mem_chan"))
			pthread_create(&t, NULL, consume, &k);
		weft_chan_close(ch);
		pthread_join(t, NULL);
		bench_meter_stop(&m);
		r->write_ns = t1 - t0;
		r->read_ns = bench_now_ns() - t1;
		weft_chan_destroy(ch);
		if (rc)
			return fail(r, "send: %s", weft_strerror(rc));
		if (k.got != n || k.bad)
			return fail(r, "received %" PRIu64 " of %" PRIu64 ", %" PRIu64 " out of order",
				    k.got, n, k.bad);
	}
	r->items = n;
	r->bytes = bytes;
	r->wall_ns = m.wall_ns;
	r->cpu_ns = m.cpu_ns;
	r->ctx_switches = m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	return 0;
}

static int run_drop(const struct pl_bench_case *c, uint64_t n, struct pl_bench_result *r)
{
	struct bench_meter m = {0};
	weft_chan_opts_t o = {.elem_size = 8, .capacity = c->capacity,
			      .overflow = is(c, "drop_newest")   ? WEFT_OVERFLOW_DROP_NEWEST
					  : is(c, "drop_oldest") ? WEFT_OVERFLOW_DROP_OLDEST
								 : WEFT_OVERFLOW_BLOCK};
	weft_chan_t *ch;
	int rc = weft_chan_create_opts(&ch, &o);
	if (rc)
		return fail(r, "create: %s", weft_strerror(rc));
	struct consumer k = {ch, 8, 0, 0};
	pthread_t t;
	bench_peak_rss_reset();
	pthread_create(&t, NULL, consume, &k);
	bench_meter_start(&m);
	uint64_t refused = 0;
	for (uint64_t i = 0; i < n; i++) {
		rc = weft_chan_send(ch, &i);
		if (rc == -ENOBUFS)
			refused++;
		else if (rc)
			break;
	}
	bench_meter_stop(&m);
	weft_chan_close(ch);
	pthread_join(t, NULL);
	weft_chan_stats_t st;
	weft_chan_stats(ch, &st);
	weft_chan_destroy(ch);
	if (rc && rc != -ENOBUFS)
		return fail(r, "send: %s", weft_strerror(rc));
	if (k.got + st.dropped != n || st.dropped < refused)
		return fail(r, "received %" PRIu64 " + dropped %" PRIu64 " != %" PRIu64, k.got,
			    st.dropped, n);
	r->items = n;
	r->wall_ns = m.wall_ns;
	r->cpu_ns = m.cpu_ns;
	r->ctx_switches = m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	r->bytes = st.dropped; /* (reported as dropped) */
	return 0;
}

int pl_bench_run(const struct pl_bench_case *c, uint64_t base_items, int64_t timeout_ns,
		 struct pl_bench_result *r)
{
	memset(r, 0, sizeof *r);
	uint64_t n = items_for(c, base_items);
	(void)timeout_ns;
	switch (c->kind) {
	case PL_SPILL:
		return run_spill(c, n, r);
	case PL_DROP:
		return run_drop(c, n, r);
	default:
#ifdef WEFT_GO_PEER
		if (is(c, "go"))
			return run_go(c, n, timeout_ns ? timeout_ns : 120 * BENCH_NS_PER_S, r);
#endif
		return run_weft_pipeline(c, n, r);
	}
}
