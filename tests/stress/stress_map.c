/* tests/stress/stress_map.c: the concurrent map (weft/map.h) under
 * contention, every participant a thread, then every one a task.
 *
 * Sub-tests:
 *   million  4 participants insert disjoint quarters of 1M keys (250k as
 *            tasks; the table
 *            grows many times under them), then delete every third key
 *            while others load; the final state is exact: len, every key's
 *            value, and a range that sees each remaining key once
 *   mixed    8 participants, every call at random on a shared key space
 *            (values carry their key: a load never returns another key's
 *            value) and on keys each owns (checked exactly against a
 *            private model); value_free (poisoning) with clear now and
 *            then: at the end every value was freed by the map exactly once
 *            or handed back exactly once (load_and_delete, swap), never both
 *   compute  64 participants ask get_or_compute for the same 32 keys in
 *            different orders: exactly one compute per key, everyone gets
 *            the stored value; then with a compute that fails every other
 *            time: nothing is stored on failure and a later call computes
 *            again (at most one compute at a time per key)
 *   sections readers inside read_begin/read_end (tasks park and yield inside
 *            them, and may resume on another carrier) never see a poisoned
 *            value while writers replace, delete and clear
 *
 * Usage: stress_map [size] [tests]. size (default 1, may be fractional)
 * multiplies the operation counts; sanitizer builds divide them by 10.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/map.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "map_vals.h"
#include "participant.h"
#include "stress.h" /* g_size, scaled(), rnd(), want() (argv[2] here) */

static void run_all(int n, void *(*fn)(void *), void *args, size_t argsz)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	CHECK(t != NULL);
	for (int i = 0; i < n; i++)
		participant_start(&t[i], 0, fn, (char *)args + (size_t)i * argsz);
	for (int i = 0; i < n; i++)
		participant_join(t[i]);
	free(t);
}

/* ---- million ---------------------------------------------------------------- */

enum { MT = 4 };

struct mil {
	weft_map_t *m;
	uint64_t n;
	int phase;
};

struct mil_arg {
	struct mil *s;
	int id;
};

static void *mil_worker(void *p)
{
	struct mil_arg *a = p;
	struct mil *s = a->s;
	uint64_t lo = s->n * (uint64_t)a->id / MT, hi = s->n * (uint64_t)(a->id + 1) / MT;
	if (s->phase == 0) {
		for (uint64_t k = lo; k < hi; k++)
			CHECK_EQ(weft_map_store(s->m, &k, sizeof k, (void *)(uintptr_t)(k + 1)), 0);
		return NULL;
	}
	/* phase 1: even ids delete every third key of their quarter and the
	 * next quarter's; odd ids load everything meanwhile */
	if (a->id % 2 == 0) {
		uint64_t hi2 = s->n * (uint64_t)(a->id + 2) / MT;
		for (uint64_t k = lo; k < hi2; k++)
			if (k % 3 == 0)
				CHECK_EQ(weft_map_delete(s->m, &k, sizeof k), 1);
	} else {
		for (uint64_t k = 0; k < s->n; k += 7) {
			void *v;
			int rc = weft_map_load(s->m, &k, sizeof k, &v);
			CHECK(rc == 1 || (rc == 0 && k % 3 == 0));
			if (rc)
				CHECK((uintptr_t)v == k + 1);
		}
	}
	return NULL;
}

static int mil_range(const void *key, size_t klen, void *v, void *u)
{
	uint8_t *seen = u;
	uint64_t k;
	CHECK_EQ(klen, sizeof k);
	memcpy(&k, key, sizeof k);
	CHECK(k % 3 != 0);
	CHECK((uintptr_t)v == k + 1);
	CHECK_EQ(seen[k], 0);
	seen[k] = 1;
	return 0;
}

