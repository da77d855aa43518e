/* tests/fuzz/fuzz_opts.c: absurd arguments and option structs to every
 * create function. Each must return what its header says (-EINVAL for the
 * documented bad input, -ENOMEM for sizes too large to allocate, the
 * errno of a bad spill directory), never crash, hang or leak, and what it
 * did create must work for a few calls and be freed.
 *
 * Values come from the edges: 0, 1, small, the documented limits and one
 * past them, 2^k and 2^k - 1, INT64_MIN/MAX, SIZE_MAX, NaN, +-inf, -0.0,
 * NULL pointers and strings (empty, 4 KiB long, bad directories).
 *
 * Covered: weft_chan_create, weft_chan_create_opts (every field: policy,
 * capacity, element size, spill dir/limit/block), contexts (with_cancel /
 * deadline / timeout, cancel_cause, after_func, trees of them),
 * weft_sem_init, weft_wg_init, weft_group_create (+ set_limit, set_tasks,
 * go), weft_pool_create (+ submit, shutdown), weft_pipeline_create and
 * every stage kind with stage options, weft_map_create, weft_flight_create,
 * weft_breaker_create (every setting, then calls on a clock jumping across
 * the whole int64 range), weft_go_opts and the runtime's setters,
 * weft_deadline, weft_strerror, weft_set_spin_ns.
 *
 * Not called (they would only exhaust the machine, not test weft): sizes
 * that are valid but need between 64 MiB and 1 GiB of touched memory (a
 * channel or pool ring, a reorder window), and more than a few threads or
 * carriers (fixed pools of thousands of workers, set_procs above 2). An
 * allocation over 1 GiB fails under this harness (fuzz.h), so the -ENOMEM
 * paths of the really absurd sizes are taken. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include <weft.h>

#include "fuzz.h"

static struct fz *g_f;

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

static size_t size_edge(void)
{
	static const size_t v[] = {0, 1, 2, 3, 7, 8, 64, 255, 256, 257, 4096, 65536,
				   WEFT_CHAN_MAX_CAPACITY, WEFT_CHAN_MAX_CAPACITY + 1,
				   (size_t)1 << 40, ((size_t)1 << 40) + 1, (size_t)1 << 62,
				   SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX};
	uint8_t k = fz_u8(g_f);
	return k < 200 ? v[k % (sizeof v / sizeof v[0])] : (size_t)fz_u64(g_f);
}

static double double_edge(void)
{
	static const double v[] = {0.0, -0.0, 0.5, 1.0, 1.0000001, 0.999999, -1e-300,
				   2.0, 1e300, -1.0};
	uint8_t k = fz_u8(g_f);
	if (k < 10)
		return v[k];
	if (k < 20)
		return NAN;
	if (k < 25)
		return INFINITY;
	if (k < 30)
		return -INFINITY;
	if (k < 40) {
		uint64_t bits = fz_u64(g_f);
		double d;
		memcpy(&d, &bits, sizeof d);
		return d;
	}
	return (double)fz_u8(g_f) / 255.0;
}

static const char *dir_edge(void)
{
	static char longpath[5000];
	static char longname[320];
	if (!longpath[0]) {
		memset(longpath, 'a', sizeof longpath - 1);
		longpath[0] = '/';
		memcpy(longname, "/tmp/", 5);
		memset(longname + 5, 'b', sizeof longname - 6);
	}
	switch (fz_u8(g_f) % 8) {
	case 0:
	case 1:
		return NULL;
	case 2:
		return "";
	case 3:
		return "/tmp";
	case 4:
		return "/nonexistent-weft-fuzz/x";
	case 5:
		return "/dev/null"; /* not a directory */
	case 6:
		return longpath;
	default:
		return longname; /* one name past NAME_MAX */
	}
}

static bool dir_ok(const char *d)
{
	return !d || !*d || strcmp(d, "/tmp") == 0;
}

/* ---- channels ---- */

/* The bytes a ring of cap elements of esize touches at create (the
 * stamps); 0 when create refuses before allocating. */
static size_t ring_bytes(size_t esize, size_t cap)
{
	if (cap == 0 || cap > WEFT_CHAN_MAX_CAPACITY || esize > ((size_t)1 << 40))
		return 0;
	size_t stride = (8 + esize + 7) & ~(size_t)7;
	if (stride > SIZE_MAX / cap)
		return SIZE_MAX;
	return stride * cap;
}

