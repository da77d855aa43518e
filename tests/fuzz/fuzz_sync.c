/* tests/fuzz/fuzz_sync.c: the weighted semaphore, WaitGroup and Once
 * against sequential models.
 *
 * Semaphore (3, capacities from the edges: 1, 2^62 - 1, ...; invalid ones
 * must be -EINVAL): model = the free count. try_acquire / acquire (only
 * when the tokens are free) / acquire_until with a passed deadline /
 * acquire_ctx (canceled, expired, NULL, background) / release, with
 * weights from the edges (negative, 0, cap, cap + 1, INT64_MAX ...):
 * n < 0 or n > cap is -EINVAL everywhere, an over-release is -EINVAL and
 * changes nothing. A probe checks the free count exactly (try_acquire of
 * free + 1 fails, of free succeeds, and is given back).
 * WaitGroup (2): model = the counter. add with deltas from the edges
 * (|delta| > INT32_MAX, below zero, above INT32_MAX: -EINVAL, no change),
 * done, wait (only at zero), wait_until with a passed deadline (0 at zero,
 * else -ETIMEDOUT), init again.
 * Once (3): once and once_try with functions that return a value from the
 * input and may call onces themselves (their own: -EDEADLK; another: as
 * usual), up to a depth of 4; each function runs at most once and every
 * later caller gets its result (weft_once: 0). */
#include <errno.h>

#include <weft/ctx.h>
#include <weft/sync.h>

#include "fuzz.h"

#define NSEM 3
#define NWG 2
#define NONCE 3

static weft_ctx_t *ctx_canceled, *ctx_expired;

/* ---- semaphore ---- */

struct msem {
	weft_sem_t s;
	int64_t cap, free;
};

static int64_t weight(struct fz *f, const struct msem *m)
{
	switch (fz_u8(f) % 8) {
	case 0:
		return 0;
	case 1:
		return m->free;
	case 2:
		return m->cap - m->free; /* what is out */
	case 3:
		return m->cap;
	case 4:
		return m->cap + (int64_t)fz_below(f, 3); /* cap + 0..2: over */
	case 5:
		return fz_i64_edge(f);
	default:
		return (int64_t)fz_below(f, 5) + (m->free > 2 ? m->free - 2 : 0);
	}
}

static int sem_expect_acquire(struct msem *m, int64_t n)
{
	if (n < 0 || n > m->cap)
		return -EINVAL;
	if (m->free < n)
		return -EAGAIN;
	m->free -= n;
	return 0;
}

static void sem_init_from(struct fz *f, struct msem *m)
{
	for (;;) {
		int64_t cap = fz_i64_edge(f);
		if (fz_u8(f) & 1)
			cap = 1 + fz_below(f, 10); /* small ones, mostly */
		int rc = weft_sem_init(&m->s, cap);
		if (cap <= 0 || cap > WEFT_SEM_MAX_CAPACITY) {
			CHECK_EQ(rc, -EINVAL);
			if (!fz_more(f))
				cap = 1, rc = weft_sem_init(&m->s, cap);
			else
				continue;
		}
		CHECK_EQ(rc, 0);
		m->cap = m->free = cap;
		return;
	}
}