static void run_million(void)
{
	int64_t t0 = weft_now();
	/* a million keys with threads; a quarter of that with tasks (the same
	 * code paths, and the suite stays short) */
	struct mil s = { .n = scaled(g_tasks ? 250000 : 1000000, 1000) };
	CHECK_EQ(weft_map_create(&s.m, NULL), 0);
	struct mil_arg a[MT];
	for (int i = 0; i < MT; i++)
		a[i] = (struct mil_arg){ &s, i };
	run_all(MT, mil_worker, a, sizeof a[0]);
	CHECK_EQ(weft_map_len(s.m), s.n);
	s.phase = 1;
	run_all(MT, mil_worker, a, sizeof a[0]);
	uint64_t left = s.n - (s.n + 2) / 3;
	CHECK_EQ(weft_map_len(s.m), left);
	for (uint64_t k = 0; k < s.n; k++) {
		void *v;
		int rc = weft_map_load(s.m, &k, sizeof k, &v);
		CHECK_EQ(rc, k % 3 != 0);
		if (rc)
			CHECK((uintptr_t)v == k + 1);
	}
	uint8_t *seen = calloc(s.n, 1);
	CHECK(seen != NULL);
	CHECK_EQ(weft_map_range(s.m, mil_range, seen), 0);
	uint64_t n = 0;
	for (uint64_t k = 0; k < s.n; k++)
		n += seen[k];
	CHECK_EQ(n, left);
	free(seen);
	weft_map_destroy(s.m);
	fprintf(stderr, "stress_map million: %" PRIu64 " keys, %" PRIu64 " left, %.1f ms\n", s.n,
		left, (double)(weft_now() - t0) / 1e6);
}

/* ---- mixed ------------------------------------------------------------------- */

enum { XT = 8, SHARED = 512, OWNED = 256 };

struct mix {
	weft_map_t *m;
	uint64_t ops;
	atomic_uint next_id;
	uint32_t nid;
	_Atomic uint32_t *handed; /* per id: handed back to a caller */
	_Atomic uint32_t *key_of; /* per id: the key it was stored under + 1 */
	_Atomic uint32_t *dropped; /* per id: never stored, freed by us */
	atomic_uint clears, cleared; /* clears started, clears done */
};

struct mix_arg {
	struct mix *s;
	int id;
};

/* a key: 8 bytes, shared keys are < SHARED; owned keys are tagged */
static uint64_t shared_key(uint64_t *r)
{
	return rnd(r) % SHARED;
}

static void handed_back(struct mix *s, void *v)
{
	struct val *x = v;
	CHECK(atomic_load(&x->magic) == LIVE);
	CHECK_EQ(atomic_fetch_add(&s->handed[x->id], 1), 0);
	val_keep(x); /* a reader may still hold it */
}

static struct val *mix_val(struct mix *s, uint64_t key)
{
	uint32_t id = atomic_fetch_add(&s->next_id, 1);
	CHECK(id < s->nid);
	atomic_store(&s->key_of[id], (uint32_t)key + 1);
	return val_new(id);
}

static void check_val(struct mix *s, void *v, uint64_t key)
{
	struct val *x = v;
	CHECK(atomic_load(&x->magic) == LIVE);
	CHECK_EQ(atomic_load(&s->key_of[x->id]), (uint32_t)key + 1);
}

static int mix_compute(const void *k, size_t kl, void **v, void *u)
{
	uint64_t key;
	CHECK_EQ(kl, sizeof key);
	memcpy(&key, k, sizeof key);
	*v = mix_val(u, key);
	return 0;
}