/* a few calls on a channel that was created */
static void use_chan(weft_chan_t *ch, size_t esize, size_t cap)
{
	unsigned char buf[512];
	bool small = esize <= sizeof buf;
	memset(buf, 0x5A, sizeof buf);
	CHECK_EQ(weft_chan_cap(ch), cap);
	CHECK_EQ(weft_chan_elem_size(ch), esize);
	unsigned n = fz_u8(g_f) % 8;
	for (unsigned i = 0; small && i < n; i++) {
		int rc = weft_chan_try_send(ch, buf);
		CHECK(rc == 0 || rc == -EAGAIN || rc == -ENOBUFS || rc == -ENOSPC);
	}
	weft_chan_stats_t s;
	CHECK_EQ(weft_chan_stats(ch, &s), 0);
	CHECK_EQ(s.len, weft_chan_len(ch));
	if (fz_u8(g_f) & 1)
		CHECK_EQ(weft_chan_close(ch), 0);
	for (unsigned i = 0; small && i < n + 1; i++) {
		int rc = weft_chan_try_recv(ch, buf);
		CHECK(rc == 0 || rc == -EAGAIN || rc == -EPIPE);
	}
	weft_chan_destroy(ch);
}

static void op_chan(void)
{
	weft_chan_t *ch = (weft_chan_t *)1;
	size_t esize = size_edge(), cap = size_edge();
	bool null_out = (fz_u8(g_f) & 15) == 0;
	size_t rb = ring_bytes(esize, cap);
	if (rb > 64 * MIB && rb <= 2 * GIB)
		return; /* valid, but it would touch that much */
	int rc = weft_chan_create(null_out ? NULL : &ch, esize, cap);
	int want = null_out ? -EINVAL
		   : cap > WEFT_CHAN_MAX_CAPACITY || esize > ((size_t)1 << 40) || rb > GIB ? -ENOMEM
											: 0;
	CHECK_EQ(rc, want);
	if (rc) {
		CHECK(ch == (weft_chan_t *)1); /* *out untouched */
		return;
	}
	use_chan(ch, esize, cap);
}

static void drop_cb(void *elem, void *user)
{
	(void)elem;
	CHECK(user == (void *)&g_f);
}

static void op_chan_opts(void)
{
	weft_chan_opts_t o;
	memset(&o, 0, sizeof o);
	o.elem_size = size_edge();
	o.capacity = size_edge();
	uint8_t k = fz_u8(g_f);
	o.overflow = k < 200 ? (int)(k % 4) : k < 230 ? (int)(k % 8) - 4 : (int)fz_u32(g_f);
	o.on_drop = fz_u8(g_f) & 1 ? drop_cb : NULL;
	o.user = (void *)&g_f;
	o.spill_dir = dir_edge();
	o.spill_max_bytes = (uint64_t)size_edge();
	o.spill_block_bytes = size_edge();
	bool null_out = (fz_u8(g_f) & 31) == 0, null_opts = (fz_u8(g_f) & 31) == 0;
	bool spill = o.overflow == WEFT_OVERFLOW_SPILL;

	int want;
	size_t rb = ring_bytes(o.elem_size, o.capacity);
	if (null_out || null_opts)
		want = -EINVAL;
	else if (o.overflow < 0 || o.overflow > 3 ||
		 (o.overflow != WEFT_OVERFLOW_BLOCK && o.capacity == 0) ||
		 (spill && o.elem_size == 0))
		want = -EINVAL;
	else if (o.capacity > WEFT_CHAN_MAX_CAPACITY || o.elem_size > ((size_t)1 << 40) || rb > GIB)
		want = -ENOMEM;
	else
		want = 0;
	if (want == 0 && rb > 64 * MIB)
		return; /* valid, but it would touch that much */
	size_t bbytes = 0;
	if (want == 0 && spill) {
		size_t bb = o.spill_block_bytes ? o.spill_block_bytes : 256 << 10;
		size_t per = bb / o.elem_size ? bb / o.elem_size : 1;
		bbytes = per * o.elem_size;
		if (bbytes > 64 * MIB && bbytes <= GIB)
			return; /* valid: two blocks of that much */
		if (bbytes > GIB)
			want = -ENOMEM;
		else if (!dir_ok(o.spill_dir))
			want = 1; /* some negative errno (ENOENT, ENOTDIR, ...) */
	}
	weft_chan_t *ch = (weft_chan_t *)1;
	int rc = weft_chan_create_opts(null_out ? NULL : &ch, null_opts ? NULL : &o);
	if (want == 1)
		CHECK(rc < 0 && rc != -EINVAL);
	else
		CHECK_EQ(rc, want);
	if (rc) {
		CHECK(ch == (weft_chan_t *)1);
		return;
	}
	use_chan(ch, o.elem_size, o.capacity);
}

/* ---- contexts ---- */

static int after_runs;
static void after_fn(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&after_runs, 1, __ATOMIC_RELAXED);
}

