/* bench/baseline/map_mutex.c: see map_mutex.h. */
#include "map_mutex.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	struct ent *next;
	uint64_t h;
	void *value;
	size_t klen;
	unsigned char key[];
};

struct pend { /* a value waiting for the readers to leave */
	struct pend *next;
	void *value;
};

struct flight {
	struct flight *next;
	pthread_cond_t cv;
	pthread_t owner;
	int done, err, refs;
	void *value;
	uint64_t h;
	size_t klen;
	unsigned char key[];
};

struct lmap {
	bool rw;
	pthread_mutex_t mu;
	pthread_rwlock_t rwl;
	struct ent **b;
	size_t nb, n;
	long readers; /* ranges and sections in progress */
	struct pend *pending;
	struct flight *flights;
	void (*value_free)(void *, void *);
	void *user;
};

/* 8 bytes at a time, multiply-xorshift (a competent short-key hash) */
static uint64_t lhash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		p += 8;
		n -= 8;
	}
	uint64_t w = 0;
	if (n)
		memcpy(&w, p, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 29);
}

static void wlock(lmap_t *m)
{
	if (m->rw)
		pthread_rwlock_wrlock(&m->rwl);
	else
		pthread_mutex_lock(&m->mu);
}
static void rlock(lmap_t *m)
{
	if (m->rw)
		pthread_rwlock_rdlock(&m->rwl);
	else
		pthread_mutex_lock(&m->mu);
}
static void unlock(lmap_t *m)
{
	if (m->rw)
		pthread_rwlock_unlock(&m->rwl);
	else
		pthread_mutex_unlock(&m->mu);
}

static bool bad(const void *key, size_t klen)
{
	return (!key && klen) || klen > WEFT_MAP_MAX_KEY;
}

int lmap_create(lmap_t **out, const weft_map_opts_t *opts, bool rw)
{
	if (!out)
		return -EINVAL;
	lmap_t *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->rw = rw;
	size_t nb = 16;
	if (opts) {
		m->value_free = opts->value_free;
		m->user = opts->user;
		while (nb < opts->capacity_hint)
			nb *= 2;
	}
	m->b = calloc(nb, sizeof *m->b);
	if (!m->b) {
		free(m);
		return -ENOMEM;
	}
	m->nb = nb;
	pthread_mutex_init(&m->mu, NULL);
	pthread_rwlock_init(&m->rwl, NULL);
	*out = m;
	return 0;
}

void lmap_destroy(lmap_t *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nb; i++)
		for (struct ent *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			if (m->value_free && e->value)
				m->value_free(e->value, m->user);
			free(e);
		}
	for (struct pend *p = m->pending, *nx; p; p = nx) {
		nx = p->next;
		if (m->value_free)
			m->value_free(p->value, m->user);
		free(p);
	}
	free(m->b);
	pthread_mutex_destroy(&m->mu);
	pthread_rwlock_destroy(&m->rwl);
	free(m);
}