static void *mix_worker(void *p)
{
	struct mix_arg *a = p;
	struct mix *s = a->s;
	uint64_t r = 0x9E3779B97F4A7C15ULL * (uint64_t)(a->id + 1) | 1;
	/* owned keys: (id + 1) << 32 | j, modelled exactly, except that a
	 * clear (anyone's) makes them unknown until they are written again */
	struct val *own[OWNED] = { 0 };
	bool has[OWNED] = { 0 }, known[OWNED];
	uint32_t seen = 0;
	struct { uint32_t op, c0, c1; int rc; bool known, has; } hist[OWNED][8];
	uint8_t hn[OWNED] = { 0 };
	for (int j = 0; j < OWNED; j++)
		known[j] = true;
	for (uint64_t i = 0; i < s->ops; i++) {
		bool owned = rnd(&r) % 4 == 0;
		uint32_t j = (uint32_t)(rnd(&r) % OWNED);
		uint64_t key = owned ? ((uint64_t)(a->id + 1) << 32 | j) : shared_key(&r);
		void *v = NULL;
		int rc = -99;
		struct val *nv;
		uint32_t op = (uint32_t)(rnd(&r) % 10);
		if (op == 9 && !owned && rnd(&r) % 500 == 0) {
			atomic_fetch_add(&s->clears, 1);
			CHECK_EQ(weft_map_clear(s->m), 0);
			atomic_fetch_add(&s->cleared, 1);
			continue;
		}
		/* no clear may run or start during an op we check exactly
		 * (clears may overlap each other: counted apart) */
		uint32_t d0 = atomic_load(&s->cleared), c0 = atomic_load(&s->clears);
		if (c0 != seen) { /* a clear since our last look */
			for (int x = 0; x < OWNED; x++)
				known[x] = false;
			seen = c0;
		}
		bool exact = owned && known[j] && c0 == d0;
		/* the model's verdict, checked after the op once we know no
		 * clear overlapped it */
		bool agrees = true;
		/* every op in a section: the values we check stay valid */
		weft_map_read_begin(s->m);
		switch (op) {
		case 0:
		case 1:
			rc = weft_map_load(s->m, &key, sizeof key, &v);
			CHECK(rc == 0 || rc == 1);
			if (rc)
				check_val(s, v, key);
			if (exact)
				agrees = rc == has[j] && (!rc || v == own[j]);
			break;
		case 2:
			nv = mix_val(s, key);
			CHECK_EQ(weft_map_store(s->m, &key, sizeof key, nv), 0);
			if (owned)
				own[j] = nv, has[j] = true;
			break;
		case 3:
			nv = mix_val(s, key);
			rc = weft_map_load_or_store(s->m, &key, sizeof key, nv, &v);
			if (rc == 1) {
				check_val(s, v, key);
				if (exact)
					agrees = has[j] && v == own[j];
				atomic_store(&s->dropped[nv->id], 1);
				val_drop(nv); /* never stored: still ours */
			} else {
				if (exact)
					agrees = !has[j];
				CHECK_EQ(rc, 0);
				if (owned)
					own[j] = nv, has[j] = true;
			}
			break;
		case 4:
			rc = weft_map_load_and_delete(s->m, &key, sizeof key, &v);
			if (rc) {
				check_val(s, v, key);
				handed_back(s, v);
			}
			if (owned)
				has[j] = false;
			break;
		case 5:
			CHECK(weft_map_delete(s->m, &key, sizeof key) >= 0);
			if (owned)
				has[j] = false;
			break;
		case 6:
			nv = mix_val(s, key);
			rc = weft_map_swap(s->m, &key, sizeof key, nv, &v);
			if (rc) {
				check_val(s, v, key);
				handed_back(s, v);
			}
			if (owned)
				own[j] = nv, has[j] = true;
			break;
		case 7: {
			rc = weft_map_load(s->m, &key, sizeof key, &v);
			if (!rc)
				break;
			nv = mix_val(s, key);
			rc = weft_map_compare_and_swap(s->m, &key, sizeof key, v, nv);
			if (rc) {
				if (owned)
					own[j] = nv, has[j] = true;
			} else {
				atomic_store(&s->dropped[nv->id], 1);
				val_drop(nv);
			}
			break;
		}
		case 8: {
			rc = weft_map_load(s->m, &key, sizeof key, &v);
			if (rc && weft_map_compare_and_delete(s->m, &key, sizeof key, v) == 1 && owned)
				has[j] = false;
			break;
		}
		case 9:
			rc = weft_map_get_or_compute(s->m, &key, sizeof key, mix_compute, s, &v);
			CHECK(rc == 0 || rc == 1);
			check_val(s, v, key);
			if (exact)
				agrees = rc == 1 ? has[j] && v == own[j] : !has[j];
			if (owned)
				own[j] = v, has[j] = true;
			break;
		}
		weft_map_read_end(s->m);
		uint32_t c1 = atomic_load(&s->clears);
		if (owned) {
			int x = hn[j]++ % 8;
			hist[j][x].op = op; hist[j][x].c0 = c0; hist[j][x].c1 = c1;
			hist[j][x].rc = rc; hist[j][x].known = known[j]; hist[j][x].has = has[j];
		}
		if (exact && c1 == c0 && !agrees) {
			fprintf(stderr, "participant %d op %u key %u: the model disagrees\n", a->id,
				op, j);
			for (int y = 0; y < 8; y++) {
				int x = (hn[j] + y) % 8;
				fprintf(stderr, "  op %u rc %d c0 %u c1 %u known %d has(after) %d\n", hist[j][x].op, hist[j][x].rc, hist[j][x].c0, hist[j][x].c1, hist[j][x].known, hist[j][x].has);
			}
		}
		CHECK(!exact || c1 != c0 || agrees);
		/* a clear ran during the op: every owned key is unknown until
		 * written again (by an op no clear overlapped) */
		if (c1 != c0 || c0 != d0) {
			for (int x = 0; x < OWNED; x++)
				known[x] = false;
			seen = c1;
		} else if (owned && (op == 2 || op == 4 || op == 5 || op == 6)) {
			known[j] = true;
		}
	}
	return NULL;
}

