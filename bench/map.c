/* bench/map.c: the map benchmark scenarios (see map.h): weft's map, the
 * mutex and rwlock baselines and ck_ht behind a writer lock here; TBB and
 * libcuckoo in map_peers.cc; Go's sync.Map through bench/peers/go_peer.c.
 *
 * Timing: bench/measure.h's meter, from the barrier that releases the
 * threads to the last join (wall, process CPU and context switches); the
 * peak RSS over the run. The prefilled map of one implementation is kept
 * between its runs (the mix cases only replace values; the harness runs
 * one implementation's cases together), so the 1M-key fill is paid once
 * per implementation; the per-key RSS is measured in a fresh process (this
 * program exec'd with --weft_map_rss) that fills a map (see rss_per_key).
 */
#include "map.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/map.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "baseline/map_mutex.h"
#include "measure.h"

#ifndef WEFT_NO_CK_HT
#include <ck_ht.h>
#endif

#define HERD_THREADS 64
#define HERD_KEYS 64
#define HERD_COMPUTE_NS 200000

const struct map_bench_case map_bench_cases[] = {
#define MIX(R, D, DN, T)                                                          \
	{ "mix/read:" #R "/dist:" DN "/threads:" #T, MAP_BENCH_MIX, R, D, T }
#define MIXT(R, D, DN) MIX(R, D, DN, 1), MIX(R, D, DN, 2), MIX(R, D, DN, 4), MIX(R, D, DN, 8)
	MIXT(100, MAP_DIST_UNIFORM, "uniform"), MIXT(99, MAP_DIST_UNIFORM, "uniform"),
	MIXT(90, MAP_DIST_UNIFORM, "uniform"),  MIXT(50, MAP_DIST_UNIFORM, "uniform"),
	MIXT(100, MAP_DIST_ZIPF, "zipf"),       MIXT(99, MAP_DIST_ZIPF, "zipf"),
	MIXT(90, MAP_DIST_ZIPF, "zipf"),        MIXT(50, MAP_DIST_ZIPF, "zipf"),
#undef MIXT
#undef MIX
	{ "herd/threads:64", MAP_BENCH_HERD, 0, MAP_DIST_UNIFORM, HERD_THREADS },
};
const size_t map_bench_ncases = sizeof map_bench_cases / sizeof map_bench_cases[0];

/* ---- weft ------------------------------------------------------------------ */

static void *weft_create(size_t keys)
{
	weft_map_t *m = NULL;
	weft_map_opts_t o = { .capacity_hint = keys };
	return weft_map_create(&m, &o) == 0 ? m : NULL;
}
static void weft_destroy(void *m)
{
	weft_map_destroy(m);
}
static int weft_load(void *m, uint64_t k, uintptr_t *v)
{
	void *x;
	int rc = weft_map_load(m, &k, sizeof k, &x);
	*v = (uintptr_t)x;
	return rc;
}
static void weft_store(void *m, uint64_t k, uintptr_t v)
{
	weft_map_store(m, &k, sizeof k, (void *)v);
}
static uintptr_t (*herd_fn)(uint64_t); /* the compute of the running herd */
static int weft_compute(const void *key, size_t klen, void **v, void *user)
{
	uint64_t k;
	(void)user;
	memcpy(&k, key, klen);
	*v = (void *)herd_fn(k);
	return 0;
}
static uintptr_t weft_goc(void *m, uint64_t k, uintptr_t (*compute)(uint64_t))
{
	void *v = NULL;
	herd_fn = compute;
	weft_map_get_or_compute(m, &k, sizeof k, weft_compute, NULL, &v);
	return (uintptr_t)v;
}

static const struct map_impl impl_weft = { "weft", weft_create, weft_destroy, weft_load,
					   weft_store, weft_goc, 0 };
static const struct map_impl impl_weft_tasks = { "weft_tasks", weft_create, weft_destroy,
						 weft_load, weft_store, weft_goc, 1 };

/* ---- the baselines --------------------------------------------------------- */

static void *lmap_mk(size_t keys, bool rw)
{
	lmap_t *m = NULL;
	weft_map_opts_t o = { .capacity_hint = keys };
	return lmap_create(&m, &o, rw) == 0 ? m : NULL;
}
static void *mutex_create(size_t keys)
{
	return lmap_mk(keys, false);
}
static void *rwlock_create(size_t keys)
{
	return lmap_mk(keys, true);
}
static void lmap_destroy_(void *m)
{
	lmap_destroy(m);
}
static int lmap_load_(void *m, uint64_t k, uintptr_t *v)
{
	void *x;
	int rc = lmap_load(m, &k, sizeof k, &x);
	*v = (uintptr_t)x;
	return rc;
}
static void lmap_store_(void *m, uint64_t k, uintptr_t v)
{
	lmap_store(m, &k, sizeof k, (void *)v);
}
static uintptr_t lmap_goc(void *m, uint64_t k, uintptr_t (*compute)(uint64_t))
{
	void *v = NULL;
	herd_fn = compute;
	lmap_get_or_compute(m, &k, sizeof k, weft_compute, NULL, &v);
	return (uintptr_t)v;
}

static const struct map_impl impl_mutex = { "mutex", mutex_create, lmap_destroy_, lmap_load_,
					    lmap_store_, lmap_goc, 0 };
static const struct map_impl impl_rwlock = { "rwlock", rwlock_create, lmap_destroy_, lmap_load_,
					     lmap_store_, lmap_goc, 0 };

/* ---- ck_ht behind a writer lock ---------------------------------------------- */

#ifndef WEFT_NO_CK_HT
struct ckm {
	ck_ht_t ht;
	pthread_mutex_t wlock;
	uint64_t *keys; /* ck_ht keeps a pointer to the key bytes: they live here */
	size_t nkeys;
};

static void *ck_malloc_(size_t n)
{
	return malloc(n);
}
static void *ck_realloc_(void *p, size_t o, size_t n, bool d)
{
	(void)o, (void)d;
	return realloc(p, n);
}
static void ck_free_(void *p, size_t n, bool d)
{
	/* d (defer): a reader may still use it. The key set is fixed while
	 * the benchmark's readers run (see map.h), so nothing is retired then */
	(void)n, (void)d;
	free(p);
}
static struct ck_malloc ck_alloc = { ck_malloc_, ck_realloc_, ck_free_ };

static void *ckht_create(size_t keys)
{
	struct ckm *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->keys = calloc(keys, sizeof *c->keys);
	c->nkeys = keys;
	if (!c->keys || !ck_ht_init(&c->ht, CK_HT_MODE_BYTESTRING, NULL, &ck_alloc, keys * 2,
				    0x9E3779B97F4A7C15ULL)) {
		free(c->keys);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->wlock, NULL);
	for (size_t i = 0; i < keys; i++)
		c->keys[i] = i;
	return c;
}
static void ckht_destroy(void *m)
{
	struct ckm *c = m;
	ck_ht_destroy(&c->ht);
	pthread_mutex_destroy(&c->wlock);
	free(c->keys);
	free(c);
}
static int ckht_load(void *m, uint64_t k, uintptr_t *v)
{
	struct ckm *c = m;
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	ck_ht_hash(&h, &c->ht, &k, sizeof k);
	ck_ht_entry_key_set(&e, &k, sizeof k);
	if (!ck_ht_get_spmc(&c->ht, h, &e))
		return 0;
	*v = (uintptr_t)ck_ht_entry_value(&e);
	return 1;
}
static void ckht_store(void *m, uint64_t k, uintptr_t v)
{
	struct ckm *c = m;
	ck_ht_entry_t e;
	ck_ht_hash_t h;
	/* the key's bytes must outlive the entry: our array (keys < nkeys) */
	const uint64_t *kp = k < c->nkeys ? &c->keys[k] : NULL;
	if (!kp)
		abort();
	ck_ht_hash(&h, &c->ht, kp, sizeof *kp);
	ck_ht_entry_set(&e, h, kp, sizeof *kp, (void *)v);
	pthread_mutex_lock(&c->wlock);
	ck_ht_set_spmc(&c->ht, h, &e);
	pthread_mutex_unlock(&c->wlock);
}

static const struct map_impl impl_ckht = { "ck_ht", ckht_create, ckht_destroy, ckht_load,
					   ckht_store, NULL, 0 };
#endif

/* ---- the list ------------------------------------------------------------------ */

#ifdef WEFT_MAP_PEERS
#define X(n) extern const struct map_impl map_impl_##n;
WEFT_MAP_PEERS
#undef X
#endif

const struct map_impl *const map_impls[] = {
	&impl_weft,
	&impl_weft_tasks,
	&impl_mutex,
	&impl_rwlock,
#ifndef WEFT_NO_CK_HT
	&impl_ckht,
#endif
#ifdef WEFT_MAP_PEERS
#define X(n) &map_impl_##n,
	WEFT_MAP_PEERS
#undef X
#endif
	NULL,
};

const char *const map_impls_skipped[] = {
#ifdef WEFT_MAP_SKIPPED
	WEFT_MAP_SKIPPED
#endif
	NULL,
};

int map_bench_supported(const struct map_bench_case *c, const struct map_impl *impl)
{
	if (c->kind == MAP_BENCH_HERD)
		return !impl || impl->get_or_compute != NULL;
	return !impl || !impl->tasks;
}

char *map_bench_name(char *buf, size_t size, const struct map_bench_case *c, const char *impl)
{
	snprintf(buf, size, "map/%s/%s", c->name, impl);
	return buf;
}

/* ---- key sequences ----------------------------------------------------------------- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* YCSB's Zipfian generator (Gray et al.), s = 0.99, ranks scrambled over
 * the keys (hot keys spread over the table). */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half;
};