static void sem_op(struct fz *f, struct msem *m)
{
	int64_t n = weight(f, m);
	int rc, want;
	switch (fz_u8(f) % 7) {
	case 0:
		rc = weft_sem_try_acquire(&m->s, n);
		want = sem_expect_acquire(m, n);
		break;
	case 1: /* blocking, when it cannot wait */
		if (n >= 0 && n <= m->cap && m->free < n)
			return;
		rc = weft_sem_acquire(&m->s, n);
		want = sem_expect_acquire(m, n);
		break;
	case 2: /* a passed deadline: as try, -ETIMEDOUT */
		rc = weft_sem_acquire_until(&m->s, n, (fz_u8(f) & 1) ? INT64_MIN : weft_now() - 1);
		want = sem_expect_acquire(m, n);
		if (want == -EAGAIN)
			want = -ETIMEDOUT;
		break;
	case 3: { /* contexts: bad n first, then NULL, then a done one */
		uint8_t k = fz_u8(f) % 4;
		weft_ctx_t *c = k == 0 ? ctx_canceled : k == 1 ? ctx_expired : k == 2 ? NULL
							 : weft_ctx_background();
		if (k == 3 && n >= 0 && n <= m->cap && m->free < n)
			return; /* would wait */
		rc = weft_sem_acquire_ctx(&m->s, n, c);
		if (n < 0 || n > m->cap || !c)
			want = -EINVAL;
		else if (k == 0)
			want = -ECANCELED;
		else if (k == 1)
			want = -ETIMEDOUT;
		else
			want = sem_expect_acquire(m, n);
		break;
	}
	case 4: /* release: over-release is -EINVAL, nothing changed */
		rc = weft_sem_release(&m->s, n);
		if (n < 0 || n > m->cap || n > m->cap - m->free) {
			want = -EINVAL;
		} else {
			want = 0;
			m->free += n;
		}
		break;
	case 5: /* probe the free count exactly */
		if (m->free < m->cap)
			CHECK_EQ(weft_sem_try_acquire(&m->s, m->free + 1), -EAGAIN);
		CHECK_EQ(weft_sem_try_acquire(&m->s, m->free), 0);
		CHECK_EQ(weft_sem_release(&m->s, m->free), 0);
		if (m->free == m->cap)
			CHECK_EQ(weft_sem_release(&m->s, 1), -EINVAL);
		return;
	default: /* NULL: -EINVAL, destroy and init again */
		CHECK_EQ(weft_sem_try_acquire(NULL, 1), -EINVAL);
		CHECK_EQ(weft_sem_release(NULL, 1), -EINVAL);
		CHECK_EQ(weft_sem_init(NULL, 1), -EINVAL);
		if (fz_u8(f) & 1) {
			weft_sem_destroy(&m->s);
			sem_init_from(f, m);
		}
		return;
	}
	CHECK_EQ(rc, want);
}

/* ---- WaitGroup ---- */

struct mwg {
	weft_wg_t wg;
	int64_t n;
};

static void wg_op(struct fz *f, struct mwg *m)
{
	int rc, want;
	switch (fz_u8(f) % 6) {
	case 0:
	case 1: {
		int64_t d;
		uint8_t k = fz_u8(f) % 4;
		d = k == 0 ? fz_i64_edge(f) : k == 1 ? -m->n + (int64_t)fz_below(f, 3) - 1
				: k == 2 ? (int64_t)INT32_MAX - m->n + (int64_t)fz_below(f, 3) - 1
					 : (int64_t)(int8_t)fz_u8(f);
		rc = weft_wg_add(&m->wg, d);
		if (d == 0) {
			want = 0;
		} else if (d > INT32_MAX || d < -(int64_t)INT32_MAX || m->n + d < 0 ||
			   m->n + d > INT32_MAX) {
			want = -EINVAL;
		} else {
			want = 0;
			m->n += d;
		}
		break;
	}
	case 2:
		rc = weft_wg_done(&m->wg);
		want = m->n > 0 ? 0 : -EINVAL;
		if (m->n > 0)
			m->n--;
		break;
	case 3:
		if (m->n)
			return; /* would wait */
		rc = weft_wg_wait(&m->wg);
		want = 0;
		break;
	case 4:
		rc = weft_wg_wait_until(&m->wg, (fz_u8(f) & 1) ? 0 : weft_now());
		want = m->n ? -ETIMEDOUT : 0;
		break;
	default:
		CHECK_EQ(weft_wg_add(NULL, 1), -EINVAL);
		CHECK_EQ(weft_wg_wait(NULL), -EINVAL);
		rc = weft_wg_init(&m->wg);
		want = 0;
		m->n = 0;
		break;
	}
	CHECK_EQ(rc, want);
}