static void run_mixed(void)
{
	int64_t t0 = weft_now();
	struct mix s = { .ops = scaled(100000, 2000) };
	s.nid = (uint32_t)(s.ops * XT + 16);
	vals_reset(s.nid);
	s.handed = calloc(s.nid, sizeof *s.handed);
	s.key_of = calloc(s.nid, sizeof *s.key_of);
	s.dropped = calloc(s.nid, sizeof *s.dropped);
	CHECK(s.handed && s.key_of && s.dropped);
	weft_map_opts_t o = { .value_free = val_free, .user = &V };
	CHECK_EQ(weft_map_create(&s.m, &o), 0);
	struct mix_arg a[XT];
	for (int i = 0; i < XT; i++)
		a[i] = (struct mix_arg){ &s, i };
	run_all(XT, mix_worker, a, sizeof a[0]);
	size_t len = weft_map_len(s.m);
	weft_map_destroy(s.m);
	/* every value created and stored: freed by the map once, or handed
	 * back once, never both; values never stored were dropped by us */
	uint32_t made = atomic_load(&s.next_id), freed = 0, handed = 0;
	for (uint32_t id = 0; id < made; id++) {
		uint32_t f = atomic_load(&V.freed[id]), h = atomic_load(&s.handed[id]);
		CHECK(f + h <= 1);
		freed += f;
		handed += h;
	}
	free(s.handed);
	free(s.key_of);
	free(s.dropped);
	vals_reset(0);
	fprintf(stderr,
		"stress_map mixed: %d x %" PRIu64 " ops, %u values, %u freed by the map, %u handed "
		"back, %zu left at destroy, %.1f ms\n",
		XT, s.ops, made, freed, handed, len, (double)(weft_now() - t0) / 1e6);
}

/* ---- compute -------------------------------------------------------------------- */

enum { CP = 64, CKEYS = 32 };

struct cmp {
	weft_map_t *m;
	atomic_int computes[CKEYS];
	atomic_int running[CKEYS];
	atomic_int calls;
	bool failing;
};

struct cmp_arg {
	struct cmp *s;
	int id;
	int errors;
};

static int cmp_compute(const void *k, size_t kl, void **v, void *u)
{
	struct cmp *s = u;
	uint32_t key;
	CHECK_EQ(kl, sizeof key);
	memcpy(&key, k, sizeof key);
	CHECK_EQ(atomic_fetch_add(&s->running[key], 1), 0); /* one at a time */
	int n = atomic_fetch_add(&s->computes[key], 1);
	/* take a while, parked: the others pile up behind us */
	weft_sleep(200000);
	atomic_fetch_sub(&s->running[key], 1);
	if (s->failing && n % 2 == 0)
		return -EIO;
	*v = (void *)(uintptr_t)(key + 100);
	return 0;
}