static double zeta(uint64_t n, double theta)
{
	double s = 0;
	for (uint64_t i = 1; i <= n; i++)
		s += 1.0 / pow((double)i, theta);
	return s;
}

static void zipf_init(struct zipf *z, uint64_t n)
{
	z->n = n;
	z->theta = 0.99;
	z->alpha = 1.0 / (1.0 - z->theta);
	z->zetan = zeta(n, z->theta);
	double zeta2 = 1.0 + pow(0.5, z->theta);
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - z->theta)) / (1.0 - zeta2 / z->zetan);
	z->half = 1.0 + pow(0.5, z->theta);
}

static uint64_t zipf_next(const struct zipf *z, uint64_t *r)
{
	*r = splitmix(*r);
	double u = (double)(*r >> 11) / (double)(1ULL << 53), uz = u * z->zetan;
	uint64_t rank;
	if (uz < 1.0)
		rank = 0;
	else if (uz < z->half)
		rank = 1;
	else
		rank = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	if (rank >= z->n)
		rank = z->n - 1;
	return splitmix(rank ^ 0x5bd1e995) % z->n;
}

/* One sequence per (keys, dist), kept: ops entries of key | write bit. */
struct seq {
	uint64_t keys, ops;
	enum map_bench_dist dist;
	unsigned read_pct;
	uint64_t *v;
};
static struct seq g_seq;