static void op_ctx(void)
{
	weft_ctx_t *c[4] = {0};
	int n = 0;
	CHECK_EQ(weft_ctx_with_cancel(NULL, weft_ctx_background()), -EINVAL);
	CHECK_EQ(weft_ctx_with_deadline(&c[0], NULL, 0), -EINVAL);
	CHECK_EQ(weft_ctx_with_timeout(&c[0], NULL, 1), -EINVAL);
	CHECK(c[0] == NULL);
	for (n = 0; n < 4; n++) {
		uint8_t k = fz_u8(g_f);
		weft_ctx_t *parent = n == 0 || (k & 0x80) ? weft_ctx_background() : c[fz_below(g_f, (uint32_t)n)];
		int pdone = weft_ctx_err(parent) != 0;
		int64_t before = weft_now();
		int64_t v = fz_i64_edge(g_f);
		int rc;
		bool known_done = false, known_live = false;
		switch (k % 3) {
		case 0:
			rc = weft_ctx_with_cancel(&c[n], parent);
			/* live unless the parent's deadline is near */
			known_live = !pdone && weft_ctx_deadline(parent) > before + 1000000000LL;
			break;
		case 1:
			rc = weft_ctx_with_deadline(&c[n], parent, v);
			known_done = v <= before;
			known_live = !pdone && v > before + 1000000000LL &&
				     weft_ctx_deadline(parent) > before + 1000000000LL;
			break;
		default:
			rc = weft_ctx_with_timeout(&c[n], parent, v);
			known_done = v <= 0;
			known_live = !pdone && v > 1000000000LL &&
				     weft_ctx_deadline(parent) > before + 1000000000LL;
			/* saturating: a huge timeout is no deadline at all */
			if (v > INT64_MAX - before)
				CHECK_EQ(weft_ctx_deadline(c[n]), weft_ctx_deadline(parent));
			break;
		}
		CHECK_EQ(rc, 0);
		int e = weft_ctx_err(c[n]);
		if (pdone || known_done)
			CHECK(e == -ECANCELED || e == -ETIMEDOUT);
		if (known_done && !pdone)
			CHECK_EQ(e, -ETIMEDOUT);
		if (known_live)
			CHECK_EQ(e, 0);
		CHECK(weft_ctx_deadline(c[n]) <= weft_ctx_deadline(parent));
		if (e)
			CHECK_EQ(weft_ctx_wait(c[n], 0), e);
		else if (known_live)
			CHECK_EQ(weft_ctx_wait(c[n], INT64_MIN), -ETIMEDOUT);
	}
	/* causes: the first wins; 0 means -ECANCELED */
	for (int i = 0; i < n; i++) {
		uint8_t k = fz_u8(g_f);
		if (k & 1) {
			int before = weft_ctx_cause(c[i]);
			int cause = (int)fz_u32(g_f);
			weft_ctx_cancel_cause(c[i], cause);
			CHECK(weft_ctx_err(c[i]) != 0);
			if (before == 0) {
				int got = weft_ctx_cause(c[i]);
				/* ours, or a deadline that fired just before */
				CHECK(got == (cause ? cause : -ECANCELED) || got == -ETIMEDOUT);
			} else {
				CHECK_EQ(weft_ctx_cause(c[i]), before);
			}
		}
		if (k & 2) { /* an after_func stopped at once (or run, if done) */
			weft_ctx_stop_t *st = NULL;
			CHECK_EQ(weft_ctx_after_func(c[i], NULL, NULL, &st), -EINVAL);
			CHECK_EQ(weft_ctx_after_func(NULL, after_fn, NULL, &st), -EINVAL);
			CHECK_EQ(weft_ctx_after_func(c[i], after_fn, NULL, &st), 0);
			int s = weft_ctx_stop(st);
			/* 0 only if it was done (fn started): maybe by a
			 * deadline that fired meanwhile */
			CHECK(s == 1 || (s == 0 && weft_ctx_err(c[i]) != 0));
			CHECK_EQ(weft_ctx_stop(st), 0); /* once */
			weft_ctx_stop_release(st);
		}
	}
	CHECK_EQ(weft_ctx_err(NULL), -EINVAL);
	CHECK_EQ(weft_ctx_cause(NULL), -EINVAL);
	CHECK_EQ(weft_ctx_wait(NULL, 0), -EINVAL);
	weft_ctx_cancel(weft_ctx_background());
	weft_ctx_release(weft_ctx_background());
	CHECK_EQ(weft_ctx_err(weft_ctx_background()), 0);
	weft_ctx_cancel(NULL);
	weft_ctx_release(NULL);
	/* release in an order from the input: parents before children too */
	for (int i = 0; i < n; i++) {
		int j = (int)fz_below(g_f, (uint32_t)n);
		while (!c[j])
			j = (j + 1) % n;
		weft_ctx_release(c[j]);
		c[j] = NULL;
	}
}

/* ---- sem, wg ---- */

static void op_sync(void)
{
	weft_sem_t s;
	int64_t cap = fz_i64_edge(g_f);
	int rc = weft_sem_init(fz_u8(g_f) & 15 ? &s : NULL, cap);
	if (rc == -EINVAL)
		return;
	CHECK_EQ(rc, 0);
	CHECK(cap > 0 && cap <= WEFT_SEM_MAX_CAPACITY);
	int64_t n = fz_i64_edge(g_f);
	rc = weft_sem_try_acquire(&s, n);
	CHECK_EQ(rc, n < 0 || n > cap ? -EINVAL : 0);
	if (rc == 0)
		CHECK_EQ(weft_sem_release(&s, n), 0);
	CHECK_EQ(weft_sem_release(&s, 1), -EINVAL); /* all free: over-release */
	weft_sem_destroy(&s);
	weft_wg_t wg;
	CHECK_EQ(weft_wg_init(NULL), -EINVAL);
	CHECK_EQ(weft_wg_init(&wg), 0);
	CHECK_EQ(weft_wg_add(&wg, INT32_MIN), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, (int64_t)INT32_MAX + 1), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, INT64_MIN), -EINVAL);
	CHECK_EQ(weft_wg_wait(&wg), 0);
}