/* ---- Once ---- */

struct monce {
	weft_once_t o;
	int state; /* 0 new, 1 running, 2 done */
	int result;
	int runs;
	int fn_ret; /* what its function returned */
};

static struct monce onces[NONCE];
static struct fz *g_f;
static int depth;

static void once_call(struct monce *m);

/* a function run by a once: maybe a nested once call, then a result */
static int body(struct monce *m)
{
	m->runs++;
	CHECK_EQ(m->runs, 1);
	if (depth < 4 && (fz_u8(g_f) & 1)) {
		depth++;
		once_call(&onces[fz_below(g_f, NONCE)]);
		depth--;
	}
	uint8_t k = fz_u8(g_f);
	m->fn_ret = k < 128 ? 0 : k < 192 ? (int)(k - 160) : (int)fz_u32(g_f);
	return m->fn_ret;
}

static void fn_void(void *arg)
{
	(void)body(arg);
}

static int fn_int(void *arg)
{
	return body(arg);
}

static void once_call(struct monce *m)
{
	bool try_ = fz_u8(g_f) & 1;
	int rc, want;
	if (m->state == 1) { /* from inside its own function */
		rc = try_ ? weft_once_try(&m->o, fn_int, m) : weft_once(&m->o, fn_void, m);
		CHECK_EQ(rc, -EDEADLK);
		return;
	}
	if (m->state == 2) {
		rc = try_ ? weft_once_try(&m->o, fn_int, m) : weft_once(&m->o, fn_void, m);
		CHECK_EQ(rc, try_ ? m->result : 0);
		return;
	}
	m->state = 1;
	if (try_) {
		rc = weft_once_try(&m->o, fn_int, m);
		want = m->fn_ret; /* whatever its sign */
		m->result = m->fn_ret;
	} else {
		rc = weft_once(&m->o, fn_void, m);
		want = 0;
		m->result = 0;
	}
	m->state = 2;
	CHECK_EQ(m->runs, 1);
	CHECK_EQ(rc, want);
	/* every later caller gets the same */
	CHECK_EQ(weft_once_try(&m->o, fn_int, m), m->result);
	CHECK_EQ(weft_once(&m->o, fn_void, m), 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	if (!ctx_canceled) {
		CHECK_EQ(weft_ctx_with_cancel(&ctx_canceled, weft_ctx_background()), 0);
		weft_ctx_cancel(ctx_canceled);
		CHECK_EQ(weft_ctx_with_deadline(&ctx_expired, weft_ctx_background(), 1), 0);
	}
	struct msem sems[NSEM];
	struct mwg wgs[NWG];
	for (int i = 0; i < NSEM; i++)
		sem_init_from(&f, &sems[i]);
	for (int i = 0; i < NWG; i++) {
		CHECK_EQ(weft_wg_init(&wgs[i].wg), 0);
		wgs[i].n = 0;
	}
	memset(onces, 0, sizeof onces); /* WEFT_ONCE_INIT: all zero */
	g_f = &f;
	depth = 0;
	while (fz_more(&f)) {
		uint8_t op = fz_u8(&f);
		switch (op % 4) {
		case 0:
		case 1:
			sem_op(&f, &sems[(op >> 2) % NSEM]);
			break;
		case 2:
			wg_op(&f, &wgs[(op >> 2) % NWG]);
			break;
		default:
			once_call(&onces[(op >> 2) % NONCE]);
			break;
		}
	}
	/* the once bad arguments, once per input */
	CHECK_EQ(weft_once(NULL, fn_void, NULL), -EINVAL);
	CHECK_EQ(weft_once(&onces[0].o, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_once_try(&onces[0].o, NULL, NULL), -EINVAL);
	for (int i = 0; i < NSEM; i++)
		weft_sem_destroy(&sems[i].s);
	return 0;
}