#define WRITE_BIT (1ULL << 63)

static int seq_get(uint64_t keys, uint64_t ops, enum map_bench_dist dist, unsigned read_pct)
{
	if (g_seq.v && g_seq.keys == keys && g_seq.ops == ops && g_seq.dist == dist &&
	    g_seq.read_pct == read_pct)
		return 0;
	free(g_seq.v);
	g_seq.v = malloc(ops * sizeof *g_seq.v);
	if (!g_seq.v)
		return -1;
	static struct zipf z;
	if (dist == MAP_DIST_ZIPF && z.n != keys)
		zipf_init(&z, keys);
	uint64_t r = 42;
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t k;
		if (dist == MAP_DIST_ZIPF)
			k = zipf_next(&z, &r);
		else
			k = (r = splitmix(r)) % keys;
		r = splitmix(r);
		bool w = (r % 100) >= read_pct;
		g_seq.v[i] = k | (w ? WRITE_BIT : 0);
	}
	g_seq.keys = keys;
	g_seq.ops = ops;
	g_seq.dist = dist;
	g_seq.read_pct = read_pct;
	return 0;
}

/* ---- the filled map, kept per implementation --------------------------------------- */

static struct {
	const struct map_impl *impl;
	void *m;
	uint64_t keys;
	double bytes_per_key;
} g_fill;

static int64_t rss_kb_now(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * 4;
}

/* weft-bench --weft_map_rss=IMPL:KEYS (a fresh process, exec'd by
 * rss_per_key): fill IMPL with KEYS keys, print the RSS growth per key. */
int map_bench_rss_child(const char *arg)
{
	const char *colon = strchr(arg, ':');
	if (!colon)
		return 2;
	uint64_t keys = strtoull(colon + 1, NULL, 10);
	for (const struct map_impl *const *i = map_impls; *i; i++) {
		if (strncmp((*i)->name, arg, (size_t)(colon - arg)) || (*i)->name[colon - arg])
			continue;
		int64_t before = rss_kb_now();
		void *m = (*i)->create(keys);
		for (uint64_t k = 0; m && k < keys; k++)
			(*i)->store(m, k, k + 1);
		int64_t after = rss_kb_now();
		if (!m || before < 0 || after < 0 || !keys)
			return 1;
		printf("%.1f\n", (double)(after - before) * 1024 / (double)keys);
		return 0;
	}
	return 2;
}