/* ---- errgroup ---- */

static int task_rc(weft_ctx_t *ctx, void *arg)
{
	CHECK(ctx != NULL);
	return (int)(intptr_t)arg;
}

static void op_group(void)
{
	weft_group_t *g = (weft_group_t *)1;
	weft_ctx_t *dctx = NULL, *parent = NULL;
	uint8_t k = fz_u8(g_f);
	CHECK_EQ(weft_group_create(NULL, NULL, NULL), -EINVAL);
	if (k & 1) {
		CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
		if (k & 2)
			weft_ctx_cancel(parent);
	}
	CHECK_EQ(weft_group_create(&g, parent, k & 4 ? &dctx : NULL), 0);
	if (k & 4)
		CHECK(dctx != NULL);
	int limit = (int)fz_i64_edge(g_f);
	CHECK_EQ(weft_group_set_limit(g, limit), 0);
	CHECK_EQ(weft_group_set_tasks(g, (int)fz_u32(g_f)), 0);
	CHECK_EQ(weft_group_go(g, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_group_try_go(NULL, task_rc, NULL), -EINVAL);
	int first = 0;
	unsigned n = fz_u8(g_f) % 4;
	for (unsigned i = 0; i < n; i++) {
		int r = (int)(int8_t)fz_u8(g_f);
		rc_again:;
		int rc = weft_group_try_go(g, task_rc, (void *)(intptr_t)r);
		if (limit == 0) {
			CHECK_EQ(rc, -EAGAIN); /* at the limit, always */
			continue;
		}
		if (rc == -EAGAIN && limit > 0) { /* a slot frees when a task returns */
			int w = weft_group_wait(g);
			CHECK(first == 12345 ? w != 0 : w == first);
			goto rc_again;
		}
		CHECK_EQ(rc, 0);
		/* the first nonzero of the group's life: the only one when
		 * tasks run one at a time; with more in flight, one of them */
		if (!first && r && (limit == 1 || n == 1))
			first = r;
		else if (!first && r)
			first = 12345; /* any nonzero */
	}
	int w = weft_group_wait(g);
	if (first == 12345)
		CHECK(w != 0);
	else
		CHECK_EQ(w, first);
	if (dctx)
		CHECK(weft_ctx_err(dctx) != 0); /* canceled when wait returns */
	weft_group_destroy(g);
	weft_ctx_release(parent);
}

/* ---- pool ---- */

static int job_ok(void *arg)
{
	return (int)(intptr_t)arg;
}

static void pool_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	(void)fn;
	(void)arg;
	CHECK(rc != 0);
	CHECK(user == (void *)&g_f);
}

static void pool_discard(weft_job_fn fn, void *arg, void *user)
{
	(void)fn;
	(void)arg;
	CHECK(user == (void *)&g_f);
}

