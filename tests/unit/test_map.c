/* tests/unit/test_map.c: the concurrent map and singleflight (weft/map.h).
 *
 * The conformance part runs on every implementation of the contract: weft's
 * map and the lock-based baselines (bench/baseline/map_mutex.c, mutex and
 * rwlock flavours):
 *   args      bad input: -EINVAL, nothing changed
 *   basics    every call's result and out pointers; value_free once per
 *             value that left, never for load_and_delete's / swap's
 *   model     randomized: every call (all of them, clear and range too)
 *             against a plain array model, result by result; then every
 *             value accounted for exactly once
 *   nested    map calls from range's fn and from compute
 *   compute   64 threads (then 64 tasks) race get_or_compute on one key:
 *             one compute; an error is shared by everyone and not cached
 *   range     range while others store and delete: each key present for
 *             the whole call seen exactly once
 *   sections  readers in read_begin/read_end never see a freed value while
 *             writers replace and delete (value_free poisons; the memory
 *             is kept until the end so a late read finds the poison)
 * weft only: singleflight (do, shared, errors, forget).
 * Every blocking call is bounded by a partner that is guaranteed to act;
 * no durations are asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/map.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "map_mutex.h"
#include "map_vals.h"
#include "participant.h"

/* ---- the implementations ------------------------------------------------ */

struct mimpl {
	const char *name;
	int (*create)(void **out, const weft_map_opts_t *o);
	void (*destroy)(void *m);
	int (*load)(void *m, const void *k, size_t kl, void **v);
	int (*store)(void *m, const void *k, size_t kl, void *v);
	int (*load_or_store)(void *m, const void *k, size_t kl, void *v, void **a);
	int (*load_and_delete)(void *m, const void *k, size_t kl, void **v);
	int (*del)(void *m, const void *k, size_t kl);
	int (*swap)(void *m, const void *k, size_t kl, void *v, void **p);
	int (*cas)(void *m, const void *k, size_t kl, void *o, void *v);
	int (*cad)(void *m, const void *k, size_t kl, void *o);
	int (*range)(void *m, int (*fn)(const void *, size_t, void *, void *), void *u);
	size_t (*len)(void *m);
	int (*clear)(void *m);
	int (*goc)(void *m, const void *k, size_t kl,
		   int (*c)(const void *, size_t, void **, void *), void *u, void **v);
	void (*rbegin)(void *m);
	void (*rend)(void *m);
};