/* RSS growth per key while a fresh process (this program exec'd again:
 * a fork would share this heap's free pages) fills a map of keys keys;
 * once per implementation. -1 if unknown. */
static double rss_per_key(const struct map_impl *impl, uint64_t keys)
{
	static struct {
		const struct map_impl *impl;
		uint64_t keys;
		double v;
	} cache[16];
	for (int i = 0; i < 16; i++)
		if (cache[i].impl == impl && cache[i].keys == keys)
			return cache[i].v;
	int fds[2];
	double v = -1;
	char arg[96], buf[64];
	snprintf(arg, sizeof arg, "--weft_map_rss=%s:%llu", impl->name, (unsigned long long)keys);
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "weft-bench", arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if (pid > 0) {
		ssize_t n = read(fds[0], buf, sizeof buf - 1);
		int status = 0;
		waitpid(pid, &status, 0);
		if (n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			buf[n] = '\0';
			v = strtod(buf, NULL);
		}
	}
	close(fds[0]);
	for (int i = 0; i < 16; i++)
		if (!cache[i].impl) {
			cache[i].impl = impl;
			cache[i].keys = keys;
			cache[i].v = v;
			break;
		}
	return v;
}

static void *filled(const struct map_impl *impl, uint64_t keys, double *bpk)
{
	if (g_fill.impl == impl && g_fill.keys == keys) {
		*bpk = g_fill.bytes_per_key;
		return g_fill.m;
	}
	if (g_fill.m)
		g_fill.impl->destroy(g_fill.m);
	g_fill.m = NULL;
	g_fill.impl = NULL;
	double per = rss_per_key(impl, keys);
	void *m = impl->create(keys);
	if (!m)
		return NULL;
	for (uint64_t k = 0; k < keys; k++)
		impl->store(m, k, k + 1);
	g_fill.impl = impl;
	g_fill.m = m;
	g_fill.keys = keys;
	g_fill.bytes_per_key = per;
	*bpk = per;
	return m;
}

/* ---- threads -------------------------------------------------------------------------- */

struct worker {
	pthread_t t;
	const struct map_impl *impl;
	void *m;
	const uint64_t *seq;
	uint64_t n, keys;
	pthread_barrier_t *go;
	uint64_t missing, bad;
	uint64_t herd_first; /* herd: the first key */
	char pad[64];
};

static void *mix_main(void *p)
{
	struct worker *w = p;
	pthread_barrier_wait(w->go);
	uint64_t missing = 0, bad = 0;
	for (uint64_t i = 0; i < w->n; i++) {
		uint64_t e = w->seq[i], k = e & ~WRITE_BIT;
		if (e & WRITE_BIT) {
			w->impl->store(w->m, k, k + 1 + (i << 20));
		} else {
			uintptr_t v = 0;
			if (!w->impl->load(w->m, k, &v))
				missing++;
			else if (v == 0 || (v & 0xfffff) != ((k + 1) & 0xfffff))
				bad++;
		}
	}
	w->missing = missing;
	w->bad = bad;
	return NULL;
}

static atomic_ulong herd_computes;
static int herd_in_tasks; /* the compute's sleep parks the task */

static uintptr_t herd_compute(uint64_t key)
{
	atomic_fetch_add(&herd_computes, 1);
	if (herd_in_tasks)
		weft_sleep(HERD_COMPUTE_NS);
	else
		bench_sleep_ns(HERD_COMPUTE_NS);
	return (uintptr_t)(key * 3 + 1);
}

/* The herd's callers as tasks: started together, counted down by wg. */
static weft_wg_t herd_wg;

static void herd_task(void *p)
{
	struct worker *w = p;
	for (uint64_t i = 0; i < HERD_KEYS; i++) {
		uint64_t k = w->herd_first + i;
		if (w->impl->get_or_compute(w->m, k, herd_compute) != (uintptr_t)(k * 3 + 1))
			w->bad++;
	}
	weft_wg_done(&herd_wg);
}

static void *herd_main(void *p)
{
	struct worker *w = p;
	pthread_barrier_wait(w->go);
	for (uint64_t i = 0; i < HERD_KEYS; i++) {
		uint64_t k = w->herd_first + i;
		if (w->impl->get_or_compute(w->m, k, herd_compute) != (uintptr_t)(k * 3 + 1))
			w->bad++;
	}
	return NULL;
}