static void op_pool(void)
{
	static const unsigned wv[] = {0, 1, 2, 3, WEFT_POOL_MAX_WORKERS, WEFT_POOL_MAX_WORKERS + 1,
				      UINT32_MAX};
	static char longname[4096];
	if (!longname[0])
		memset(longname, 'p', sizeof longname - 1);
	weft_pool_opts_t o;
	memset(&o, 0, sizeof o);
	o.workers = FZ_PICK(g_f, wv);
	o.min_workers = FZ_PICK(g_f, wv);
	o.max_workers = FZ_PICK(g_f, wv);
	o.queue_capacity = size_edge();
	o.idle_timeout_ns = fz_i64_edge(g_f);
	uint8_t k = fz_u8(g_f);
	o.on_error = k & 1 ? pool_err : NULL;
	o.on_discard = k & 2 ? pool_discard : NULL;
	o.user = (void *)&g_f;
	o.name = k & 4 ? NULL : k & 8 ? "" : longname;
	o.sched_batch = (int)(k & 0x30);
	o.tasks = k & 0x40 ? (int)fz_u32(g_f) : 0;
	bool null_opts = (k & 0x80) && (fz_u8(g_f) & 1);

	int want = 0;
	unsigned started; /* workers the pool starts at create */
	if (null_opts) {
		started = 2;
	} else {
		bool dyn = o.workers == 0;
		unsigned max = dyn ? o.max_workers : o.workers;
		if ((dyn && (o.max_workers == 0 || o.min_workers > o.max_workers)) ||
		    (!dyn && (o.min_workers || o.max_workers)) || max > WEFT_POOL_MAX_WORKERS ||
		    o.idle_timeout_ns < 0)
			want = -EINVAL;
		else if (o.queue_capacity > WEFT_POOL_MAX_QUEUE)
			want = -ENOMEM;
		size_t qb = ring_bytes(24, o.queue_capacity ? o.queue_capacity : 1024);
		if (want == 0 && qb > 64 * MIB)
			return; /* valid, but it would touch that much */
		started = dyn ? o.min_workers : o.workers;
	}
	if (want == 0 && started > 3)
		return; /* valid, but thousands of threads */
	weft_pool_t *p = (weft_pool_t *)1;
	CHECK_EQ(weft_pool_create(NULL, &o), -EINVAL);
	int rc = weft_pool_create(&p, null_opts ? NULL : &o);
	CHECK_EQ(rc, want);
	if (rc) {
		CHECK(p == (weft_pool_t *)1);
		return;
	}
	unsigned n = fz_u8(g_f) % 6;
	for (unsigned i = 0; i < n; i++) {
		rc = weft_pool_try_submit(p, job_ok, (void *)(intptr_t)(i & 1));
		CHECK(rc == 0 || rc == -EAGAIN);
	}
	CHECK_EQ(weft_pool_try_submit(p, NULL, NULL), -EINVAL);
	if (fz_u8(g_f) & 1)
		CHECK_EQ(weft_pool_wait(p), 0);
	int how = (int)(int8_t)fz_u8(g_f);
	rc = weft_pool_shutdown(p, how);
	CHECK_EQ(rc, how == WEFT_POOL_DRAIN || how == WEFT_POOL_CANCEL ? 0 : -EINVAL);
	weft_pool_stats_t s;
	CHECK_EQ(weft_pool_stats(p, &s), 0);
	if (rc == 0) {
		CHECK_EQ(s.submitted, s.completed + s.discarded);
		CHECK_EQ(weft_pool_try_submit(p, job_ok, NULL), -EPIPE);
	}
	weft_pool_destroy(p);
}

/* ---- pipeline ---- */

static int src_fn(weft_emit_t *out, void *user)
{
	unsigned n = (unsigned)(uintptr_t)user;
	unsigned char e[64] = {0};
	for (unsigned i = 0; i < n; i++)
		if (weft_emit(out, e))
			break;
	return 0;
}

static int stage_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	(void)in;
	unsigned char e[64] = {0};
	(void)weft_emit(out, e); /* an error: the pipeline is done */
	return 0;
}

static int sink_fn(const void *in, void *user)
{
	(void)in;
	__atomic_add_fetch((long *)user, 1, __ATOMIC_RELAXED);
	return 0;
}

static void stage_opts_from(weft_stage_opts_t *o, bool source)
{
	static const unsigned wv[] = {0, 1, 2, 3, 4096, 4097, UINT32_MAX};
	static const size_t esz[] = {0, 1, 8, 64};
	static const size_t caps[] = {0, 1, 2, 7, 64, WEFT_CHAN_MAX_CAPACITY + 1, SIZE_MAX};
	static const size_t wins[] = {0, 1, 2, 3, 64, SIZE_MAX};
	memset(o, 0, sizeof *o);
	uint8_t k = fz_u8(g_f);
	o->name = k & 1 ? NULL : k & 2 ? "" : "a-stage-name-longer-than-thirty-one-bytes";
	o->workers = FZ_PICK(g_f, wv);
	o->max_workers = FZ_PICK(g_f, wv);
	o->ordered = (k & 4) ? (int)fz_u8(g_f) : 0;
	o->out_elem_size = source && (k & 8) ? 8 : FZ_PICK(g_f, esz);
	o->out_capacity = FZ_PICK(g_f, caps);
	uint8_t ov = fz_u8(g_f);
	o->overflow = ov < 220 ? (int)(ov % 4) : (int)(ov % 9) - 4;
	o->spill_dir = (k & 16) ? dir_edge() : NULL;
	o->spill_max_bytes = fz_u8(g_f);
	o->window = FZ_PICK(g_f, wins);
	o->idle_ns = (k & 32) ? fz_i64_edge(g_f) : 0;
}

/* what add_stage checks before starting anything: -EINVAL, or 0 */
static int stage_invalid(const weft_stage_opts_t *o, int kind, size_t in_es)
{
	unsigned wk = o->workers ? o->workers : 1;
	unsigned mx = o->max_workers > wk ? o->max_workers : wk;
	if (mx > 4096 || o->idle_ns < 0 || (o->ordered && kind != WEFT_STAGE_STAGE))
		return -EINVAL;
	if (kind == WEFT_STAGE_SOURCE && !o->out_elem_size)
		return -EINVAL;
	if (kind == WEFT_STAGE_SINK)
		return 0;
	size_t es = o->out_elem_size ? o->out_elem_size : in_es;
	if (o->overflow < 0 || o->overflow > 3 ||
	    (o->overflow != WEFT_OVERFLOW_BLOCK && o->out_capacity == 0) ||
	    (o->overflow == WEFT_OVERFLOW_SPILL && es == 0))
		return -EINVAL;
	return 0;
}

