/* weft/map.h: a concurrent map (Go's sync.Map, all of it) with
 * get-or-compute, and a standalone singleflight (weft_flight_*).
 *
 * Keys are byte strings (copied in; klen 0 is a valid, empty key); values
 * are pointers, compared by address, never dereferenced by the map. A
 * value may be NULL (a stored NULL is found: load returns 1, *value NULL).
 *
 * ---- Design (choices where the contract is silent) ----------------------
 *
 * The map is 64 shards (more for a large capacity_hint), picked by the
 * key's hash. Each shard is an open-addressing table (linear probing) of
 * one word per slot: a pointer to a node (key bytes, hash, value word)
 * with 16 bits of the hash in the pointer's unused top bits, so a probe
 * rarely touches a node that is not the key's.
 *  - Reads take no lock and write no shared line: a load is a hash, one
 *    slot (usually), one node and its value word, inside a reclamation
 *    pin that writes only the calling thread's own counters.
 *  - A key keeps its node while it is in the map. Every change of an
 *    existing key's value (store over it, swap, compare_and_*, delete,
 *    load_and_delete) is one CAS on the node's value word, without a lock,
 *    so writes to existing keys scale with threads. Deleting swaps in a
 *    "deleted" marker (Go's expunged); the dead node stays in the table,
 *    and a later insert of the key revives it under the shard's lock.
 *  - Inserting a key that has no live node takes the shard's lock (a futex
 *    lock; 64 shards keep collisions rare). A shard whose table is 3/4 full
 *    (dead nodes included) is rebuilt under its lock into a new table
 *    (twice the live count, rounded to a power of two), dropping dead
 *    nodes, then published with one pointer store: readers go on in the
 *    old table meanwhile (it holds the same nodes) and are never stopped;
 *    only inserts into that one shard wait for the rebuild.
 *  - Chosen over ck_ht (ck's SPMC table, which needs ck_epoch and one
 *    writer at a time): ck_ht behind a writer lock measured 1.3-2.4x
 *    slower than this design at 50/50 and 1.4-1.8x at 99/1 with uniform
 *    keys on 2 threads, equal at 99/1 Zipf (README, "The map against its
 *    baselines and peers"); its single writer caps write scaling, which
 *    is what the lock-free CAS on existing keys is for.
 *    No separate integer-key path: 8-byte keys are compared with one load
 *    instead of memcmp, and a load costs about the instructions of the
 *    mutex map's (callgrind, README); what would pay is keeping keys of up
 *    to 8 bytes inline in the slot (one cache miss instead of two), not
 *    done yet.
 *
 * ---- Memory: what leaves the map, and when it is freed -------------------
 *
 * A value that leaves the map (replaced by store, swap-less overwrites,
 * compare_and_swap, removed by delete, compare_and_delete, clear; the
 * loser of get_or_compute's store; what is left at destroy) goes to
 * opts.value_free exactly once. Values handed back to the caller
 * (load_and_delete's *value, swap's *previous) are the caller's again and
 * never go to value_free. value_free is never called with NULL. A value
 * replaced by itself (store, or compare_and_swap with old == value, of the
 * pointer the key holds) does not leave: it is not freed. A node (its copy
 * of the key) leaves when the shard is rebuilt or cleared, or at destroy.
 *
 * Nothing is freed while a thread could still hold it: leaving objects are
 * retired, and freed (value_free called, from whichever thread makes a map
 * call that finds them due, never under a shard lock) only after every
 * reader that could have seen them has left. A reader is a thread inside
 * any map call, or between weft_map_read_begin and weft_map_read_end
 * (sections of every map share one epoch domain, so a section protects
 * the values of all maps). Readers are counted SRCU-style: a pin adds one
 * to the calling thread's own counter of the current epoch parity, and
 * the reclaimer flips the epoch and waits for the old parity's counts to
 * balance (the reclaimer pays a membarrier(2) fence per flip, the readers
 * none). Sections may nest and may contain any map call; a task may park
 * inside one (it is counted by its section, not by its carrier thread).
 * A long section delays reclamation (memory grows) but blocks nobody.
 *
 * A pointer returned OUTSIDE a section (by load, load_or_store, swap's
 * previous when found, get_or_compute) may be trusted only as far as the
 * caller knows nobody removes it from the map: once another thread may
 * have stored over or deleted the key, the value may already have gone
 * to value_free. Inside a section it stays valid until read_end. Without
 * value_free, the map never frees values and the question is the
 * caller's.
 *
 * ---- get_or_compute and flights ----------------------------------------
 *
 * For one key at most one compute runs at a time (it is registered under
 * the shard's lock together with the check that the key is absent) and it
 * runs outside every lock and outside any reclamation pin the call took.
 * Callers for the same key meanwhile wait: a short bounded spin, then they
 * park through weft's parking layer (a thread sleeps on a futex, a task
 * parks and its carrier runs other tasks), and return the stored value (1)
 * or compute's error (the same nonzero result; nothing is stored and the
 * next call computes again). A compute that calls get_or_compute for the
 * same key (directly, on the same thread or task) gets -EDEADLK instead of
 * waiting for itself. compute must return normally (no longjmp).
 */