/* Start n threads parked on a barrier (no spinning: 64 spinners on 2
 * cores would slow the creation of the rest), release them all at once,
 * time from the release to the last join. */
static int run_threads(struct worker *w, unsigned n, void *(*fn)(void *), pthread_barrier_t *go,
		       struct bench_meter *mt)
{
	for (unsigned i = 0; i < n; i++)
		if (pthread_create(&w[i].t, NULL, fn, &w[i]) != 0)
			abort(); /* the others wait on the barrier for good */
	bench_meter_start(mt);
	pthread_barrier_wait(go);
	for (unsigned i = 0; i < n; i++)
		pthread_join(w[i].t, NULL);
	bench_meter_stop(mt);
	return 0;
}

int map_bench_run(const struct map_bench_case *c, const struct map_impl *impl,
		  const struct map_bench_params *p, struct map_bench_result *r)
{
	memset(r, 0, sizeof *r);
	r->rss_bytes_per_key = -1;
	r->computes_per_key = -1;
	uint64_t keys = p->base_items / 10;
	if (keys < 1000)
		keys = 1000;
	if (!impl)
		return -1;
	bench_peak_rss_reset();
	struct bench_meter mt = { 0 };
	pthread_barrier_t go;
	struct worker w[HERD_THREADS];
	memset(w, 0, sizeof w);

	if (c->kind == MAP_BENCH_HERD) {
		void *m = impl->create(HERD_KEYS);
		if (!m) {
			snprintf(r->error, sizeof r->error, "%s: create failed", impl->name);
			return -1;
		}
		atomic_store(&herd_computes, 0);
		pthread_barrier_init(&go, NULL, HERD_THREADS + 1);
		for (unsigned i = 0; i < HERD_THREADS; i++)
			w[i] = (struct worker){ .impl = impl, .m = m, .go = &go, .herd_first = 1000 };
		herd_in_tasks = impl->tasks;
		if (impl->tasks) {
			weft_wg_init(&herd_wg);
			weft_wg_add(&herd_wg, HERD_THREADS);
			bench_meter_start(&mt);
			for (unsigned i = 0; i < HERD_THREADS; i++)
				if (weft_go(herd_task, &w[i]) != 0)
					abort();
			weft_wg_wait(&herd_wg);
			bench_meter_stop(&mt);
		} else {
			run_threads(w, HERD_THREADS, herd_main, &go, &mt);
		}
		pthread_barrier_destroy(&go);
		impl->destroy(m);
		uint64_t bad = 0;
		for (unsigned i = 0; i < HERD_THREADS; i++)
			bad += w[i].bad;
		if (bad) {
			snprintf(r->error, sizeof r->error, "%s: %llu callers got a wrong value",
				 impl->name, (unsigned long long)bad);
			return -1;
		}
		r->items = (uint64_t)HERD_THREADS * HERD_KEYS;
		r->computes_per_key = (double)atomic_load(&herd_computes) / HERD_KEYS;
	} else {
		uint64_t ops = keys;
		double bpk;
		void *m = filled(impl, keys, &bpk);
		if (!m || seq_get(keys, ops, c->dist, c->read_pct) != 0) {
			snprintf(r->error, sizeof r->error, "%s: out of memory", impl->name);
			return -1;
		}
		r->rss_bytes_per_key = bpk;
		uint64_t per = ops / c->threads;
		pthread_barrier_init(&go, NULL, c->threads + 1);
		for (unsigned i = 0; i < c->threads; i++)
			w[i] = (struct worker){ .impl = impl,
						.m = m,
						.seq = g_seq.v + per * i,
						.n = per,
						.keys = keys,
						.go = &go };
		run_threads(w, c->threads, mix_main, &go, &mt);
		pthread_barrier_destroy(&go);
		uint64_t missing = 0, bad = 0;
		for (unsigned i = 0; i < c->threads; i++) {
			missing += w[i].missing;
			bad += w[i].bad;
		}
		if (missing || bad) {
			snprintf(r->error, sizeof r->error,
				 "%s: %llu loads missed a key, %llu got a wrong value", impl->name,
				 (unsigned long long)missing, (unsigned long long)bad);
			return -1;
		}
		r->items = per * c->threads;
	}
	r->wall_ns = mt.wall_ns;
	r->cpu_ns = mt.cpu_ns;
	r->ctx_switches = mt.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	return 0;
}