static struct ent **lookup(lmap_t *m, uint64_t h, const void *key, size_t klen)
{
	struct ent **pp = &m->b[h & (m->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->h == h && (*pp)->klen == klen &&
		    (!klen || memcmp((*pp)->key, key, klen) == 0))
			return pp;
	return pp;
}

/* Write lock held: a value left the map. Freed now (returned in *now, the
 * caller frees it after unlocking) unless readers are inside; then it
 * waits on the pending list. Returns whether p was used (not when there
 * is nothing to free). */
static bool leave(lmap_t *m, struct pend *p, void *value, struct pend **now)
{
	if (!m->value_free || !value)
		return false;
	p->value = value;
	if (m->readers) {
		p->next = m->pending;
		m->pending = p;
	} else {
		p->next = *now;
		*now = p;
	}
	return true;
}

static void free_pend(lmap_t *m, struct pend *p)
{
	while (p) {
		struct pend *nx = p->next;
		m->value_free(p->value, m->user);
		free(p);
		p = nx;
	}
}

static bool grow(lmap_t *m)
{
	size_t nb = m->nb * 2;
	struct ent **b = calloc(nb, sizeof *b);
	if (!b)
		return false;
	for (size_t i = 0; i < m->nb; i++)
		for (struct ent *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
		}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return true;
}

/* write lock held: insert a new entry at *pp. */
static int insert(lmap_t *m, struct ent **pp, uint64_t h, const void *key, size_t klen, void *v)
{
	struct ent *e = malloc(sizeof *e + klen);
	if (!e)
		return -ENOMEM;
	e->h = h;
	e->value = v;
	e->klen = klen;
	if (klen)
		memcpy(e->key, key, klen);
	if (m->n + 1 > m->nb && grow(m))
		pp = lookup(m, h, key, klen);
	e->next = *pp;
	*pp = e;
	m->n++;
	return 0;
}

int lmap_load(lmap_t *m, const void *key, size_t klen, void **value)
{
	if (!m || bad(key, klen) || !value)
		return -EINVAL;
	uint64_t h = lhash(key, klen);
	rlock(m);
	struct ent *e = *lookup(m, h, key, klen);
	*value = e ? e->value : NULL;
	unlock(m);
	return e != NULL;
}

enum op { OP_STORE, OP_SWAP, OP_LOS, OP_LAD, OP_DEL, OP_CAS, OP_CAD };

static int write_op(lmap_t *m, enum op op, const void *key, size_t klen, void *value, void *old,
		    void **out)
{
	uint64_t h = lhash(key, klen);
	struct pend *p = NULL, *now = NULL;
	if (m->value_free && !(p = malloc(sizeof *p)))
		return -ENOMEM;
	int rc = 0;
	wlock(m);
	struct ent **pp = lookup(m, h, key, klen), *e = *pp;
	switch (op) {
	case OP_STORE:
	case OP_SWAP:
		if (e) {
			void *prev = e->value;
			e->value = value;
			if (op == OP_SWAP)
				*out = prev;
			else if (prev != value && leave(m, p, prev, &now))
				p = NULL; /* (the same value stays: nothing left) */
			rc = 1;
		} else {
			rc = insert(m, pp, h, key, klen, value);
			if (op == OP_SWAP && rc == 0)
				*out = NULL;
		}
		break;
	case OP_LOS:
		if (e) {
			*out = e->value;
			rc = 1;
		} else if ((rc = insert(m, pp, h, key, klen, value)) == 0)
			*out = NULL;
		break;
	case OP_LAD:
	case OP_DEL:
	case OP_CAD:
		if (e && (op != OP_CAD || e->value == old)) {
			*pp = e->next;
			m->n--;
			if (op == OP_LAD)
				*out = e->value;
			else if (leave(m, p, e->value, &now))
				p = NULL;
			free(e);
			rc = 1;
		} else if (op == OP_LAD) {
			*out = NULL;
		}
		break;
	case OP_CAS:
		if (e && e->value == old) {
			e->value = value;
			if (old != value && leave(m, p, old, &now))
				p = NULL;
			rc = 1;
		}
		break;
	}
	unlock(m);
	free(p);
	if (now)
		free_pend(m, now);
	return rc;
}

int lmap_store(lmap_t *m, const void *key, size_t klen, void *value)
{
	if (!m || bad(key, klen))
		return -EINVAL;
	int rc = write_op(m, OP_STORE, key, klen, value, NULL, NULL);
	return rc < 0 ? rc : 0;
}
int lmap_load_or_store(lmap_t *m, const void *key, size_t klen, void *value, void **actual)
{
	if (!m || bad(key, klen) || !actual)
		return -EINVAL;
	return write_op(m, OP_LOS, key, klen, value, NULL, actual);
}
int lmap_load_and_delete(lmap_t *m, const void *key, size_t klen, void **value)
{
	if (!m || bad(key, klen) || !value)
		return -EINVAL;
	return write_op(m, OP_LAD, key, klen, NULL, NULL, value);
}
int lmap_delete(lmap_t *m, const void *key, size_t klen)
{
	if (!m || bad(key, klen))
		return -EINVAL;
	return write_op(m, OP_DEL, key, klen, NULL, NULL, NULL);
}
int lmap_swap(lmap_t *m, const void *key, size_t klen, void *value, void **previous)
{
	if (!m || bad(key, klen) || !previous)
		return -EINVAL;
	return write_op(m, OP_SWAP, key, klen, value, NULL, previous);
}
int lmap_compare_and_swap(lmap_t *m, const void *key, size_t klen, void *old, void *value)
{
	if (!m || bad(key, klen))
		return -EINVAL;
	return write_op(m, OP_CAS, key, klen, value, old, NULL);
}
int lmap_compare_and_delete(lmap_t *m, const void *key, size_t klen, void *old)
{
	if (!m || bad(key, klen))
		return -EINVAL;
	return write_op(m, OP_CAD, key, klen, NULL, old, NULL);
}

void lmap_read_begin(lmap_t *m)
{
	if (!m)
		return;
	wlock(m);
	m->readers++;
	unlock(m);
}

void lmap_read_end(lmap_t *m)
{
	if (!m)
		return;
	struct pend *p = NULL;
	wlock(m);
	if (m->readers > 0 && --m->readers == 0) {
		p = m->pending;
		m->pending = NULL;
	}
	unlock(m);
	if (p)
		free_pend(m, p);
}

int lmap_range(lmap_t *m, int (*fn)(const void *key, size_t klen, void *value, void *user),
	       void *user)
{
	if (!m || !fn)
		return -EINVAL;
	/* a snapshot: one block of (entry copy) records, then fn unlocked */
	wlock(m);
	size_t n = m->n, i = 0, bytes = 0;
	for (size_t b = 0; b < m->nb; b++)
		for (struct ent *e = m->b[b]; e; e = e->next)
			bytes += sizeof(struct ent) + ((e->klen + 7) & ~(size_t)7);
	char *snap = malloc(bytes ? bytes : 1);
	if (!snap) {
		unlock(m);
		return -ENOMEM;
	}
	m->readers++;
	char *w = snap;
	for (size_t b = 0; b < m->nb; b++)
		for (struct ent *e = m->b[b]; e; e = e->next, i++) {
			struct ent *c = (struct ent *)(void *)w;
			c->value = e->value;
			c->klen = e->klen;
			memcpy(c->key, e->key, e->klen);
			w += sizeof(struct ent) + ((e->klen + 7) & ~(size_t)7);
		}
	unlock(m);
	int rc = 0;
	w = snap;
	for (i = 0; i < n && !rc; i++) {
		struct ent *c = (struct ent *)(void *)w;
		rc = fn(c->key, c->klen, c->value, user);
		w += sizeof(struct ent) + ((c->klen + 7) & ~(size_t)7);
	}
	free(snap);
	lmap_read_end(m);
	return rc;
}

size_t lmap_len(lmap_t *m)
{
	if (!m)
		return 0;
	rlock(m);
	size_t n = m->n;
	unlock(m);
	return n;
}

int lmap_clear(lmap_t *m)
{
	if (!m)
		return -EINVAL;
	struct ent *all = NULL;
	wlock(m);
	for (size_t i = 0; i < m->nb; i++)
		for (struct ent *e = m->b[i], *nx; e; e = nx) {
			nx = e->next;
			e->next = all;
			all = e;
		}
	memset(m->b, 0, m->nb * sizeof *m->b);
	m->n = 0;
	/* with readers inside, the values wait: the entries become pending
	 * records (struct ent starts with next, value follows: reuse the
	 * memory as a pend) */
	struct pend *now = NULL;
	for (struct ent *e = all, *nx; e; e = nx) {
		nx = e->next;
		if (!m->value_free || !e->value) {
			free(e);
			continue;
		}
		struct pend *p = (struct pend *)(void *)e;
		void *v = e->value;
		leave(m, p, v, &now);
	}
	unlock(m);
	if (now)
		free_pend(m, now);
	return 0;
}

int lmap_get_or_compute(lmap_t *m, const void *key, size_t klen,
			int (*compute)(const void *key, size_t klen, void **value, void *user),
			void *user, void **value)
{
	if (!m || bad(key, klen) || !compute || !value)
		return -EINVAL;
	uint64_t h = lhash(key, klen);
	wlock(m);
	struct ent *e = *lookup(m, h, key, klen);
	if (e) {
		*value = e->value;
		unlock(m);
		return 1;
	}
	struct flight *f;
	for (f = m->flights; f; f = f->next)
		if (f->h == h && f->klen == klen && (!klen || memcmp(f->key, key, klen) == 0))
			break;
	if (f) {
		if (pthread_equal(f->owner, pthread_self())) {
			unlock(m);
			*value = NULL;
			return -EDEADLK;
		}
		f->refs++;
		/* a flight's condvar waits on the mutex: the rwlock flavour
		 * waits on mu too, taken around the wait */
		if (m->rw) {
			pthread_mutex_lock(&m->mu);
			unlock(m);
			while (!__atomic_load_n(&f->done, __ATOMIC_ACQUIRE))
				pthread_cond_wait(&f->cv, &m->mu);
			pthread_mutex_unlock(&m->mu);
			wlock(m);
		} else {
			while (!f->done)
				pthread_cond_wait(&f->cv, &m->mu);
		}
		int err = f->err;
		*value = err ? NULL : f->value;
		bool last = --f->refs == 0;
		unlock(m);
		if (last) {
			pthread_cond_destroy(&f->cv);
			free(f);
		}
		return err ? err : 1;
	}
	f = calloc(1, sizeof *f + klen);
	if (!f) {
		unlock(m);
		*value = NULL;
		return -ENOMEM;
	}
	pthread_cond_init(&f->cv, NULL);
	f->owner = pthread_self();
	f->refs = 1;
	f->h = h;
	f->klen = klen;
	if (klen)
		memcpy(f->key, key, klen);
	f->next = m->flights;
	m->flights = f;
	unlock(m);

	void *cv = NULL;
	int err = compute(key, klen, &cv, user);
	int rc = 0;
	void *res = NULL, *drop = NULL;

	wlock(m);
	struct flight **fp = &m->flights;
	while (*fp != f)
		fp = &(*fp)->next;
	*fp = f->next;
	if (!err) {
		struct ent **pp = lookup(m, h, key, klen);
		if (*pp) { /* stored meanwhile: that value stands */
			res = (*pp)->value;
			drop = cv != res ? cv : NULL;
			rc = 1;
		} else if ((rc = insert(m, pp, h, key, klen, cv)) == 0) {
			res = cv;
		} else {
			drop = cv;
		}
	} else {
		rc = err;
	}
	f->err = rc < 0 || err ? rc : 0;
	f->value = res;
	if (m->rw) {
		pthread_mutex_lock(&m->mu);
		__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&m->mu);
	} else {
		f->done = 1;
		pthread_cond_broadcast(&f->cv);
	}
	bool last = --f->refs == 0;
	unlock(m);
	if (last) {
		pthread_cond_destroy(&f->cv);
		free(f);
	}
	if (drop && m->value_free)
		m->value_free(drop, m->user);
	*value = rc < 0 || err ? NULL : res;
	return rc;
}