#define WRAP(P, T)                                                                          \
	static void P##_destroy_(void *m) { P##_destroy((T *)m); }                          \
	static int P##_load_(void *m, const void *k, size_t kl, void **v)                   \
	{ return P##_load((T *)m, k, kl, v); }                                              \
	static int P##_store_(void *m, const void *k, size_t kl, void *v)                   \
	{ return P##_store((T *)m, k, kl, v); }                                             \
	static int P##_los_(void *m, const void *k, size_t kl, void *v, void **a)           \
	{ return P##_load_or_store((T *)m, k, kl, v, a); }                                  \
	static int P##_lad_(void *m, const void *k, size_t kl, void **v)                    \
	{ return P##_load_and_delete((T *)m, k, kl, v); }                                   \
	static int P##_del_(void *m, const void *k, size_t kl)                              \
	{ return P##_delete((T *)m, k, kl); }                                               \
	static int P##_swap_(void *m, const void *k, size_t kl, void *v, void **p)          \
	{ return P##_swap((T *)m, k, kl, v, p); }                                           \
	static int P##_cas_(void *m, const void *k, size_t kl, void *o, void *v)            \
	{ return P##_compare_and_swap((T *)m, k, kl, o, v); }                               \
	static int P##_cad_(void *m, const void *k, size_t kl, void *o)                     \
	{ return P##_compare_and_delete((T *)m, k, kl, o); }                                \
	static int P##_range_(void *m, int (*fn)(const void *, size_t, void *, void *),     \
			      void *u)                                                      \
	{ return P##_range((T *)m, fn, u); }                                                \
	static size_t P##_len_(void *m) { return P##_len((T *)m); }                         \
	static int P##_clear_(void *m) { return P##_clear((T *)m); }                        \
	static int P##_goc_(void *m, const void *k, size_t kl,                              \
			    int (*c)(const void *, size_t, void **, void *), void *u, void **v) \
	{ return P##_get_or_compute((T *)m, k, kl, c, u, v); }                              \
	static void P##_rbegin_(void *m) { P##_read_begin((T *)m); }                        \
	static void P##_rend_(void *m) { P##_read_end((T *)m); }

#define IMPL(NAME, P, CREATE)                                                              \
	{ NAME, CREATE, P##_destroy_, P##_load_, P##_store_, P##_los_, P##_lad_, P##_del_, \
	  P##_swap_, P##_cas_, P##_cad_, P##_range_, P##_len_, P##_clear_, P##_goc_,       \
	  P##_rbegin_, P##_rend_ }

WRAP(weft_map, weft_map_t)
WRAP(lmap, lmap_t)

static int weft_create_(void **out, const weft_map_opts_t *o)
{
	return weft_map_create((weft_map_t **)out, o);
}
static int mutex_create_(void **out, const weft_map_opts_t *o)
{
	return lmap_create((lmap_t **)out, o, false);
}
static int rwlock_create_(void **out, const weft_map_opts_t *o)
{
	return lmap_create((lmap_t **)out, o, true);
}

static const struct mimpl impls[] = {
	IMPL("weft", weft_map, weft_create_),
	IMPL("mutex", lmap, mutex_create_),
	IMPL("rwlock", lmap, rwlock_create_),
};
#define NIMPL (sizeof impls / sizeof impls[0])

static const struct mimpl *I;

static const weft_map_opts_t vopts = { .value_free = val_free, .user = &V };

static void *mk(void)
{
	void *m = NULL;
	CHECK_EQ(I->create(&m, &vopts), 0);
	return m;
}

/* ---- args ----------------------------------------------------------------- */

static int never_compute(const void *k, size_t kl, void **v, void *u)
{
	(void)k, (void)kl, (void)v, (void)u;
	CHECK(!"compute called");
	return 0;
}

static int count_fn(const void *k, size_t kl, void *v, void *u)
{
	(void)k, (void)kl, (void)v;
	(*(int *)u)++;
	return 0;
}

static void test_args(void)
{
	vals_reset(4);
	void *m = NULL, *v = (void *)1, *a = (void *)1;
	CHECK_EQ(I->create(NULL, NULL), -EINVAL);
	CHECK_EQ(I->create(&m, NULL), 0);
	I->destroy(m);
	m = mk();
	struct val *x = val_new(0);
	CHECK_EQ(I->store(m, "k", 1, x), 0);
	/* NULL map */
	CHECK_EQ(I->load(NULL, "k", 1, &v), -EINVAL);
	CHECK_EQ(I->store(NULL, "k", 1, x), -EINVAL);
	CHECK_EQ(I->load_or_store(NULL, "k", 1, x, &a), -EINVAL);
	CHECK_EQ(I->load_and_delete(NULL, "k", 1, &v), -EINVAL);
	CHECK_EQ(I->del(NULL, "k", 1), -EINVAL);
	CHECK_EQ(I->swap(NULL, "k", 1, x, &v), -EINVAL);
	CHECK_EQ(I->cas(NULL, "k", 1, x, x), -EINVAL);
	CHECK_EQ(I->cad(NULL, "k", 1, x), -EINVAL);
	CHECK_EQ(I->range(NULL, count_fn, NULL), -EINVAL);
	CHECK_EQ(I->len(NULL), 0);
	CHECK_EQ(I->clear(NULL), -EINVAL);
	CHECK_EQ(I->goc(NULL, "k", 1, never_compute, NULL, &v), -EINVAL);
	I->destroy(NULL);
	I->rbegin(NULL);
	I->rend(NULL);
	/* NULL key with klen > 0, oversized key */
	CHECK_EQ(I->load(m, NULL, 1, &v), -EINVAL);
	CHECK_EQ(I->store(m, NULL, 2, x), -EINVAL);
	CHECK_EQ(I->del(m, NULL, 1), -EINVAL);
	CHECK_EQ(I->store(m, "k", WEFT_MAP_MAX_KEY + 1, x), -EINVAL);
	CHECK_EQ(I->goc(m, NULL, 3, never_compute, NULL, &v), -EINVAL);
	/* NULL out pointers, NULL functions */
	CHECK_EQ(I->load(m, "k", 1, NULL), -EINVAL);
	CHECK_EQ(I->load_or_store(m, "k", 1, x, NULL), -EINVAL);
	CHECK_EQ(I->load_and_delete(m, "k", 1, NULL), -EINVAL);
	CHECK_EQ(I->swap(m, "k", 1, x, NULL), -EINVAL);
	CHECK_EQ(I->range(m, NULL, NULL), -EINVAL);
	CHECK_EQ(I->goc(m, "k", 1, NULL, NULL, &v), -EINVAL);
	CHECK_EQ(I->goc(m, "k", 1, never_compute, NULL, NULL), -EINVAL);
	/* nothing changed */
	CHECK_EQ(I->len(m), 1);
	CHECK_EQ(I->load(m, "k", 1, &v), 1);
	CHECK(v == x);
	CHECK_EQ(atomic_load(&V.total), 0);
	/* the empty key is a key; NULL with klen 0 is the empty key */
	struct val *e = val_new(1);
	CHECK_EQ(I->store(m, NULL, 0, e), 0);
	CHECK_EQ(I->load(m, "", 0, &v), 1);
	CHECK(v == e);
	CHECK_EQ(I->len(m), 2);
	I->destroy(m);
	CHECK_EQ(atomic_load(&V.total), 2);
}

/* ---- basics ---------------------------------------------------------------- */

static void test_basics(void)
{
	vals_reset(16);
	void *m = mk(), *v, *a;
	struct val *x[8];
	for (int i = 0; i < 8; i++)
		x[i] = val_new((uint32_t)i);

	v = (void *)1;
	CHECK_EQ(I->load(m, "a", 1, &v), 0);
	CHECK(v == NULL);
	CHECK_EQ(I->store(m, "a", 1, x[0]), 0);
	CHECK_EQ(I->load(m, "a", 1, &v), 1);
	CHECK(v == x[0]);
	/* store over: x0 leaves to value_free */
	CHECK_EQ(I->store(m, "a", 1, x[1]), 0);
	/* load_or_store */
	a = (void *)1;
	CHECK_EQ(I->load_or_store(m, "a", 1, x[2], &a), 1);
	CHECK(a == x[1]);
	CHECK_EQ(I->load_or_store(m, "b", 1, x[2], &a), 0);
	CHECK(a == NULL);
	CHECK_EQ(I->len(m), 2);
	/* swap: the previous is handed back, not freed */
	CHECK_EQ(I->swap(m, "a", 1, x[3], &v), 1);
	CHECK(v == x[1]);
	CHECK_EQ(I->swap(m, "c", 1, x[4], &v), 0);
	CHECK(v == NULL);
	CHECK(atomic_load(&x[1]->magic) == LIVE);
	val_drop(x[1]);
	/* compare_and_swap */
	CHECK_EQ(I->cas(m, "a", 1, x[0], x[5]), 0);
	CHECK_EQ(I->cas(m, "zz", 2, x[3], x[5]), 0);
	CHECK_EQ(I->cas(m, "a", 1, x[3], x[5]), 1);
	/* compare_and_delete */
	CHECK_EQ(I->cad(m, "a", 1, x[3]), 0);
	CHECK_EQ(I->cad(m, "zz", 2, NULL), 0);
	CHECK_EQ(I->cad(m, "a", 1, x[5]), 1);
	CHECK_EQ(I->load(m, "a", 1, &v), 0);
	/* load_and_delete hands back */
	CHECK_EQ(I->load_and_delete(m, "b", 1, &v), 1);
	CHECK(v == x[2]);
	CHECK_EQ(I->load_and_delete(m, "b", 1, &v), 0);
	CHECK(v == NULL);
	val_drop(x[2]);
	/* delete */
	CHECK_EQ(I->del(m, "c", 1), 1);
	CHECK_EQ(I->del(m, "c", 1), 0);
	CHECK_EQ(I->len(m), 0);
	/* a key comes back after delete */
	CHECK_EQ(I->store(m, "c", 1, x[6]), 0);
	CHECK_EQ(I->load(m, "c", 1, &v), 1);
	CHECK(v == x[6]);
	/* NULL is a value */
	CHECK_EQ(I->store(m, "n", 1, NULL), 0);
	v = (void *)1;
	CHECK_EQ(I->load(m, "n", 1, &v), 1);
	CHECK(v == NULL);
	CHECK_EQ(I->del(m, "n", 1), 1);
	/* clear: x6 leaves */
	CHECK_EQ(I->store(m, "d", 1, x[7]), 0);
	CHECK_EQ(I->clear(m), 0);
	CHECK_EQ(I->len(m), 0);
	CHECK_EQ(I->load(m, "c", 1, &v), 0);
	/* value_free runs once no reader can hold the value (maybe later
	 * than the call that removed it): count at destroy */
	I->destroy(m);
	for (int i = 0; i < 8; i++)
		if (i != 1 && i != 2)
			CHECK_EQ(atomic_load(&V.freed[i]), 1);
}

/* ---- a value replaced by itself ---------------------------------------------- */

/* store(k, v) over v and compare_and_swap(k, v, v) leave v in the map: it
 * must not go to value_free then (it did, and again at destroy: a double
 * free; found by fuzz_map). Neither for get_or_compute when compute
 * returns the value stored meanwhile. */
static void *same_v;
static void *same_m;

static int compute_stores_same(const void *k, size_t kl, void **v, void *u)
{
	(void)u;
	CHECK_EQ(I->store(same_m, k, kl, same_v), 0);
	*v = same_v;
	return 0;
}

static void test_same_value(void)
{
	vals_reset(2);
	void *m = mk(), *v;
	struct val *x = val_new(0), *y = val_new(1);
	CHECK_EQ(I->store(m, "k", 1, x), 0);
	CHECK_EQ(I->store(m, "k", 1, x), 0);
	CHECK_EQ(I->cas(m, "k", 1, x, x), 1);
	for (int i = 0; i < 100; i++) /* let reclamation run meanwhile */
		CHECK_EQ(I->store(m, "j", 1, NULL), 0);
	CHECK_EQ(I->clear(m), 0); /* x leaves here, once (a second free fails) */
	same_m = m;
	same_v = y;
	CHECK_EQ(I->goc(m, "g", 1, compute_stores_same, NULL, &v), 1);
	CHECK(v == y);
	CHECK_EQ(I->load(m, "g", 1, &v), 1);
	CHECK(v == y);
	I->destroy(m);
	CHECK_EQ(atomic_load(&V.freed[0]), 1);
	CHECK_EQ(atomic_load(&V.freed[1]), 1);
}

/* ---- model ---------------------------------------------------------------- */

enum { MK = 40, MOPS = 30000 };

static char mkeys[MK][40];
static size_t mklen[MK];

struct mdl {
	bool has[MK];
	struct val *v[MK];
};

struct rseen {
	struct mdl *md;
	int seen[MK];
	int n;
};

static int key_index(const void *k, size_t kl)
{
	for (int i = 0; i < MK; i++)
		if (mklen[i] == kl && memcmp(mkeys[i], k, kl) == 0)
			return i;
	return -1;
}

static int range_check(const void *k, size_t kl, void *v, void *u)
{
	struct rseen *s = u;
	int i = key_index(k, kl);
	CHECK(i >= 0);
	CHECK(s->md->has[i]);
	CHECK(s->md->v[i] == v);
	s->seen[i]++;
	s->n++;
	return 0;
}

static int stop_at_3(const void *k, size_t kl, void *v, void *u)
{
	(void)k, (void)kl, (void)v;
	return ++*(int *)u == 3 ? 42 : 0;
}

struct cmp_arg {
	struct val *give;
	int err;
	int calls;
};

static int model_compute(const void *k, size_t kl, void **v, void *u)
{
	(void)k, (void)kl;
	struct cmp_arg *c = u;
	c->calls++;
	if (c->err)
		return c->err;
	*v = c->give;
	return 0;
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_model(void)
{
	uint32_t nid = MOPS + 8;
	vals_reset(nid);
	uint64_t r = 0x1234567 ^ (uint64_t)time(NULL);
	for (int i = 0; i < MK; i++) {
		/* lengths 0..39, some sharing prefixes */
		mklen[i] = (size_t)(i * 7 % 41); /* distinct lengths: distinct keys */
		for (size_t j = 0; j < mklen[i]; j++)
			mkeys[i][j] = (char)('a' + (i + j) % 3);
		if (mklen[i])
			mkeys[i][0] = (char)i;
	}
	void *m = mk();
	struct mdl md;
	memset(&md, 0, sizeof md);
	bool handed[MOPS + 8] = { 0 }; /* ids handed back to us */
	bool made[MOPS + 8] = { 0 };
	uint32_t next = 0;
	for (int op = 0; op < MOPS; op++) {
		int k = (int)(xs(&r) % MK), rc;
		const char *key = mkeys[k];
		size_t kl = mklen[k];
		void *v = (void *)1;
		struct val *nv = val_new(next);
		made[next++] = true;
		bool used = false;
		switch (xs(&r) % 13) {
		case 0:
		case 1:
			rc = I->load(m, key, kl, &v);
			CHECK_EQ(rc, md.has[k]);
			CHECK(v == (md.has[k] ? md.v[k] : NULL));
			break;
		case 2:
			CHECK_EQ(I->store(m, key, kl, nv), 0);
			md.has[k] = true;
			md.v[k] = nv;
			used = true;
			break;
		case 3:
			rc = I->load_or_store(m, key, kl, nv, &v);
			CHECK_EQ(rc, md.has[k]);
			if (rc)
				CHECK(v == md.v[k]);
			else {
				CHECK(v == NULL);
				md.has[k] = true;
				md.v[k] = nv;
				used = true;
			}
			break;
		case 4:
			rc = I->load_and_delete(m, key, kl, &v);
			CHECK_EQ(rc, md.has[k]);
			CHECK(v == (md.has[k] ? md.v[k] : NULL));
			if (rc) {
				handed[((struct val *)v)->id] = true;
				val_drop(v);
			}
			md.has[k] = false;
			break;
		case 5:
			CHECK_EQ(I->del(m, key, kl), md.has[k]);
			md.has[k] = false;
			break;
		case 6:
			rc = I->swap(m, key, kl, nv, &v);
			CHECK_EQ(rc, md.has[k]);
			CHECK(v == (md.has[k] ? md.v[k] : NULL));
			if (rc) {
				handed[((struct val *)v)->id] = true;
				val_drop(v);
			}
			md.has[k] = true;
			md.v[k] = nv;
			used = true;
			break;
		case 7: {
			/* half the time the right old value, else one never stored */
			void *old = (xs(&r) & 1) && md.has[k] ? md.v[k] : (void *)mkeys;
			bool ok = md.has[k] && md.v[k] == old;
			CHECK_EQ(I->cas(m, key, kl, old, nv), ok);
			if (ok) {
				md.v[k] = nv;
				used = true;
			}
			break;
		}
		case 8: {
			void *old = (xs(&r) & 1) && md.has[k] ? md.v[k] : (void *)mkeys;
			bool ok = md.has[k] && md.v[k] == old;
			CHECK_EQ(I->cad(m, key, kl, old), ok);
			if (ok)
				md.has[k] = false;
			break;
		}
		case 9: {
			struct cmp_arg c = { nv, (xs(&r) % 3 == 0) ? -EIO : 0, 0 };
			rc = I->goc(m, key, kl, model_compute, &c, &v);
			if (md.has[k]) {
				CHECK_EQ(rc, 1);
				CHECK_EQ(c.calls, 0);
				CHECK(v == md.v[k]);
			} else if (c.err) {
				CHECK_EQ(rc, -EIO);
				CHECK(v == NULL);
				CHECK_EQ(c.calls, 1);
			} else {
				CHECK_EQ(rc, 0);
				CHECK(v == nv);
				md.has[k] = true;
				md.v[k] = nv;
				used = true;
			}
			break;
		}
		case 10: {
			size_t present = 0;
			for (int i = 0; i < MK; i++)
				present += md.has[i];
			CHECK_EQ(I->len(m), present);
			struct rseen s = { .md = &md };
			CHECK_EQ(I->range(m, range_check, &s), 0);
			for (int i = 0; i < MK; i++)
				CHECK_EQ(s.seen[i], md.has[i]);
			int cnt = 0;
			rc = I->range(m, stop_at_3, &cnt);
			CHECK_EQ(rc, s.n >= 3 ? 42 : 0);
			CHECK_EQ(cnt, s.n >= 3 ? 3 : s.n);
			break;
		}
		case 11:
			if (xs(&r) % 50 == 0) {
				CHECK_EQ(I->clear(m), 0);
				memset(md.has, 0, sizeof md.has);
			}
			break;
		case 12:
			I->rbegin(m);
			rc = I->load(m, key, kl, &v);
			CHECK_EQ(rc, md.has[k]);
			I->rend(m);
			break;
		}
		if (!used) {
			made[nv->id] = false;
			val_drop(nv);
		}
	}
	I->destroy(m);
	/* every value made and kept by the map freed once by value_free;
	 * those handed back never */
	for (uint32_t i = 0; i < next; i++) {
		if (!made[i])
			CHECK_EQ(atomic_load(&V.freed[i]), 0);
		else
			CHECK_EQ(atomic_load(&V.freed[i]), handed[i] ? 0 : 1);
	}
}

/* ---- nested -------------------------------------------------------------- */

static void *g_m;

static int nested_fn(const void *k, size_t kl, void *v, void *u)
{
	(void)v, (void)u;
	char nk[64];
	void *x;
	CHECK(kl < 60);
	memcpy(nk, k, kl);
	nk[kl] = '+';
	/* every call, on the map being ranged */
	CHECK_EQ(I->load(g_m, k, kl, &x), 1);
	CHECK_EQ(I->store(g_m, nk, kl + 1, NULL), 0);
	CHECK_EQ(I->del(g_m, nk, kl + 1), 1);
	I->rbegin(g_m);
	CHECK(I->len(g_m) >= 1);
	I->rend(g_m);
	return 0;
}

static int nested_compute(const void *k, size_t kl, void **v, void *u)
{
	(void)u;
	void *x;
	/* other keys: fine; our own key: absent meanwhile; itself: EDEADLK */
	CHECK_EQ(I->store(g_m, "other", 5, NULL), 0);
	CHECK_EQ(I->load(g_m, k, kl, &x), 0);
	CHECK_EQ(I->goc(g_m, k, kl, never_compute, NULL, &x), -EDEADLK);
	int cnt = 0;
	CHECK_EQ(I->range(g_m, count_fn, &cnt), 0);
	*v = NULL;
	return 0;
}

static void test_nested(void)
{
	vals_reset(1);
	void *m = NULL;
	CHECK_EQ(I->create(&m, NULL), 0);
	g_m = m;
	for (int i = 0; i < 100; i++) {
		char k[16];
		int n = snprintf(k, sizeof k, "k%d", i);
		CHECK_EQ(I->store(m, k, (size_t)n, NULL), 0);
	}
	CHECK_EQ(I->range(m, nested_fn, NULL), 0);
	CHECK_EQ(I->len(m), 100);
	void *v;
	CHECK_EQ(I->goc(m, "new", 3, nested_compute, NULL, &v), 0);
	CHECK_EQ(I->load(m, "other", 5, &v), 1);
	CHECK_EQ(I->len(m), 102);
	I->destroy(m);
}

/* ---- compute once ------------------------------------------------------------ */

enum { HERD = 64 };

struct herd {
	void *m;
	atomic_int computes, arrived, in_compute;
	int err; /* compute's result */
	weft_wg_t gate;
	struct val *give;
};

struct herd_arg {
	struct herd *h;
	int rc;
	void *v;
};

static int herd_compute(const void *k, size_t kl, void **v, void *u)
{
	(void)k, (void)kl;
	struct herd *h = u;
	CHECK_EQ(atomic_fetch_add(&h->in_compute, 1), 0);
	atomic_fetch_add(&h->computes, 1);
	/* hold the compute until every caller has arrived (they then wait
	 * on us), plus a moment so they park */
	while (atomic_load(&h->arrived) < HERD)
		weft_sleep(100000);
	weft_sleep(20000000);
	atomic_fetch_sub(&h->in_compute, 1);
	if (h->err)
		return h->err;
	*v = h->give;
	return 0;
}

static void *herd_caller(void *p)
{
	struct herd_arg *a = p;
	struct herd *h = a->h;
	atomic_fetch_add(&h->arrived, 1);
	a->rc = I->goc(h->m, "hot", 3, herd_compute, h, &a->v);
	return NULL;
}

static void herd_round(struct herd *h, struct herd_arg *a, int err)
{
	pthread_t t[HERD];
	h->err = err;
	atomic_store(&h->arrived, 0);
	atomic_store(&h->computes, 0);
	for (int i = 0; i < HERD; i++) {
		a[i] = (struct herd_arg){ .h = h };
		participant_start(&t[i], 0, herd_caller, &a[i]);
	}
	for (int i = 0; i < HERD; i++)
		participant_join(t[i]);
}

static void test_compute(bool tasks)
{
	vals_reset(2);
	participants_tasks(tasks);
	struct herd h = { .m = mk() };
	struct herd_arg a[HERD];
	h.give = val_new(0);

	/* an error: everyone gets it (the waiters share it; a caller that
	 * came after it computes again and fails the same way), nothing is
	 * stored; at most one compute at a time (herd_compute checks) */
	herd_round(&h, a, -EIO);
	CHECK(atomic_load(&h.computes) >= 1);
	for (int i = 0; i < HERD; i++)
		CHECK_EQ(a[i].rc, -EIO);
	void *v;
	CHECK_EQ(I->load(h.m, "hot", 3, &v), 0);
	int first = atomic_load(&h.computes);
	/* not cached: the next round computes, once */
	herd_round(&h, a, 0);
	CHECK_EQ(atomic_load(&h.computes), 1);
	int zeros = 0;
	for (int i = 0; i < HERD; i++) {
		CHECK(a[i].rc == 0 || a[i].rc == 1);
		zeros += a[i].rc == 0;
		CHECK(a[i].v == h.give);
	}
	CHECK_EQ(zeros, 1);
	fprintf(stderr, " (error round: %d compute%s)", first, first == 1 ? "" : "s");
	I->destroy(h.m);
	CHECK_EQ(atomic_load(&V.freed[0]), 1);
	participants_tasks(false);
}

static void test_compute_threads(void)
{
	test_compute(false);
}

static void test_compute_tasks(void)
{
	test_compute(true);
}

/* ---- range during writes -------------------------------------------------------- */

enum { STABLE = 2000, CHURN = 2000 };

struct rw_shared {
	void *m;
	atomic_int stop;
};

static void *churner(void *p)
{
	struct rw_shared *s = p;
	uint64_t r = (uint64_t)(uintptr_t)&r | 1;
	while (!atomic_load(&s->stop)) {
		uint32_t k = STABLE + (uint32_t)(xs(&r) % CHURN);
		if (xs(&r) & 1)
			CHECK_EQ(I->store(s->m, &k, sizeof k, (void *)(uintptr_t)k), 0);
		else
			CHECK(I->del(s->m, &k, sizeof k) >= 0);
	}
	return NULL;
}

static int range_stable(const void *k, size_t kl, void *v, void *u)
{
	uint8_t *seen = u;
	uint32_t key;
	CHECK_EQ(kl, sizeof key);
	memcpy(&key, k, sizeof key);
	CHECK(key < STABLE + CHURN);
	CHECK((uintptr_t)v == key);
	if (key < STABLE)
		seen[key]++;
	return 0;
}

static void test_range_writes(void)
{
	vals_reset(1);
	struct rw_shared s = { 0 };
	CHECK_EQ(I->create(&s.m, NULL), 0);
	for (uint32_t k = 0; k < STABLE; k++)
		CHECK_EQ(I->store(s.m, &k, sizeof k, (void *)(uintptr_t)k), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, churner, &s), 0);
	static uint8_t seen[STABLE];
	for (int round = 0; round < 30; round++) {
		memset(seen, 0, sizeof seen);
		CHECK_EQ(I->range(s.m, range_stable, seen), 0);
		for (int k = 0; k < STABLE; k++)
			CHECK_EQ(seen[k], 1);
	}
	atomic_store(&s.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	I->destroy(s.m);
}

/* ---- sections never see freed values ------------------------------------------- */

enum { SKEYS = 256, SWRITERS = 2, SREADERS = 2 };

struct sec {
	void *m;
	atomic_int stop;
	atomic_uint next_id;
	uint32_t nid;
};

static void *sec_writer(void *p)
{
	struct sec *s = p;
	uint64_t r = (uint64_t)(uintptr_t)&r | 1;
	for (;;) {
		uint32_t id = atomic_fetch_add(&s->next_id, 1);
		if (id >= s->nid)
			break;
		uint32_t k = (uint32_t)(xs(&r) % SKEYS);
		struct val *v = val_new(id);
		if (id % 64 == 0) /* let the readers turn over their sections */
			sched_yield();
		switch (xs(&r) % 4) {
		case 0:
		case 1:
			CHECK_EQ(I->store(s->m, &k, sizeof k, v), 0);
			break;
		case 2: {
			void *prev;
			if (I->swap(s->m, &k, sizeof k, v, &prev) == 1)
				val_keep(prev); /* a reader may hold it */
			break;
		}
		case 3:
			val_drop(v);
			CHECK(I->del(s->m, &k, sizeof k) >= 0);
			break;
		}
	}
	atomic_store(&s->stop, 1);
	return NULL;
}

static void *sec_reader(void *p)
{
	struct sec *s = p;
	uint64_t r = (uint64_t)(uintptr_t)&r | 1;
	struct val *held[16];
	while (!atomic_load(&s->stop)) {
		I->rbegin(s->m);
		int n = 0;
		for (int i = 0; i < 16; i++) {
			uint32_t k = (uint32_t)(xs(&r) % SKEYS);
			void *v;
			if (I->load(s->m, &k, sizeof k, &v) == 1) {
				CHECK(atomic_load(&((struct val *)v)->magic) == LIVE);
				held[n++] = v;
			}
		}
		/* still live however much was replaced meanwhile */
		for (int j = 0; j < 4; j++)
			sched_yield();
		for (int i = 0; i < n; i++)
			CHECK(atomic_load(&held[i]->magic) == LIVE);
		I->rend(s->m);
	}
	return NULL;
}

static void test_sections(void)
{
	struct sec s = { .nid = 60000 };
	vals_reset(s.nid);
	s.m = mk();
	pthread_t t[SWRITERS + SREADERS];
	for (int i = 0; i < SREADERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, sec_reader, &s), 0);
	for (int i = 0; i < SWRITERS; i++)
		CHECK_EQ(pthread_create(&t[SREADERS + i], NULL, sec_writer, &s), 0);
	for (int i = 0; i < SWRITERS + SREADERS; i++)
		pthread_join(t[i], NULL);
	long before = atomic_load(&V.total);
	I->destroy(s.m);
	long total = atomic_load(&V.total);
	CHECK(total > 0);
	fprintf(stderr, " (%ld of %ld freed while running)", before, total);
	vals_reset(0);
}

/* ---- singleflight (weft only) ---------------------------------------------------- */

struct fl {
	weft_flight_t *f;
	atomic_int calls, arrived;
	int want; /* callers to wait for before fn returns */
	int err;
};

struct fl_arg {
	struct fl *s;
	int rc, shared;
	void *v;
};

static int fl_fn(const void *k, size_t kl, void **v, void *u)
{
	(void)k, (void)kl;
	struct fl *s = u;
	atomic_fetch_add(&s->calls, 1);
	while (atomic_load(&s->arrived) < s->want)
		weft_sleep(100000);
	weft_sleep(20000000);
	*v = (void *)(uintptr_t)0x77;
	return s->err;
}

static void *fl_caller(void *p)
{
	struct fl_arg *a = p;
	atomic_fetch_add(&a->s->arrived, 1);
	a->rc = weft_flight_do(a->s->f, "key", 3, fl_fn, a->s, &a->v, &a->shared);
	return NULL;
}

static int fl_self(const void *k, size_t kl, void **v, void *u)
{
	int *rc = u;
	void *x;
	*rc = weft_flight_do(g_m, k, kl, fl_self, u, &x, NULL);
	*v = NULL;
	return 0;
}

static void test_flight(void)
{
	struct fl s = { 0 };
	void *v;
	int sh;
	CHECK_EQ(weft_flight_create(NULL), -EINVAL);
	CHECK_EQ(weft_flight_create(&s.f), 0);
	CHECK_EQ(weft_flight_do(NULL, "k", 1, fl_fn, &s, &v, NULL), -EINVAL);
	CHECK_EQ(weft_flight_do(s.f, NULL, 1, fl_fn, &s, &v, NULL), -EINVAL);
	CHECK_EQ(weft_flight_do(s.f, "k", 1, NULL, &s, &v, NULL), -EINVAL);
	CHECK_EQ(weft_flight_do(s.f, "k", 1, fl_fn, &s, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_flight_forget(NULL, "k", 1), -EINVAL);
	CHECK_EQ(weft_flight_forget(s.f, "k", 1), 0);
	weft_flight_destroy(NULL);
	/* alone: not shared */
	CHECK_EQ(weft_flight_do(s.f, "k", 1, fl_fn, &s, &v, &sh), 0);
	CHECK_EQ(sh, 0);
	CHECK(v == (void *)0x77);
	/* 16 callers: one call, everyone shares its result (an error too) */
	for (int round = 0; round < 2; round++) {
		enum { N = 16 };
		pthread_t t[N];
		struct fl_arg a[N];
		atomic_store(&s.calls, 0);
		atomic_store(&s.arrived, 0);
		s.want = N;
		s.err = round ? -EIO : 0;
		for (int i = 0; i < N; i++) {
			a[i] = (struct fl_arg){ .s = &s };
			CHECK_EQ(pthread_create(&t[i], NULL, fl_caller, &a[i]), 0);
		}
		for (int i = 0; i < N; i++)
			pthread_join(t[i], NULL);
		CHECK_EQ(atomic_load(&s.calls), 1);
		for (int i = 0; i < N; i++) {
			CHECK_EQ(a[i].rc, s.err);
			CHECK_EQ(a[i].shared, 1);
			CHECK(a[i].v == (s.err ? NULL : (void *)0x77));
		}
	}
	/* forget: a caller after forget runs fn anew while the first is in
	 * flight */
	{
		pthread_t t;
		struct fl_arg a = { .s = &s };
		atomic_store(&s.calls, 0);
		atomic_store(&s.arrived, 0);
		s.want = 2; /* the first call waits for the second caller */
		s.err = 0;
		CHECK_EQ(pthread_create(&t, NULL, fl_caller, &a), 0);
		while (atomic_load(&s.calls) < 1)
			weft_sleep(100000);
		CHECK_EQ(weft_flight_forget(s.f, "key", 3), 1);
		CHECK_EQ(weft_flight_forget(s.f, "key", 3), 0);
		struct fl_arg b = { .s = &s };
		fl_caller(&b); /* arrived = 2: both calls finish */
		pthread_join(t, NULL);
		CHECK_EQ(atomic_load(&s.calls), 2);
		CHECK_EQ(a.rc, 0);
		CHECK_EQ(b.rc, 0);
		CHECK_EQ(b.shared, 0);
	}
	/* fn calling do on its own key */
	{
		int inner = 0;
		g_m = s.f;
		CHECK_EQ(weft_flight_do(s.f, "self", 4, fl_self, &inner, &v, NULL), 0);
		CHECK_EQ(inner, -EDEADLK);
	}
	weft_flight_destroy(s.f);
}

/* argv[1], if given: run only the tests whose names contain it */
static const char *g_only;
#undef RUN
#define RUN(fn)                                                                  \
	do {                                                                     \
		if (g_only && !strstr(#fn, g_only))                              \
			break;                                                   \
		fprintf(stderr, "  %-50s", #fn);                                 \
		fn();                                                            \
		fprintf(stderr, " ok\n");                                        \
	} while (0)

int main(int argc, char **argv)
{
	g_only = argc > 1 ? argv[1] : NULL;
	test_watchdog(240);
	setvbuf(stderr, NULL, _IONBF, 0);
	for (size_t i = 0; i < NIMPL; i++) {
		I = &impls[i];
		fprintf(stderr, "map implementation %s:\n", I->name);
		RUN(test_args);
		RUN(test_basics);
		RUN(test_same_value);
		RUN(test_model);
		RUN(test_nested);
		RUN(test_compute_threads);
		if (i == 0) /* the baselines block threads, not tasks */
			RUN(test_compute_tasks);
		RUN(test_range_writes);
		RUN(test_sections);
	}
	fprintf(stderr, "singleflight:\n");
	RUN(test_flight);
	vals_reset(0);
	free(V.freed);
	fprintf(stderr, "test_map: all ok\n");
	return 0;
}