#ifndef WEFT_MAP_H
#define WEFT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_map weft_map_t;

typedef struct weft_map_opts { /* zeroed fields take defaults */
	/* a value that left the map, once (NULL: values are never freed) */
	void (*value_free)(void *value, void *user);
	void *user;           /* passed to value_free */
	size_t capacity_hint; /* keys expected: sizes the first tables */
} weft_map_opts_t;

/* Largest key (bytes). */
#define WEFT_MAP_MAX_KEY (((size_t)1 << 30) - 1)

/* Make a map. 0, -EINVAL (out NULL), -ENOMEM. opts NULL: defaults. */
WEFT_API int weft_map_create(weft_map_t **out, const weft_map_opts_t *opts);

/* Free the map: value_free for every value still in it and every retired
 * one. No other call on m may be running or start, and no section may
 * still use values of m. NULL: nothing. */
WEFT_API void weft_map_destroy(weft_map_t *m);

/* All calls below: any number of threads and tasks at once; none blocks
 * except get_or_compute (it waits for another caller's compute of the same
 * key) and, briefly, inserts into a shard being rebuilt. -EINVAL for a NULL
 * map, a NULL key with klen > 0, klen > WEFT_MAP_MAX_KEY, or a NULL out
 * pointer (nothing changed). -ENOMEM: nothing changed. Where the answer is
 * 0 (not found / not loaded), *value, *actual and *previous are set NULL. */

/* 1 found (*value set) | 0. */
WEFT_API int weft_map_load(weft_map_t *m, const void *key, size_t klen, void **value);
/* Set key's value; the value replaced (if any) goes to value_free. 0. */
WEFT_API int weft_map_store(weft_map_t *m, const void *key, size_t klen, void *value);
/* 1 loaded (*actual: the existing value; value not stored, still the
 * caller's) | 0 stored (*actual NULL). actual NULL: -EINVAL. */
WEFT_API int weft_map_load_or_store(weft_map_t *m, const void *key, size_t klen, void *value,
				    void **actual);
/* 1 removed (*value: it, the caller's again) | 0. */
WEFT_API int weft_map_load_and_delete(weft_map_t *m, const void *key, size_t klen, void **value);
/* 1 removed (the value goes to value_free) | 0. */
WEFT_API int weft_map_delete(weft_map_t *m, const void *key, size_t klen);
/* Set key's value; 1 if one was there (*previous: it, the caller's again)
 * | 0 (*previous NULL). */
WEFT_API int weft_map_swap(weft_map_t *m, const void *key, size_t klen, void *value,
			   void **previous);
/* If key's value is old, replace it by value (old goes to value_free):
 * 1 | 0 (missing key, or another value). */
WEFT_API int weft_map_compare_and_swap(weft_map_t *m, const void *key, size_t klen, void *old,
				       void *value);