static void *cmp_worker(void *p)
{
	struct cmp_arg *a = p;
	uint64_t r = 0x2545F4914F6CDD1DULL * (uint64_t)(a->id + 3) | 1;
	uint32_t order[CKEYS];
	for (uint32_t i = 0; i < CKEYS; i++)
		order[i] = i;
	for (uint32_t i = CKEYS; i > 1; i--) {
		uint32_t j = (uint32_t)(rnd(&r) % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	for (uint32_t i = 0; i < CKEYS; i++) {
		uint32_t k = order[i];
		void *v;
		for (;;) {
			int rc = weft_map_get_or_compute(a->s->m, &k, sizeof k, cmp_compute, a->s, &v);
			if (rc == -EIO) {
				CHECK(v == NULL);
				a->errors++;
				continue; /* not cached: ask again */
			}
			CHECK(rc == 0 || rc == 1);
			CHECK((uintptr_t)v == k + 100);
			break;
		}
	}
	return NULL;
}

static void run_compute(bool failing)
{
	int64_t t0 = weft_now();
	struct cmp s = { .failing = failing };
	CHECK_EQ(weft_map_create(&s.m, NULL), 0);
	struct cmp_arg a[CP];
	for (int i = 0; i < CP; i++)
		a[i] = (struct cmp_arg){ &s, i, 0 };
	run_all(CP, cmp_worker, a, sizeof a[0]);
	int total = 0, errors = 0;
	for (int k = 0; k < CKEYS; k++) {
		int c = atomic_load(&s.computes[k]);
		if (!failing)
			CHECK_EQ(c, 1);
		else
			CHECK_EQ(c, 2); /* a failure (not cached), then a success */
		total += c;
	}
	for (int i = 0; i < CP; i++)
		errors += a[i].errors;
	CHECK_EQ(weft_map_len(s.m), CKEYS);
	weft_map_destroy(s.m);
	fprintf(stderr,
		"stress_map compute%s: %d callers x %d keys, %d computes, %d errors seen, %.1f ms\n",
		failing ? " (failing)" : "", CP, CKEYS, total, errors,
		(double)(weft_now() - t0) / 1e6);
}

/* ---- sections --------------------------------------------------------------------- */

enum { ST_W = 2, ST_R = 4, SKEYS = 512 };

struct sct {
	weft_map_t *m;
	atomic_uint next_id;
	uint32_t nid;
	atomic_int writers_left;
	atomic_long reads;
};

struct sct_arg {
	struct sct *s;
	int id;
};

static void *sct_worker(void *p)
{
	struct sct_arg *a = p;
	struct sct *s = a->s;
	uint64_t r = 0x9E3779B97F4A7C15ULL * (uint64_t)(a->id + 11) | 1;
	if (a->id < ST_W) {
		for (;;) {
			uint32_t id = atomic_fetch_add(&s->next_id, 1);
			if (id >= s->nid)
				break;
			uint32_t k = (uint32_t)(rnd(&r) % SKEYS);
			struct val *v = val_new(id);
			uint32_t op = (uint32_t)(rnd(&r) % 64);
			if (op == 0) {
				val_drop(v);
				CHECK_EQ(weft_map_clear(s->m), 0);
			} else if (op < 40) {
				CHECK_EQ(weft_map_store(s->m, &k, sizeof k, v), 0);
			} else {
				val_drop(v);
				CHECK(weft_map_delete(s->m, &k, sizeof k) >= 0);
			}
			if (id % 128 == 0)
				weft_yield();
		}
		atomic_fetch_sub(&s->writers_left, 1);
		return NULL;
	}
	struct val *held[32];
	while (atomic_load(&s->writers_left) > 0) {
		weft_map_read_begin(s->m);
		int n = 0;
		for (int i = 0; i < 32; i++) {
			uint32_t k = (uint32_t)(rnd(&r) % SKEYS);
			void *v;
			if (i == 16) {
				/* nested, and a park or a yield inside: a task
				 * may come back on another carrier */
				weft_map_read_begin(s->m);
				if (rnd(&r) & 1)
					weft_yield();
				else
					weft_sleep(10000);
				weft_map_read_end(s->m);
			}
			if (weft_map_load(s->m, &k, sizeof k, &v) == 1) {
				CHECK(atomic_load(&((struct val *)v)->magic) == LIVE);
				held[n++] = v;
			}
		}
		for (int i = 0; i < n; i++)
			CHECK(atomic_load(&held[i]->magic) == LIVE);
		weft_map_read_end(s->m);
		atomic_fetch_add(&s->reads, n);
	}
	return NULL;
}

static void run_sections(void)
{
	int64_t t0 = weft_now();
	struct sct s = { .nid = (uint32_t)scaled(150000, 5000) };
	vals_reset(s.nid);
	atomic_store(&s.writers_left, ST_W);
	weft_map_opts_t o = { .value_free = val_free, .user = &V };
	CHECK_EQ(weft_map_create(&s.m, &o), 0);
	struct sct_arg a[ST_W + ST_R];
	for (int i = 0; i < ST_W + ST_R; i++)
		a[i] = (struct sct_arg){ &s, i };
	run_all(ST_W + ST_R, sct_worker, a, sizeof a[0]);
	long during = atomic_load(&V.total);
	weft_map_destroy(s.m);
	fprintf(stderr,
		"stress_map sections: %u values, %ld freed while readers ran, %ld at destroy, %ld "
		"reads checked, %.1f ms\n",
		s.nid, during, atomic_load(&V.total) - during, atomic_load(&s.reads),
		(double)(weft_now() - t0) / 1e6);
	vals_reset(0);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		g_size = strtod(argv[1], NULL);
		if (!(g_size > 0)) {
			fprintf(stderr, "usage: %s [size > 0] [tests]\n", argv[0]);
			return 2;
		}
	}
	if (argc > 2)
		g_only_tests = argv[2];
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		fprintf(stderr, "stress_map: participants are %s\n", tasks ? "tasks" : "threads");
		if (want("million"))
			run_million();
		if (want("mixed"))
			run_mixed();
		if (want("compute")) {
			run_compute(false);
			run_compute(true);
		}
		if (want("sections"))
			run_sections();
	}
	vals_reset(0);
	free(V.freed);
	fprintf(stderr, "stress_map: all ok\n");
	return 0;
}