static void op_pipeline(void)
{
	weft_pipeline_t *p = (weft_pipeline_t *)1;
	CHECK_EQ(weft_pipeline_create(NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pipeline_create(&p, NULL), 0);
	if (fz_u8(g_f) & 1)
		CHECK_EQ(weft_pipeline_set_tasks(p, 0), 0); /* threads */
	long sunk = 0;
	weft_chan_t *last = NULL;
	size_t last_es = 0;
	bool failed = false;
	for (int kind = WEFT_STAGE_SOURCE; kind <= WEFT_STAGE_SINK; kind++) {
		weft_stage_opts_t o;
		stage_opts_from(&o, kind == WEFT_STAGE_SOURCE);
		int want = stage_invalid(&o, kind, last_es);
		unsigned wk = o.workers ? o.workers : 1;
		unsigned mx = o.max_workers > wk ? o.max_workers : wk;
		size_t es = o.out_elem_size ? o.out_elem_size : last_es;
		if (want == 0 && kind != WEFT_STAGE_SINK) {
			if (o.out_capacity > WEFT_CHAN_MAX_CAPACITY)
				want = -ENOMEM;
			else if (o.overflow == WEFT_OVERFLOW_SPILL && !dir_ok(o.spill_dir))
				want = 1; /* the directory's errno */
		}
		if (want == 0 && o.ordered && mx > 1 && o.window == SIZE_MAX)
			want = -ENOMEM; /* the reorder window's slots */
		if (want == 0 && (mx > 4 || (o.ordered && mx > 1 && o.window > 4096)))
			break; /* valid, but thousands of workers or a huge window */
		if (want == 0 && es > 64)
			break;
		weft_chan_t *out = NULL;
		int rc;
		if (kind == WEFT_STAGE_SOURCE)
			rc = weft_pipeline_source(p, &out, src_fn, (void *)(uintptr_t)(fz_u8(g_f) % 20), &o);
		else if (kind == WEFT_STAGE_STAGE)
			rc = weft_pipeline_stage(p, last, &out, stage_fn, NULL, &o);
		else
			rc = weft_pipeline_sink(p, last, sink_fn, &sunk, &o);
		if (want == 1)
			CHECK(rc < 0 && rc != -EINVAL);
		else
			CHECK_EQ(rc, want);
		if (rc) {
			failed = true;
			break;
		}
		last = out;
		last_es = es;
	}
	/* bad calls: nothing started, nothing changed */
	weft_stage_opts_t z = {0};
	CHECK_EQ(weft_pipeline_source(p, NULL, src_fn, NULL, &z), -EINVAL);
	CHECK_EQ(weft_pipeline_sink(p, NULL, sink_fn, NULL, NULL), -EINVAL);
	weft_chan_t *outs[2];
	CHECK_EQ(weft_pipeline_fan_out(p, last, outs, 0, stage_fn, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pipeline_fan_out(p, last, outs, ((size_t)1 << 32) + 1, stage_fn, NULL, NULL),
		 -EINVAL);
	CHECK_EQ(weft_pipeline_fan_in(p, NULL, 1, outs, NULL), -EINVAL);
	CHECK_EQ(weft_pipeline_fan_in(p, outs, ((size_t)1 << 32) + 1, outs, NULL), -EINVAL);
	(void)failed;
	/* an unread output (no sink) would hold its source: cancel first */
	if (last || (fz_u8(g_f) & 1))
		CHECK_EQ(weft_pipeline_cancel(p), 0);
	int w = weft_pipeline_wait(p);
	CHECK(w == 0 || w == -ECANCELED);
	CHECK_EQ(weft_pipeline_wait(p), w);
	CHECK_EQ(weft_pipeline_sink(p, last, sink_fn, &sunk, NULL), -EINVAL); /* after wait */
	weft_pipeline_destroy(p);
}

/* ---- map, flight ---- */

static void vfree(void *v, void *user)
{
	(void)v;
	(void)user;
}

static void op_map(void)
{
	weft_map_opts_t o = {.value_free = fz_u8(g_f) & 1 ? vfree : NULL};
	uint8_t k = fz_u8(g_f);
	static const size_t hints[] = {0, 1, 1000, (size_t)1 << 40, (size_t)1 << 62, SIZE_MAX};
	o.capacity_hint = k < 240 ? hints[k % 6] : (size_t)fz_u64(g_f);
	/* 2^20 up to ~2^39: valid, tables of up to gigabytes to zero */
	if (o.capacity_hint > ((size_t)1 << 17) && o.capacity_hint < ((size_t)1 << 40))
		return;
	weft_map_t *m = (weft_map_t *)1;
	CHECK_EQ(weft_map_create(NULL, &o), -EINVAL);
	int rc = weft_map_create(&m, k & 0x80 ? NULL : &o);
	CHECK(rc == 0 || rc == -ENOMEM);
	if ((k & 0x80) || o.capacity_hint <= ((size_t)1 << 17))
		CHECK_EQ(rc, 0);
	if (rc) {
		CHECK(m == (weft_map_t *)1);
		return;
	}
	void *v;
	CHECK_EQ(weft_map_store(m, "k", 1, &o), 0);
	CHECK_EQ(weft_map_load(m, "k", 1, &v), 1);
	CHECK(v == &o);
	CHECK_EQ(weft_map_len(m), 1);
	weft_map_destroy(m);
	weft_flight_t *f;
	CHECK_EQ(weft_flight_create(NULL), -EINVAL);
	CHECK_EQ(weft_flight_create(&f), 0);
	CHECK_EQ(weft_flight_forget(f, NULL, 1), -EINVAL);
	weft_flight_destroy(f);
}

/* ---- breaker ---- */

static int64_t bclk;
static int64_t bclock(void *user)
{
	(void)user;
	return bclk;
}

/* forward only, saturating at the end of time */
static void bclk_advance(int64_t d)
{
	if (d > 0)
		bclk = bclk > INT64_MAX - d ? INT64_MAX : bclk + d;
}

static int bfn(void *arg)
{
	return (int)(intptr_t)arg;
}

static void op_breaker(void)
{
	static char longname[3000];
	if (!longname[0])
		memset(longname, 'n', sizeof longname - 1);
	weft_breaker_settings_t s;
	memset(&s, 0, sizeof s);
	uint8_t k = fz_u8(g_f);
	s.name = k & 1 ? NULL : k & 2 ? longname : "";
	s.max_requests = (uint32_t)fz_i64_edge(g_f);
	s.interval = fz_i64_edge(g_f);
	s.bucket_period = k & 4 ? fz_i64_edge(g_f) : 0;
	s.timeout = fz_i64_edge(g_f);
	s.clock = bclock;
	uint8_t r = fz_u8(g_f);
	if (r & 1)
		s.failure_rate = double_edge();
	if (r & 2) {
		s.slow_call_rate = double_edge();
		s.slow_call_duration = fz_i64_edge(g_f);
	}
	if (r & 4)
		s.half_open_success_rate = double_edge();
	if (r & 8) {
		s.backoff_multiplier = double_edge();
		s.backoff_max = fz_i64_edge(g_f);
		s.backoff_jitter = double_edge();
		s.seed = fz_u64(g_f);
	}
	if (r & 16) {
		s.window_calls = (uint32_t)fz_i64_edge(g_f);
		s.window_time = fz_i64_edge(g_f);
		s.window_buckets = (uint32_t)fz_i64_edge(g_f);
		s.min_calls = (uint32_t)fz_i64_edge(g_f);
	}
	bclk = fz_i64_edge(g_f);

#define BAD_RATE(x) (!((x) >= 0 && (x) <= 1))
	bool bad = BAD_RATE(s.failure_rate) || BAD_RATE(s.slow_call_rate) ||
		   BAD_RATE(s.half_open_success_rate) || BAD_RATE(s.backoff_jitter) ||
		   !(s.backoff_multiplier >= 0) || s.backoff_max < 0 || s.slow_call_duration < 0 ||
		   s.window_time < 0 || s.window_calls > WEFT_BREAKER_MAX_WINDOW ||
		   s.window_buckets > WEFT_BREAKER_MAX_WINDOW ||
		   (s.slow_call_rate > 0 && s.slow_call_duration == 0);
	if (!bad && s.interval > 0 && s.bucket_period > 0) {
		uint64_t nb = (uint64_t)(s.interval / s.bucket_period) +
			      (s.interval % s.bucket_period != 0);
		bad = nb > WEFT_BREAKER_MAX_WINDOW;
	}
	weft_breaker_t *b = (weft_breaker_t *)1;
	CHECK_EQ(weft_breaker_create(NULL, &s), -EINVAL);
	int rc = weft_breaker_create(&b, k & 0x80 ? NULL : &s);
	if (k & 0x80) {
		CHECK_EQ(rc, 0);
		weft_breaker_destroy(b);
		return;
	}
	if (bad) {
		CHECK_EQ(rc, -EINVAL);
		CHECK(b == NULL); /* "On failure *out is NULL" */
		return;
	}
	CHECK_EQ(rc, 0);
	/* calls on a clock that jumps anywhere forward, to the very end */
	unsigned n = fz_u8(g_f) % 64;
	for (unsigned i = 0; i < n; i++) {
		uint8_t c = fz_u8(g_f);
		if (c & 1) {
			bclk_advance(fz_i64_edge(g_f));
		}
		int res = 12345;
		switch ((c >> 1) % 6) {
		case 0:
		case 1:
		case 2:
			rc = weft_breaker_execute(b, bfn, (void *)(intptr_t)((c >> 4) % 3 - 1), &res);
			CHECK(rc == 0 || rc == -EBUSY || rc == -EAGAIN);
			break;
		case 3: {
			weft_breaker_ticket_t t;
			rc = weft_breaker_allow(b, &t);
			CHECK(rc == 0 || rc == -EBUSY || rc == -EAGAIN);
			if (rc == 0) {
				if (c & 0x40)
					bclk_advance(fz_i64_edge(g_f));
				CHECK_EQ(weft_breaker_done(b, &t, (int)(c >> 7)), 0);
			}
			break;
		}
		case 4:
			rc = (c >> 4) % 4;
			rc = rc == 0 ? weft_breaker_force_open(b) : rc == 1 ? weft_breaker_force_closed(b)
				 : rc == 2 ? weft_breaker_disable(b) : weft_breaker_reset(b);
			CHECK_EQ(rc, 0);
			break;
		default: {
			weft_breaker_stats_t st;
			CHECK_EQ(weft_breaker_stats(b, &st), 0);
			CHECK(st.state >= 0 && st.state <= 2);
			CHECK(st.mode >= 0 && st.mode <= 3);
			CHECK_EQ(st.rejected, st.rejected_open + st.rejected_half_open);
			CHECK(st.time_in_state >= 0);
			CHECK(st.open_timeout > 0);
			int state = weft_breaker_state(b);
			CHECK(state >= 0 && state <= 2);
			break;
		}
		}
	}
	weft_breaker_destroy(b);
}

/* ---- tasks and the runtime ---- */

static void task_done(void *arg)
{
	weft_wg_done(arg);
}

static void op_task(void)
{
	static char longname[200];
	if (!longname[0])
		memset(longname, 't', sizeof longname - 1);
	static const size_t stacks[] = {0, 1, 4096, 16384, 65537, GIB, GIB + 1, SIZE_MAX};
	weft_task_opts_t o = {.stack_size = FZ_PICK(g_f, stacks)};
	uint8_t k = fz_u8(g_f);
	o.name = k & 1 ? NULL : longname;
	weft_wg_t wg = WEFT_WG_INIT;
	CHECK_EQ(weft_go_opts(NULL, NULL, &o), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, 1), 0);
	int rc = weft_go_opts(task_done, &wg, k & 2 ? NULL : &o);
	bool big = !(k & 2) && o.stack_size > GIB;
	CHECK_EQ(rc, big ? -ENOMEM : 0);
	if (rc)
		CHECK_EQ(weft_wg_done(&wg), 0);
	CHECK_EQ(weft_wg_wait(&wg), 0); /* the task runs on a carrier */
	size_t ss = FZ_PICK(g_f, stacks);
	CHECK_EQ(weft_runtime_set_stack_size(ss), ss > GIB ? -ENOMEM : 0);
	CHECK_EQ(weft_runtime_set_stack_size(0), 0);
	unsigned procs = fz_u32(g_f);
	if (procs > 256)
		CHECK_EQ(weft_runtime_set_procs(procs), -EINVAL);
	else if (procs <= 2)
		CHECK_EQ(weft_runtime_set_procs(procs), 0);
}

/* ---- common ---- */

static void *wg_done_later(void *arg)
{
	weft_sleep(20000);
	weft_wg_done(arg);
	return NULL;
}

static void op_common(void)
{
	int64_t t = fz_i64_edge(g_f);
	int64_t before = weft_now();
	int64_t d = weft_deadline(t);
	int64_t after = weft_now();
	if (t <= 0)
		CHECK(d <= after);
	else
		CHECK(d == INT64_MAX || (d > before && d - t <= after && d - t >= before));
	int e = (int)fz_u32(g_f);
	const char *msg = weft_strerror(e);
	CHECK(msg != NULL && strlen(msg) < 1000);
	int64_t spin = fz_i64_edge(g_f);
	int64_t prev = weft_set_spin_ns(spin);
	CHECK(prev >= 0 && prev <= WEFT_SPIN_NS_MAX);
	if (fz_u8(g_f) & 1) { /* a wait that spins under it, ended by a thread */
		weft_wg_t wg = WEFT_WG_INIT;
		pthread_t t;
		CHECK_EQ(weft_wg_add(&wg, 1), 0);
		CHECK_EQ(pthread_create(&t, NULL, wg_done_later, &wg), 0);
		CHECK_EQ(weft_wg_wait(&wg), 0);
		pthread_join(t, NULL);
	}
	int64_t now_spin = weft_set_spin_ns(-1);
	CHECK_EQ(now_spin, spin < 0 ? prev : spin > WEFT_SPIN_NS_MAX ? WEFT_SPIN_NS_MAX : spin);
	weft_set_spin_ns(prev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	g_f = &f;
	while (fz_more(&f)) {
		switch (fz_u8(&f) % 12) {
		case 0:
			op_chan();
			break;
		case 1:
		case 2:
			op_chan_opts();
			break;
		case 3:
			op_ctx();
			break;
		case 4:
			op_sync();
			break;
		case 5:
			op_group();
			break;
		case 6:
			op_pool();
			break;
		case 7:
			op_pipeline();
			break;
		case 8:
			op_map();
			break;
		case 9:
			op_breaker();
			break;
		case 10:
			op_task();
			break;
		default:
			op_common();
			break;
		}
	}
	return 0;
}
