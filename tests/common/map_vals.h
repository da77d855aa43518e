/* tests/common/map_vals.h: values for the map tests that know whether the
 * map freed them. value_free (val_free) poisons a value (magic DEAD),
 * counts it per id and keeps its memory until vals_reset, so a reader that
 * still holds a value after it was freed finds the poison instead of
 * reused memory; freeing one twice fails. */
#ifndef WEFT_TEST_MAP_VALS_H
#define WEFT_TEST_MAP_VALS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define LIVE 0x11fe11fe11fe11feULL
#define DEAD 0xdeaddeaddeaddeadULL

struct val {
	_Atomic uint64_t magic;
	uint32_t id;
};

/* value_free: poison, count, and keep the memory until vals_reset (so a
 * reader that still holds one finds DEAD instead of reused memory) */
static struct vals {
	pthread_mutex_t mu;
	struct val **kept;
	size_t n, cap;
	_Atomic uint32_t *freed; /* per id */
	uint32_t nid;
	atomic_long total;
} V = { .mu = PTHREAD_MUTEX_INITIALIZER };

static inline void vals_reset(uint32_t nid)
{
	for (size_t i = 0; i < V.n; i++)
		free(V.kept[i]);
	free(V.kept);
	free(V.freed);
	V.kept = NULL;
	V.n = V.cap = 0;
	V.freed = calloc(nid ? nid : 1, sizeof *V.freed);
	V.nid = nid;
	atomic_store(&V.total, 0);
}

static inline struct val *val_new(uint32_t id)
{
	struct val *v = malloc(sizeof *v);
	CHECK(v != NULL);
	atomic_store(&v->magic, LIVE);
	v->id = id;
	return v;
}

static inline void val_keep(struct val *v);

static inline void val_free(void *p, void *user)
{
	struct val *v = p;
	CHECK(user == &V);
	CHECK(atomic_load(&v->magic) == LIVE); /* freed twice? */
	atomic_store(&v->magic, DEAD);
	CHECK(v->id < V.nid);
	atomic_fetch_add(&V.freed[v->id], 1);
	atomic_fetch_add(&V.total, 1);
	val_keep(v);
}

/* keep v (not freed) until vals_reset: a value handed back to us that a
 * reader in a section may still hold */
static inline void val_keep(struct val *v)
{
	pthread_mutex_lock(&V.mu);
	if (V.n == V.cap) {
		V.cap = V.cap ? V.cap * 2 : 1024;
		V.kept = realloc(V.kept, V.cap * sizeof *V.kept);
		CHECK(V.kept != NULL);
	}
	V.kept[V.n++] = v;
	pthread_mutex_unlock(&V.mu);
}

/* the caller got a value back (load_and_delete, swap): it is ours */
static inline void val_drop(struct val *v)
{
	CHECK(atomic_load(&v->magic) == LIVE);
	free(v);
}

#endif
