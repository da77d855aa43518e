/* bench/baseline/map_mutex.h: the lock-based concurrent map, the yardstick
 * weft_map_t (weft/map.h) is measured against, in two flavours: one pthread
 * mutex, or one pthread rwlock (readers share it).
 *
 * Same contract as weft/map.h under the prefix lmap_ (the same opts struct,
 * the same results and -EINVAL/-ENOMEM rules, value_free exactly once, not
 * for values handed back, and never while a reader may hold the value),
 * so the conformance tests (tests/unit/test_map.c) run on it too.
 *
 * Design, as a competent engineer would write it with locks:
 * - a chained hash table (power-of-two buckets, doubled at load 1) under
 *   one lock; entries hold a copy of the key;
 * - get_or_compute: in-flight computes are records in a list under the
 *   lock, each with its own condition variable, so only the waiters of
 *   that key wake when it finishes; compute runs without the lock;
 * - reclamation: values that leave while any reader is inside a range or
 *   a read_begin/read_end section wait on a list and are freed (outside
 *   the lock) when the last reader leaves; otherwise at once;
 * - range copies the (key, value) pairs under the lock, then calls fn
 *   without it (so fn may call the map), counted as a reader.
 */
#ifndef WEFT_BENCH_MAP_MUTEX_H
#define WEFT_BENCH_MAP_MUTEX_H

#include <stdbool.h>
#include <stddef.h>

#include <weft/map.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lmap lmap_t;

/* rw: a pthread rwlock (loads share it) instead of a mutex. */
int lmap_create(lmap_t **out, const weft_map_opts_t *opts, bool rw);
void lmap_destroy(lmap_t *m);
int lmap_load(lmap_t *m, const void *key, size_t klen, void **value);
int lmap_store(lmap_t *m, const void *key, size_t klen, void *value);
int lmap_load_or_store(lmap_t *m, const void *key, size_t klen, void *value, void **actual);
int lmap_load_and_delete(lmap_t *m, const void *key, size_t klen, void **value);
int lmap_delete(lmap_t *m, const void *key, size_t klen);
int lmap_swap(lmap_t *m, const void *key, size_t klen, void *value, void **previous);
int lmap_compare_and_swap(lmap_t *m, const void *key, size_t klen, void *old, void *value);
int lmap_compare_and_delete(lmap_t *m, const void *key, size_t klen, void *old);
int lmap_range(lmap_t *m, int (*fn)(const void *key, size_t klen, void *value, void *user),
	       void *user);
size_t lmap_len(lmap_t *m);
int lmap_clear(lmap_t *m);
int lmap_get_or_compute(lmap_t *m, const void *key, size_t klen,
			int (*compute)(const void *key, size_t klen, void **value, void *user),
			void *user, void **value);
void lmap_read_begin(lmap_t *m);
void lmap_read_end(lmap_t *m);

#ifdef __cplusplus
}
#endif

#endif