/* If key's value is old, remove it (old goes to value_free): 1 | 0. */
WEFT_API int weft_map_compare_and_delete(weft_map_t *m, const void *key, size_t klen, void *old);
/* Call fn for each key present: a key present for the whole call is seen
 * exactly once, keys added or removed meanwhile may or may not be. fn may
 * call the map (any call; a store or delete from fn is fine) and may
 * block; the range holds a reclamation pin while it runs, so the key and
 * value fn gets stay valid during fn. Returns 0, or fn's first nonzero
 * (the range stops there). fn NULL: -EINVAL. */
WEFT_API int weft_map_range(weft_map_t *m,
			    int (*fn)(const void *key, size_t klen, void *value, void *user),
			    void *user);
/* Keys present (exact when nothing changes meanwhile). NULL: 0. */
WEFT_API size_t weft_map_len(weft_map_t *m);
/* Remove every key (values go to value_free). Concurrent calls see each
 * key either before or after its removal. 0 (-EINVAL for NULL). */
WEFT_API int weft_map_clear(weft_map_t *m);
/* 1 found (*value) | 0 computed by this call and stored (*value: the
 * stored value; if another caller stored the key meanwhile, that value
 * stands, this call returns 1 with it and the computed one goes to
 * value_free) | the nonzero result of a compute (this call's, or the one
 * it waited for; nothing stored) | -EDEADLK (compute of this key called
 * for it again) | -EINVAL / -ENOMEM. compute returns 0 and sets *value, or
 * an error, passed through as is: use negative codes (a positive 1 would
 * read as "found"). While compute runs the key is absent for load, len
 * and range; compute may use the map for other keys. */
WEFT_API int weft_map_get_or_compute(weft_map_t *m, const void *key, size_t klen,
				     int (*compute)(const void *key, size_t klen, void **value,
						    void *user),
				     void *user, void **value);
/* A section: values and keys loaded from any weft map until the matching
 * read_end stay valid (not freed). Nests; any map call may be made inside;
 * the caller (thread or task) may block inside. Never blocks. NULL: nothing
 * (and no section: read_begin(NULL) must not be paired with a real end). */
WEFT_API void weft_map_read_begin(weft_map_t *m);
WEFT_API void weft_map_read_end(weft_map_t *m);

/* ==== singleflight ======================================================
 * golang.org/x/sync/singleflight: weft_flight_do runs fn for a key unless
 * a call for the same key is in flight, in which case it waits (parked,
 * as get_or_compute) and shares that call's result. Nothing is cached:
 * once the call returns, the next do for the key runs fn again.
 * Concurrency: every call from any number of threads and tasks, except
 * create/destroy (no call may be running on f at destroy). */
typedef struct weft_flight weft_flight_t;

/* 0, -EINVAL (out NULL), -ENOMEM. */
WEFT_API int weft_flight_create(weft_flight_t **out);
/* NULL: nothing. */
WEFT_API void weft_flight_destroy(weft_flight_t *f);
/* Run fn(key, klen, &value, user) or wait for the call in flight for key;
 * returns fn's result (0 or nonzero, as fn returned it) and sets *value
 * (NULL when fn failed); *shared (may be NULL) 1 when the result went to
 * more than one caller (Go's shared). -EINVAL (f, fn or value NULL, bad
 * key), -ENOMEM, -EDEADLK (fn calls do for its own key). fn runs without
 * any lock held; the value is shared by address (who frees it is the
 * callers' business). */
WEFT_API int weft_flight_do(weft_flight_t *f, const void *key, size_t klen,
			    int (*fn)(const void *key, size_t klen, void **value, void *user),
			    void *user, void **value, int *shared);
/* Forget the call in flight for key (Go's Forget): later do calls run fn
 * anew instead of waiting for it; its current waiters still get its
 * result. 1 if a call was in flight, else 0; -EINVAL for bad input. */
WEFT_API int weft_flight_forget(weft_flight_t *f, const void *key, size_t klen);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_MAP_H */
