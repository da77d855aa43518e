/* bench/map.h: the map benchmark family (weft/map.h), plain C.
 * bench/harness.cc registers one Google Benchmark per case x implementation
 * and reports what map_bench_run() measured.
 *
 * Implementations (struct map_impl, bench/map.c and bench/map_peers.cc):
 *   weft      weft_map_t
 *   weft_tasks  weft_map_t in the herd case with the 64 callers as weft
 *             tasks (weft/task.h): waiting callers and the compute's sleep
 *             park tasks, not threads
 *   mutex     the baseline: chained hash table under one pthread mutex
 *             (bench/baseline/map_mutex.h)
 *   rwlock    the same under a pthread rwlock (loads share it)
 *   ck_ht     ck's SPMC hash table (CK_HT_MODE_BYTESTRING): loads without a
 *             lock, every write under one writer mutex (the way ck_ht is
 *             meant for many readers and one writer). The benchmark's key
 *             set is fixed during runs (writes replace values), so no table
 *             memory is retired while readers run and no ck_epoch is needed
 *             here; a real user of ck_ht adds one.
 *   tbb       TBB's concurrent_hash_map<uint64_t, uintptr_t> (libtbb-dev)
 *   cuckoo    libcuckoo's cuckoohash_map<uint64_t, uintptr_t> (libcuckoo-dev)
 *   go        Go's sync.Map in a child process (bench/peers/go_peer.go):
 *             the seed's getOrCompute (Load, compute, LoadOrStore) in the
 *             herd case
 *   go_sf     the herd case with golang.org/x/sync/singleflight around
 *             the compute, when golang-golang-x-sync-dev is installed
 * tbb, cuckoo, go and go_sf are skipped (and listed with why) when their
 * packages are absent. The C/C++ peers are keyed by uint64_t (their natural
 * integer-key form: they get no key-copy cost); weft, mutex, rwlock and
 * ck_ht take the 8 key bytes as a byte string.
 *
 * Cases (map_bench_cases[]), K = 1M keys (--weft_items scales: K = B / 10,
 * at least 1000; default B = 10M):
 *   mix/read:R/dist:D/threads:T   the map holds K keys (filled untimed,
 *             once per implementation and reused while the same
 *             implementation runs: writes replace values, so the key set
 *             stays the same). T threads (1, 2, 4, 8) do K ops in total
 *             (split evenly): a load with probability R% (100, 99, 90, 50),
 *             else a store over an existing key. Keys uniform or Zipf
 *             (s = 0.99, YCSB's generator, ranks scrambled over the keys);
 *             each thread draws from a precomputed sequence. Every load must
 *             find its key (else the run fails).
 *   herd/threads:64   get_or_compute under a thundering herd: 64 threads
 *             ask for the same 64 fresh keys in the same order; compute
 *             sleeps 200 us (an expensive lookup) and returns a value;
 *             every caller must get the stored value. Reports computes per
 *             key (1 means waiters shared the compute) and CPU per op
 *             (waiters parked, not spinning).
 * Counters: ns/op, CPU ns/op (process, every thread), peak RSS, and
 * rss_bytes_per_key: RSS growth while a fresh process fills K keys, per
 * key (weft-bench exec'd again with --weft_map_rss; the Go peer measures
 * its own). */
#ifndef WEFT_BENCH_MAP_H
#define WEFT_BENCH_MAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One implementation, behind integer keys (K distinct uint64 keys) and
 * uintptr values; m is the implementation's map. */
struct map_impl {
	const char *name;
	void *(*create)(size_t keys);
	void (*destroy)(void *m);
	int (*load)(void *m, uint64_t key, uintptr_t *v); /* 1 found */
	void (*store)(void *m, uint64_t key, uintptr_t v);
	/* the herd: get the key's value, computing with compute(key) if
	 * absent; NULL: the implementation has no get-or-compute */
	uintptr_t (*get_or_compute)(void *m, uint64_t key, uintptr_t (*compute)(uint64_t key));
	int tasks; /* herd only: the callers are weft tasks (compute parks them) */
};

enum map_bench_kind { MAP_BENCH_MIX, MAP_BENCH_HERD };
enum map_bench_dist { MAP_DIST_UNIFORM, MAP_DIST_ZIPF };

struct map_bench_case {
	const char *name; /* "mix/read:99/dist:zipf/threads:2" */
	enum map_bench_kind kind;
	unsigned read_pct;
	enum map_bench_dist dist;
	unsigned threads;
};

extern const struct map_bench_case map_bench_cases[];
extern const size_t map_bench_ncases;

/* NULL-terminated; the C++ peers add theirs (map_peers.cc) */
extern const struct map_impl *const map_impls[];
extern const char *const map_impls_skipped[]; /* "tbb: not installed (...)", NULL-terminated */

struct map_bench_params {
	uint64_t base_items; /* B (default 10 million) */
	int64_t timeout_ns;
};

struct map_bench_result {
	uint64_t items;
	int64_t wall_ns, cpu_ns, ctx_switches, peak_rss_kb;
	double rss_bytes_per_key; /* < 0: unknown */
	double computes_per_key;  /* herd; < 0 otherwise */
	char error[200];
};

/* impl NULL: the Go peer (go or go_sf, by go_sf). */
int map_bench_supported(const struct map_bench_case *c, const struct map_impl *impl);
char *map_bench_name(char *buf, size_t size, const struct map_bench_case *c, const char *impl);
int map_bench_run(const struct map_bench_case *c, const struct map_impl *impl,
		  const struct map_bench_params *p, struct map_bench_result *r);

/* weft-bench --weft_map_rss=IMPL:KEYS: the child that measures the RSS
 * per key (prints it); returns the exit status. */
int map_bench_rss_child(const char *arg);

/* The Go peer (bench/peers/go_peer.c): sync.Map; go_sf: singleflight. */
int go_peer_map_run(const struct map_bench_case *c, uint64_t keys, uint64_t ops, int go_sf,
		    int64_t timeout_ns, struct map_bench_result *r);

#ifdef __cplusplus
}
#endif

#endif
