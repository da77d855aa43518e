/* lib/map.c: the concurrent map (weft/map.h) and singleflight.
 *
 * Layout: shards; each shard an open-addressing table of tagged node
 * pointers (slot = node | 16-bit hash tag << 48; 0 = empty). Slots only
 * ever go from empty to a node within one table; a table is replaced whole
 * (rebuild, clear) under the shard's lock. A node holds one key for its
 * life; its value word is the key's value, or TOMB (deleted).
 *
 * Ordering:
 * - Insert: the node is written, then the slot is stored with release;
 *   readers load slots with acquire (the node's key and first value before
 *   the slot). Rebuild/clear: the new table is filled, then published with
 *   an exchange of the shard's table pointer (release, full RMW); readers
 *   load it with acquire.
 * - A node's value word changes only by CAS (full barrier): lock-free
 *   replaces (live -> live), deletes (live -> TOMB) and, under the shard
 *   lock only, revivals (TOMB -> live). Readers load it with acquire (the
 *   storer's writes to the value's pointee before the CAS). Lock-free ops
 *   never CAS from TOMB, so a node seen TOMB under the lock stays TOMB
 *   until the lock holder revives it; rebuild drops TOMB nodes safely.
 * - Reclamation (SRCU-style, one domain for all maps): each thread has a
 *   record with lock[2] and unlock[2] counters, written only by their
 *   thread. A pin reads the epoch G, adds 1 to lock[G & 1] (relaxed store),
 *   then a store-load fence (light: a compiler barrier when membarrier is
 *   available; the reclaimer's membarrier is the heavy side of the Dekker
 *   pair), then reads G again: if it moved, the pin may have counted on a
 *   parity already checked (the reader was delayed between its two
 *   steps), so it undoes and retries; unpin adds 1 to unlock[p] with release
 *   (everything read in the pin before it). A task that parks inside a pin
 *   may unpin on another carrier: only the sums over all records matter.
 *   Retiring: the unlink is an RMW (CAS, exchange), then
 *   weft__fence_rmw_load, then the object is stamped with G. Advancing G
 *   from g to g+1: heavy fence, then parity (g-1)&1 must be quiescent:
 *   sum(unlock[q]) read first (acquire), then sum(lock[q]) (acquire): equal
 *   means nobody who pinned q is still inside (an unlock seen implies its
 *   lock is seen). An object stamped e is freed once G >= e + 2. A reader
 *   that validated G == g holds only objects stamped e >= g, and G cannot
 *   pass g + 1 -> g + 2 while it is pinned: that advance checks parity g
 *   after G left g, and then the reader's count is visible (membarrier: its
 *   count was stored before the fence, or its re-read of G would have seen
 *   the change).
 * - get_or_compute/flight calls: state word RUNNING -> (WAITERS) -> DONE;
 *   the finisher writes err and value, then exchanges DONE (release), and
 *   wakes only if a waiter set WAITERS (its CAS, then it parks on the word:
 *   once.c's pattern). refs (full RMW) decide who frees the call.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal/park.h"
#include "internal/sched.h"
#include "internal/sys.h"
#include <weft/map.h>
#include <weft/task.h>

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t rd_tail(const unsigned char *p, size_t n)
{
	/* 1..7 bytes */
	uint64_t v = 0;
	if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + n - 4, 4);
		return (uint64_t)a << 32 | b;
	}
	v = (uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1];
	return v;
}

#define K0 0xa0761d6478bd642fULL
#define K1 0xe7037ed1a0b428dbULL
#define K2 0x8ebc6af09c88c6e3ULL

static uint64_t hash_bytes(const void *key, size_t n, uint64_t seed)
{
	const unsigned char *p = key;
	uint64_t h = seed ^ mum(n ^ K1, K0);
	while (n > 16) {
		h = mum(rd64(p) ^ K1, rd64(p + 8) ^ h);
		p += 16;
		n -= 16;
	}
	uint64_t a = 0, b = 0;
	if (n > 8) {
		a = rd64(p);
		b = rd64(p + n - 8);
	} else if (n == 8) {
		a = rd64(p);
	} else if (n > 0) {
		a = rd_tail(p, n);
	}
	return mum(mum(a ^ K1, b ^ h) ^ K2, h ^ K0);
}

/* ---- reclamation: thread records and the epoch ---------------------------- */

struct rec {
	WEFT__ALIGNED uint64_t lock[2];
	uint64_t unlock[2];
	uint32_t in_use; /* CAS 0 -> 1 by a thread taking it; 0 at thread exit */
	struct rec *next; /* the registry; never unlinked */
};

static struct rec *rec_head; /* registry (push: CAS) */
/* G: read by every pin, written once per advance; its own line, so that
 * no often-written neighbour (of this or another module) makes every
 * pin miss */
static WEFT__ALIGNED uint64_t g_epoch = 2;
static pthread_key_t rec_key;
static bool rec_key_ok; /* written once, inside pthread_once */
static pthread_once_t rec_key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct rec *tl_rec;

static void rec_release(void *p)
{
	struct rec *r = p;
	/* release: this thread's last unlocks before the record is reused */
	weft__st32_rel(&r->in_use, 0);
}

/* Without a key (the process used up PTHREAD_KEYS_MAX: EAGAIN), the maps
 * still work: a record is then not given back when its thread exits, it
 * stays in use (records are never freed anyway). A library must not
 * abort for it. */
static void rec_key_init(void)
{
	rec_key_ok = weft__sys_key_create(&rec_key, rec_release) == 0;
}

static __attribute__((noinline, cold)) struct rec *rec_register(void)
{
	pthread_once(&rec_key_once, rec_key_init);
	struct rec *r;
	/* acquire: a record's fields before its link */
	for (r = weft__ldp_acq((void **)&rec_head); r; r = r->next) {
		uint32_t z = 0;
		/* full RMW: exclusive ownership of a free record */
		if (weft__ld32_rlx(&r->in_use) == 0 && weft__cas32(&r->in_use, &z, 1))
			break;
	}
	if (!r) {
		/* records are never freed; loop until memory comes back */
		while (weft__sys_posix_memalign((void **)&r, WEFT__PAD, sizeof *r) != 0)
			weft_yield();
		memset(r, 0, sizeof *r);
		r->in_use = 1;
		void *h = weft__ldp_rlx((void **)&rec_head);
		do
			r->next = h;
		/* release (full RMW): the record's fields before its link */
		while (!weft__casp((void **)&rec_head, &h, r));
	}
	if (rec_key_ok)
		pthread_setspecific(rec_key, r);
	tl_rec = r;
	return r;
}

static inline struct rec *my_rec(void)
{
	struct rec *r = tl_rec;
	return __builtin_expect(r != NULL, 1) ? r : rec_register();
}

/* The record of the thread running now, read anew: for an unpin after a
 * call that may have parked a task (it may resume on another carrier).
 * gcc's noipa keeps callers from assuming anything about the call; clang
 * has no noipa (it warns), and there the asm's memory clobber keeps the
 * call from being judged pure and merged with an earlier one. */
#ifdef __clang__
#define NOIPA noinline
#else
#define NOIPA noinline, noipa
#endif
static __attribute__((NOIPA)) struct rec *my_rec_fresh(void)
{
	__asm__ __volatile__("" ::: "memory");
	return my_rec();
}

static inline void light_fence(void)
{
	if (weft__asym())
		__asm__ __volatile__("" ::: "memory");
	else
		weft__fence_sc();
}

static inline uint32_t pin_on(struct rec *r)
{
	for (;;) {
		/* relaxed: validated below */
		uint64_t g = weft__ld64_rlx(&g_epoch);
		uint32_t p = (uint32_t)g & 1;
		/* relaxed store by the only writer; the fence below orders it
		 * before our later loads (pairs with the reclaimer's heavy
		 * fence) */
		weft__st64_rlx(&r->lock[p], r->lock[p] + 1);
		light_fence();
		/* G unchanged after our count is visible: no check of parity p
		 * made after G left g can miss us, so nothing we may see is
		 * freed before we unpin. Changed: we may have counted on a
		 * parity already checked (a stale G); count again. */
		if (__builtin_expect(weft__ld64_rlx(&g_epoch) == g, 1))
			return p;
		/* release: as unpin */
		weft__st64_rel(&r->unlock[p], r->unlock[p] + 1);
	}
}

static inline void unpin_on(struct rec *r, uint32_t p)
{
	/* release: our reads of the map before the count; pairs with the
	 * acquire loads in quiescent() */
	weft__st64_rel(&r->unlock[p], r->unlock[p] + 1);
}

static inline uint32_t pin(void)
{
	return pin_on(my_rec());
}

static inline void unpin(uint32_t p)
{
	unpin_on(my_rec(), p);
}

static bool quiescent(uint32_t q)
{
	uint64_t u = 0, l = 0;
	struct rec *r, *head = weft__ldp_acq((void **)&rec_head);
	for (r = head; r; r = r->next)
		/* acquire: pairs with unpin's release (the reader's accesses
		 * before our free); also keeps the lock sums after */
		u += weft__ld64_acq(&r->unlock[q]);
	for (r = head; r; r = r->next)
		/* acquire: ordered after the unlock sums */
		l += weft__ld64_acq(&r->lock[q]);
	return l == u;
}

static uint64_t try_advance(void)
{
	/* acquire: pairs with the CAS of the previous advance */
	uint64_t g = weft__ld64_acq(&g_epoch);
	/* heavy: every reader's lock count before our sums, or its reads
	 * after our unlinks */
	weft__fence_heavy();
	if (quiescent((uint32_t)(g - 1) & 1)) {
		/* full RMW: one advance per g */
		if (weft__cas64(&g_epoch, &g, g + 1))
			return g + 1;
	}
	return g;
}

/* ---- objects that retire -------------------------------------------------- */

enum { R_NODE = 1, R_TABLE = 2, R_VALUE = 3 };

struct ret {
	struct ret *next;
	uint32_t epoch; /* low 32 bits of G when retired */
	uint32_t kind;  /* R_* (nodes: | klen << 2) */
};

struct node {
	struct ret r; /* r.kind = R_NODE | klen << 2 */
	void *value;  /* the value, or TOMB */
	unsigned char key[];
};

struct table {
	struct ret r;
	uint64_t mask;
	uint64_t slot[];
};

struct vret {
	struct ret r;
	void *value;
};

static char tomb_marker;
#define TOMB ((void *)&tomb_marker)

#define TAG_SHIFT 48
#define PTR_MASK (((uint64_t)1 << TAG_SHIFT) - 1)
#define TAG(h) (((h) >> 32 & 0xffffULL) << TAG_SHIFT)
#define SLOT_NODE(s) ((struct node *)(uintptr_t)((s) & PTR_MASK))

static inline size_t node_klen(const struct node *n)
{
	return n->r.kind >> 2;
}

/* ---- the map ---------------------------------------------------------------- */

struct call;

struct shard {
	WEFT__ALIGNED struct table *tab; /* readers' line: read-mostly */
	WEFT__ALIGNED weft__mutex_t lock;
	uint64_t live;          /* keys present (full RMW) */
	uint64_t used;          /* slots taken in tab; under lock */
	struct ret *rstack;     /* retired, not yet in limbo (CAS push) */
	uint32_t rpending;      /* pushes since the last drain (full RMW) */
	struct call *calls;     /* computes in flight; under lock */
};

#define LIMBO 4

struct weft_map {
	void (*value_free)(void *value, void *user);
	void *user;
	uint64_t seed;
	uint32_t shard_bits;
	uint32_t min_cap;
	struct shard *sh;
	WEFT__ALIGNED weft__mutex_t rlock; /* the reclaimer; guards limbo */
	struct ret *limbo[LIMBO];
	uint32_t limbo_max[LIMBO];
	bool limbo_used[LIMBO];
};

#define RECLAIM_EVERY 32
#define MIN_CAP 16

static struct table *table_new(uint64_t cap)
{
	struct table *t = weft__sys_calloc(1, sizeof *t + cap * sizeof(uint64_t));
	if (!t)
		return NULL;
	t->r.kind = R_TABLE;
	t->mask = cap - 1;
	return t;
}

static inline struct shard *shard_of(weft_map_t *m, uint64_t h)
{
	return &m->sh[h >> (64 - m->shard_bits)];
}

/* Is the node's key the klen bytes at key? (8-byte keys, the common
 * integer case, without a call to memcmp.) */
static inline bool key_eq(const struct node *n, const void *key, size_t klen)
{
	if (node_klen(n) != klen)
		return false;
	if (klen == 8)
		return rd64(n->key) == rd64(key);
	return !klen || memcmp(n->key, key, klen) == 0;
}

static inline struct node *find(struct table *t, uint64_t h, const void *key, size_t klen)
{
	uint64_t tag = TAG(h), i = h & t->mask;
	for (;;) {
		/* acquire: the node's key before the slot; pairs with the
		 * release in insert_slot */
		uint64_t s = weft__ld64_acq(&t->slot[i]);
		if (!s)
			return NULL;
		if ((s & ~PTR_MASK) == tag) {
			struct node *n = SLOT_NODE(s);
			if (key_eq(n, key, klen))
				return n;
		}
		i = (i + 1) & t->mask;
	}
}

static inline struct table *tab_of(struct shard *sh)
{
	/* acquire: the table's slots before the pointer; pairs with the
	 * exchange in rebuild and clear */
	return weft__ldp_acq((void **)&sh->tab);
}

static inline void *val_of(struct node *n)
{
	/* acquire: the storer's writes before its CAS */
	return weft__ldp_acq(&n->value);
}

/* Plain store into a table nobody reads yet (rebuild). */
static void place(struct table *t, uint64_t h, struct node *n)
{
	uint64_t i = h & t->mask;
	while (t->slot[i])
		i = (i + 1) & t->mask;
	t->slot[i] = (uint64_t)(uintptr_t)n | TAG(h);
}

static void insert_slot(struct table *t, uint64_t h, struct node *n)
{
	uint64_t i = h & t->mask;
	while (weft__ld64_rlx(&t->slot[i]))
		i = (i + 1) & t->mask;
	/* release: the node's key and value before the slot; pairs with the
	 * acquire in find */
	weft__st64_rel(&t->slot[i], (uint64_t)(uintptr_t)n | TAG(h));
}

/* Push a retired object on the shard's stack. The unlink was an RMW;
 * returns true when the caller should reclaim (after dropping locks). */
static bool retire(struct shard *sh, struct ret *r)
{
	weft__fence_rmw_load();
	/* relaxed load, after the unlink's RMW and the fence above */
	r->epoch = (uint32_t)weft__ld64_rlx(&g_epoch);
	void *h = weft__ldp_rlx((void **)&sh->rstack);
	do
		r->next = h;
	/* release (full RMW): r's fields before the link; pairs with the
	 * exchange that drains the stack */
	while (!weft__casp((void **)&sh->rstack, &h, r));
	return (weft__faa32(&sh->rpending, 1) + 1) % RECLAIM_EVERY == 0;
}

static void free_ret(weft_map_t *m, struct ret *r)
{
	while (r) {
		struct ret *next = r->next;
		if ((r->kind & 3) == R_VALUE) {
			struct vret *v = (struct vret *)r;
			if (m->value_free)
				m->value_free(v->value, m->user);
		}
		free(r);
		r = next;
	}
}

/* Move the shards' stacks into limbo, advance the epoch (twice at most)
 * and free what is due. Never blocks: if another thread reclaims, leaves. */
static void reclaim(weft_map_t *m)
{
	if (!weft__mutex_trylock(&m->rlock))
		return;
	uint32_t nsh = 1u << m->shard_bits;
	for (uint32_t i = 0; i < nsh; i++) {
		/* acquire: the retired objects' fields; pairs with retire's CAS */
		struct ret *r = weft__fasp((void **)&m->sh[i].rstack, NULL);
		while (r) {
			struct ret *next = r->next;
			uint32_t b = r->epoch % LIMBO;
			r->next = m->limbo[b];
			m->limbo[b] = r;
			if (!m->limbo_used[b] || (int32_t)(r->epoch - m->limbo_max[b]) > 0)
				m->limbo_max[b] = r->epoch;
			m->limbo_used[b] = true;
			r = next;
		}
	}
	struct ret *due = NULL;
	for (int round = 0; round < 2; round++) {
		uint32_t g = (uint32_t)try_advance();
		for (int b = 0; b < LIMBO; b++) {
			if (m->limbo_used[b] && (int32_t)(g - m->limbo_max[b]) >= 2) {
				struct ret *r = m->limbo[b];
				while (r) {
					struct ret *next = r->next;
					r->next = due;
					due = r;
					r = next;
				}
				m->limbo[b] = NULL;
				m->limbo_used[b] = false;
			}
		}
		bool left = false;
		for (int b = 0; b < LIMBO; b++)
			left |= m->limbo_used[b];
		if (!left)
			break;
	}
	weft__mutex_unlock(&m->rlock);
	free_ret(m, due);
}

static struct vret *vret_new(weft_map_t *m)
{
	if (!m->value_free)
		return NULL;
	struct vret *v = weft__sys_malloc(sizeof *v);
	if (v)
		v->r.kind = R_VALUE;
	return v;
}

/* After a value left the map (not handed back): retire it. v was
 * allocated beforehand (NULL when there is no value_free). */
static bool retire_value(struct shard *sh, struct vret *v, void *value)
{
	if (!v)
		return false;
	if (!value) { /* value_free never sees NULL */
		free(v);
		return false;
	}
	v->value = value;
	return retire(sh, &v->r);
}

/* ---- locked paths ---------------------------------------------------------- */

/* Rebuild sh's table for one more key (lock held). Returns false on
 * ENOMEM (nothing changed). *want_reclaim set when retiring asked. */
static bool rebuild(weft_map_t *m, struct shard *sh, bool *want_reclaim)
{
	struct table *t = sh->tab;
	uint64_t nlive = 0;
	for (uint64_t i = 0; i <= t->mask; i++) {
		uint64_t s = t->slot[i];
		if (s && weft__ldp_rlx(&SLOT_NODE(s)->value) != TOMB)
			nlive++;
	}
	uint64_t cap = m->min_cap;
	while (cap * 3 / 4 < (nlive + 1) * 3 / 2 + 1)
		cap *= 2;
	struct table *nt = table_new(cap);
	if (!nt)
		return false;
	struct ret *dropped = NULL;
	uint64_t used = 0;
	for (uint64_t i = 0; i <= t->mask; i++) {
		uint64_t s = t->slot[i];
		if (!s)
			continue;
		struct node *n = SLOT_NODE(s);
		/* relaxed: TOMB cannot change while we hold the lock; a live
		 * value may become TOMB after we copy (fine, it stays) */
		if (weft__ldp_rlx(&n->value) == TOMB) {
			n->r.next = dropped;
			dropped = &n->r;
			continue;
		}
		/* the hash is recomputed: nodes do not keep it */
		place(nt, hash_bytes(n->key, node_klen(n), m->seed), n);
		used++;
	}
	/* release (full RMW): nt's slots before the pointer; pairs with the
	 * acquire in tab_of. Also the unlink of t and dropped nodes. */
	weft__fasp((void **)&sh->tab, nt);
	sh->used = used;
	*want_reclaim |= retire(sh, &t->r);
	while (dropped) {
		struct ret *next = dropped->next;
		*want_reclaim |= retire(sh, dropped);
		dropped = next;
	}
	return true;
}

enum put_mode { PUT_STORE, PUT_LOAD_OR_STORE };

/* Lock held. Store value for key: if a live value is there, PUT_STORE
 * replaces it (returns 1, *old) and PUT_LOAD_OR_STORE leaves it (returns 1,
 * *old: the existing value); if none, inserts or revives (returns 0).
 * -ENOMEM: nothing changed. */
static int put_locked(weft_map_t *m, struct shard *sh, uint64_t h, const void *key, size_t klen,
		      void *value, enum put_mode mode, void **old, bool *want_reclaim)
{
	struct node *n = find(sh->tab, h, key, klen);
	if (n) {
		/* acquire: a live value may be handed to the caller (loaded) */
		void *cur = val_of(n);
		for (;;) {
			if (cur == TOMB) {
				/* full RMW: count before it can be deleted */
				weft__faa64(&sh->live, 1);
				/* release (full RMW): revive; only we move a
				 * TOMB while holding the lock */
				void *e = TOMB;
				if (!weft__casp(&n->value, &e, value))
					abort(); /* lock-free ops never change TOMB */
				return 0;
			}
			if (mode == PUT_LOAD_OR_STORE) {
				*old = cur;
				return 1;
			}
			/* release (full RMW): the pointee before the value */
			if (weft__casp(&n->value, &cur, value)) {
				*old = cur;
				return 1;
			}
		}
	}
	if (klen > WEFT_MAP_MAX_KEY)
		return -EINVAL;
	n = weft__sys_malloc(sizeof *n + (klen ? klen : 1));
	if (!n)
		return -ENOMEM;
	if ((uintptr_t)n & ~PTR_MASK) { /* no room for the tag: refuse */
		free(n);
		return -ENOMEM;
	}
	if ((sh->used + 1) * 4 > (sh->tab->mask + 1) * 3 && !rebuild(m, sh, want_reclaim)) {
		free(n);
		return -ENOMEM;
	}
	n->r.kind = R_NODE | (uint32_t)klen << 2;
	n->r.next = NULL;
	n->value = value;
	if (klen)
		memcpy(n->key, key, klen);
	weft__faa64(&sh->live, 1);
	insert_slot(sh->tab, h, n);
	sh->used++;
	return 0;
}

/* ---- calls: compute-once waits (get_or_compute and flights) --------------- */

#define C_RUNNING 0u
#define C_WAITERS 1u
#define C_DONE 2u

struct call {
	struct call *next; /* in a list under its owner's lock */
	uint32_t state;
	uint32_t refs;     /* full RMW */
	uint32_t nwait;    /* waiters that joined; under the owner's lock */
	int err;           /* written before DONE */
	void *value;       /* written before DONE */
	uint64_t owner;    /* who computes (self_id) */
	uint64_t hash;
	size_t klen;
	unsigned char key[];
};

static _Thread_local char tl_self;

static inline uint64_t self_id(void)
{
	weft__task_t *t = weft__task_self();
	return t ? (uint64_t)(uintptr_t)t : (uint64_t)(uintptr_t)&tl_self;
}

static struct call *call_new(uint64_t h, const void *key, size_t klen)
{
	struct call *c = weft__sys_malloc(sizeof *c + klen);
	if (!c)
		return NULL;
	memset(c, 0, sizeof *c);
	c->refs = 1;
	c->owner = self_id();
	c->hash = h;
	c->klen = klen;
	if (klen)
		memcpy(c->key, key, klen);
	return c;
}

static struct call **call_find(struct call **head, uint64_t h, const void *key, size_t klen)
{
	for (struct call **pp = head; *pp; pp = &(*pp)->next) {
		struct call *c = *pp;
		if (c->hash == h && c->klen == klen && (!klen || memcmp(c->key, key, klen) == 0))
			return pp;
	}
	return NULL;
}

static void call_put(struct call *c)
{
	/* full RMW: the last one frees; everybody's reads before it */
	if (weft__faa32(&c->refs, (uint32_t)-1) == 1)
		free(c);
}

static void call_finish(struct call *c, int err, void *value)
{
	c->err = err;
	c->value = value;
	/* release (full RMW): err and value before DONE; pairs with the
	 * waiters' acquire loads. Returns WAITERS if anyone may sleep. */
	uint32_t old = weft__fas32(&c->state, C_DONE);
	if (old & C_WAITERS)
		weft__unpark_word(&c->state);
	call_put(c);
}

/* Wait for DONE: a bounded spin, then park (a task parks, a thread sleeps
 * on the futex). Then err/value are readable. */
static void call_wait(struct call *c)
{
	weft__spin_t sp;
	if (weft__spin_start(&sp)) {
		do {
			/* acquire: pairs with call_finish's exchange */
			if (weft__ld32_acq(&c->state) == C_DONE) {
				weft__spin_end(&sp);
				return;
			}
		} while (weft__spin_again(&sp));
	}
	for (;;) {
		/* acquire: pairs with call_finish's exchange */
		uint32_t s = weft__ld32_acq(&c->state);
		if (s == C_DONE)
			return;
		if (!(s & C_WAITERS)) {
			uint32_t e = s;
			/* full RMW: WAITERS before we sleep; the finisher's
			 * exchange returns it and then wakes us */
			if (!weft__cas32(&c->state, &e, s | C_WAITERS))
				continue;
			s |= C_WAITERS;
		}
		weft__park_word(&c->state, s, WEFT_FOREVER);
	}
}

/* lock held (the one guarding the list c is in): join c, the call in
 * flight for the caller's key, drop the lock and wait for it; *value its
 * value, *shared (if not NULL) 1. Returns its result, or -EDEADLK (lock
 * dropped, nothing joined, *value NULL) when the caller is the one
 * computing it. */
static int call_join(struct call *c, weft__mutex_t *lock, void **value, int *shared)
{
	if (c->owner == self_id()) {
		weft__mutex_unlock(lock);
		*value = NULL;
		return -EDEADLK;
	}
	c->nwait++;
	/* full RMW: our reference before the lock is dropped */
	weft__faa32(&c->refs, 1);
	weft__mutex_unlock(lock);
	call_wait(c);
	int err = c->err;
	*value = c->value;
	if (shared)
		*shared = 1;
	call_put(c);
	return err;
}

/* ---- public: map --------------------------------------------------------- */

static inline bool bad_key(const void *key, size_t klen)
{
	return (!key && klen) || klen > WEFT_MAP_MAX_KEY;
}

int weft_map_create(weft_map_t **out, const weft_map_opts_t *opts)
{
	if (!out)
		return -EINVAL;
	weft_map_opts_t o = { 0 };
	if (opts)
		o = *opts;
	weft_map_t *m = NULL;
	if (weft__sys_posix_memalign((void **)&m, WEFT__PAD, sizeof *m) != 0)
		return -ENOMEM;
	memset(m, 0, sizeof *m);
	m->value_free = o.value_free;
	m->user = o.user;
	m->seed = mum((uint64_t)(uintptr_t)m ^ K2, (uint64_t)weft_now() ^ K1);
	/* 64 shards, up to 1024 for hints over 2^20 keys (shards stay near
	 * 16 Ki keys at most before they first grow) */
	uint32_t bits = 6;
	while (bits < 10 && ((size_t)1 << (bits + 14)) < o.capacity_hint)
		bits++;
	m->shard_bits = bits;
	uint64_t per = o.capacity_hint >> bits, cap = MIN_CAP;
	while (cap * 3 / 4 < per + 1)
		cap *= 2;
	m->min_cap = (uint32_t)cap;
	uint32_t nsh = 1u << bits;
	if (weft__sys_posix_memalign((void **)&m->sh, WEFT__PAD, nsh * sizeof(struct shard)) != 0) {
		free(m);
		return -ENOMEM;
	}
	memset(m->sh, 0, nsh * sizeof(struct shard));
	for (uint32_t i = 0; i < nsh; i++) {
		m->sh[i].tab = table_new(cap);
		if (!m->sh[i].tab) {
			while (i--)
				free(m->sh[i].tab);
			free(m->sh);
			free(m);
			return -ENOMEM;
		}
	}
	*out = m;
	return 0;
}

void weft_map_destroy(weft_map_t *m)
{
	if (!m)
		return;
	uint32_t nsh = 1u << m->shard_bits;
	for (uint32_t i = 0; i < nsh; i++) {
		struct shard *sh = &m->sh[i];
		struct table *t = sh->tab;
		for (uint64_t j = 0; j <= t->mask; j++) {
			if (!t->slot[j])
				continue;
			struct node *n = SLOT_NODE(t->slot[j]);
			if (n->value != TOMB && n->value && m->value_free)
				m->value_free(n->value, m->user);
			free(n);
		}
		free(t);
		free_ret(m, sh->rstack);
		while (sh->calls) { /* only if a compute never returned */
			struct call *c = sh->calls;
			sh->calls = c->next;
			call_put(c);
		}
	}
	for (int b = 0; b < LIMBO; b++)
		free_ret(m, m->limbo[b]);
	free(m->sh);
	free(m);
}

int weft_map_load(weft_map_t *m, const void *key, size_t klen, void **value)
{
	if (!m || bad_key(key, klen) || !value)
		return -EINVAL;
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	struct rec *r = my_rec();
	uint32_t p = pin_on(r);
	struct node *n = find(tab_of(sh), h, key, klen);
	void *v = n ? val_of(n) : TOMB;
	unpin_on(r, p);
	if (v == TOMB) {
		*value = NULL;
		return 0;
	}
	*value = v;
	return 1;
}

/* The common write: replace (or insert) key's value, lock-free for a live
 * key. handback: the old value goes to the caller (swap) instead of
 * value_free. Returns 1 replaced (*old), 0 inserted, -ENOMEM. */
static int put(weft_map_t *m, const void *key, size_t klen, void *value, bool handback,
	       void **old)
{
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	struct vret *vr = handback ? NULL : vret_new(m);
	if (!handback && m->value_free && !vr)
		return -ENOMEM;
	bool want = false;
	int rc = -1;
	void *cur = NULL;
	uint32_t p = pin();
	struct node *n = find(tab_of(sh), h, key, klen);
	if (n) {
		cur = val_of(n);
		while (cur != TOMB) {
			/* release (full RMW): the pointee before the value;
			 * pairs with val_of */
			if (weft__casp(&n->value, &cur, value)) {
				rc = 1;
				break;
			}
		}
	}
	if (rc < 0) {
		weft__mutex_lock(&sh->lock);
		rc = put_locked(m, sh, h, key, klen, value, PUT_STORE, &cur, &want);
		weft__mutex_unlock(&sh->lock);
	}
	unpin(p);
	/* a store of the value the key already holds leaves nothing: the
	 * value is still in the map (fuzz_map: store(k, v) twice sent v to
	 * value_free while the map kept it, and again at destroy) */
	if (rc == 1 && !handback && cur != value) {
		want |= retire_value(sh, vr, cur);
		vr = NULL;
	}
	free(vr);
	if (old)
		*old = rc == 1 ? cur : NULL;
	if (want)
		reclaim(m);
	return rc;
}

int weft_map_store(weft_map_t *m, const void *key, size_t klen, void *value)
{
	if (!m || bad_key(key, klen))
		return -EINVAL;
	int rc = put(m, key, klen, value, false, NULL);
	return rc < 0 ? rc : 0;
}

int weft_map_swap(weft_map_t *m, const void *key, size_t klen, void *value, void **previous)
{
	if (!m || bad_key(key, klen) || !previous)
		return -EINVAL;
	return put(m, key, klen, value, true, previous);
}

int weft_map_load_or_store(weft_map_t *m, const void *key, size_t klen, void *value,
			   void **actual)
{
	if (!m || bad_key(key, klen) || !actual)
		return -EINVAL;
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	bool want = false;
	uint32_t p = pin();
	struct node *n = find(tab_of(sh), h, key, klen);
	void *cur = n ? val_of(n) : TOMB;
	int rc = 1;
	if (cur == TOMB) {
		weft__mutex_lock(&sh->lock);
		rc = put_locked(m, sh, h, key, klen, value, PUT_LOAD_OR_STORE, &cur, &want);
		weft__mutex_unlock(&sh->lock);
	}
	unpin(p);
	if (want)
		reclaim(m);
	if (rc < 0)
		return rc;
	*actual = rc == 1 ? cur : NULL;
	return rc;
}

/* Remove key's value if it is old (old == TOMB: whatever it is).
 * handback: the value goes to the caller, else to value_free. 1 | 0 |
 * -ENOMEM. */
static int remove_if(weft_map_t *m, const void *key, size_t klen, void *old, bool handback,
		     void **out)
{
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	struct vret *vr = handback ? NULL : vret_new(m);
	if (!handback && m->value_free && !vr)
		return -ENOMEM;
	int rc = 0;
	void *cur = NULL;
	uint32_t p = pin();
	struct node *n = find(tab_of(sh), h, key, klen);
	if (n) {
		cur = val_of(n);
		while (cur != TOMB && (old == TOMB || cur == old)) {
			/* full RMW: the delete's linearization point; readers
			 * that load TOMB after it see the key absent */
			if (weft__casp(&n->value, &cur, TOMB)) {
				weft__faa64(&sh->live, (uint64_t)-1);
				rc = 1;
				break;
			}
		}
	}
	unpin(p);
	bool want = false;
	if (rc && !handback) {
		want = retire_value(sh, vr, cur);
		vr = NULL;
	}
	free(vr);
	if (out)
		*out = rc ? cur : NULL;
	if (want)
		reclaim(m);
	return rc;
}

int weft_map_load_and_delete(weft_map_t *m, const void *key, size_t klen, void **value)
{
	if (!m || bad_key(key, klen) || !value)
		return -EINVAL;
	return remove_if(m, key, klen, TOMB, true, value);
}

int weft_map_delete(weft_map_t *m, const void *key, size_t klen)
{
	if (!m || bad_key(key, klen))
		return -EINVAL;
	return remove_if(m, key, klen, TOMB, false, NULL);
}

int weft_map_compare_and_delete(weft_map_t *m, const void *key, size_t klen, void *old)
{
	if (!m || bad_key(key, klen))
		return -EINVAL;
	if (old == TOMB)
		return 0;
	return remove_if(m, key, klen, old, false, NULL);
}

int weft_map_compare_and_swap(weft_map_t *m, const void *key, size_t klen, void *old, void *value)
{
	if (!m || bad_key(key, klen))
		return -EINVAL;
	if (old == TOMB || value == TOMB)
		return 0;
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	struct vret *vr = vret_new(m);
	if (m->value_free && !vr)
		return -ENOMEM;
	int rc = 0;
	uint32_t p = pin();
	struct node *n = find(tab_of(sh), h, key, klen);
	if (n) {
		void *cur = val_of(n);
		while (cur == old) {
			/* release (full RMW): the pointee before the value */
			if (weft__casp(&n->value, &cur, value)) {
				rc = 1;
				break;
			}
		}
	}
	unpin(p);
	bool want = false;
	if (rc && old != value) { /* old == value: nothing left, as in put */
		want = retire_value(sh, vr, old);
		vr = NULL;
	}
	free(vr);
	if (want)
		reclaim(m);
	return rc;
}

int weft_map_range(weft_map_t *m, int (*fn)(const void *key, size_t klen, void *value, void *user),
		   void *user)
{
	if (!m || !fn)
		return -EINVAL;
	uint32_t nsh = 1u << m->shard_bits;
	int rc = 0;
	uint32_t p = pin();
	for (uint32_t i = 0; i < nsh && !rc; i++) {
		struct table *t = tab_of(&m->sh[i]);
		for (uint64_t j = 0; j <= t->mask && !rc; j++) {
			/* acquire: the node before the slot */
			uint64_t s = weft__ld64_acq(&t->slot[j]);
			if (!s)
				continue;
			struct node *n = SLOT_NODE(s);
			void *v = val_of(n);
			if (v != TOMB)
				rc = fn(n->key, node_klen(n), v, user);
		}
	}
	/* fn may have parked a task: unpin on whatever carrier runs us now */
	unpin_on(my_rec_fresh(), p);
	return rc;
}

size_t weft_map_len(weft_map_t *m)
{
	if (!m)
		return 0;
	int64_t n = 0;
	uint32_t nsh = 1u << m->shard_bits;
	for (uint32_t i = 0; i < nsh; i++)
		/* relaxed: a count, not a synchronisation */
		n += (int64_t)weft__ld64_rlx(&m->sh[i].live);
	return n < 0 ? 0 : (size_t)n;
}

int weft_map_clear(weft_map_t *m)
{
	if (!m)
		return -EINVAL;
	uint32_t nsh = 1u << m->shard_bits;
	bool want = false;
	for (uint32_t i = 0; i < nsh; i++) {
		struct shard *sh = &m->sh[i];
		struct table *nt;
		/* ENOMEM for a new empty table: wait for memory rather than
		 * leave half a clear (clear returns 0 by contract) */
		while (!(nt = table_new(m->min_cap)))
			weft_yield();
		weft__mutex_lock(&sh->lock);
		struct table *t = sh->tab;
		struct ret *vals = NULL;
		for (uint64_t j = 0; j <= t->mask; j++) {
			uint64_t s = t->slot[j];
			if (!s)
				continue;
			struct node *n = SLOT_NODE(s);
			void *cur = weft__ldp_rlx(&n->value);
			while (cur != TOMB) {
				/* full RMW: as a delete */
				if (weft__casp(&n->value, &cur, TOMB)) {
					weft__faa64(&sh->live, (uint64_t)-1);
					if (m->value_free && cur) {
						struct vret *v;
						while (!(v = weft__sys_malloc(sizeof *v)))
							weft_yield();
						v->r.kind = R_VALUE;
						v->value = cur;
						v->r.next = vals;
						vals = &v->r;
					}
					break;
				}
			}
		}
		/* release (full RMW): the empty table before the pointer */
		weft__fasp((void **)&sh->tab, nt);
		sh->used = 0;
		/* the nodes first, the table last: once retired, another
		 * thread's reclaim may free it (we hold the lock, not a pin),
		 * and the loop below still reads its slots (ASan, stress_map) */
		for (uint64_t j = 0; j <= t->mask; j++)
			if (t->slot[j])
				want |= retire(sh, &SLOT_NODE(t->slot[j])->r);
		want |= retire(sh, &t->r);
		while (vals) {
			struct ret *next = vals->next;
			want |= retire(sh, vals);
			vals = next;
		}
		weft__mutex_unlock(&sh->lock);
	}
	(void)want;
	reclaim(m);
	return 0;
}

int weft_map_get_or_compute(weft_map_t *m, const void *key, size_t klen,
			    int (*compute)(const void *key, size_t klen, void **value, void *user),
			    void *user, void **value)
{
	if (!m || bad_key(key, klen) || !compute || !value)
		return -EINVAL;
	if (weft_map_load(m, key, klen, value) == 1)
		return 1;
	uint64_t h = hash_bytes(key, klen, m->seed);
	struct shard *sh = shard_of(m, h);
	bool want = false;

	weft__mutex_lock(&sh->lock);
	/* under the lock: no rebuild or clear can free sh->tab's nodes */
	struct node *n = find(sh->tab, h, key, klen);
	void *v = n ? val_of(n) : TOMB;
	if (v != TOMB) {
		weft__mutex_unlock(&sh->lock);
		*value = v;
		return 1;
	}
	struct call **pp = call_find(&sh->calls, h, key, klen);
	if (pp) {
		int err = call_join(*pp, &sh->lock, value, NULL);
		if (err)
			*value = NULL;
		return err ? err : 1;
	}
	struct call *c = call_new(h, key, klen);
	if (!c) {
		weft__mutex_unlock(&sh->lock);
		*value = NULL;
		return -ENOMEM;
	}
	c->next = sh->calls;
	sh->calls = c;
	weft__mutex_unlock(&sh->lock);

	void *cv = NULL;
	int err = compute(key, klen, &cv, user);
	int rc = 0;
	void *res = NULL, *cur = NULL;

	weft__mutex_lock(&sh->lock);
	pp = call_find(&sh->calls, h, key, klen);
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	if (!err) {
		rc = put_locked(m, sh, h, key, klen, cv, PUT_LOAD_OR_STORE, &cur, &want);
		/* rc < 0 (no memory for its node): nothing stands */
		res = rc == 1 ? cur : rc == 0 ? cv : NULL;
	}
	weft__mutex_unlock(&sh->lock);
	/* the loser (or a value that could not be stored) is freed, unless
	 * it is the very value that stands */
	if (!err && rc != 0 && cv && cv != res && m->value_free)
		m->value_free(cv, m->user); /* never visible to anyone */
	if (err)
		rc = err;
	call_finish(c, rc < 0 || err ? rc : 0, rc < 0 || err ? NULL : res);
	if (want)
		reclaim(m);
	*value = rc < 0 || err ? NULL : res;
	return rc;
}

/* ---- sections ---------------------------------------------------------------- */

/* A thread's sections: depth and the parity pinned by the outermost. */
static _Thread_local struct {
	uint32_t depth, p;
} tl_sect;

/* A task's sections live in a table keyed by the task: it may end them on
 * another carrier. */
struct tsect {
	struct tsect *next;
	weft__task_t *task;
	uint32_t depth, p;
};
#define TSECT_BUCKETS 64
static struct {
	WEFT__ALIGNED weft__mutex_t lock;
	struct tsect *head;
} tsect_tab[TSECT_BUCKETS];

static inline uint32_t tsect_bucket(weft__task_t *t)
{
	return (uint32_t)(((uintptr_t)t >> 6) * 0x9E3779B97F4A7C15ULL >> 58);
}

void weft_map_read_begin(weft_map_t *m)
{
	if (!m)
		return;
	weft__task_t *t = weft__task_self();
	if (!t) {
		if (tl_sect.depth++ == 0)
			tl_sect.p = pin();
		return;
	}
	uint32_t b = tsect_bucket(t);
	weft__mutex_lock(&tsect_tab[b].lock);
	struct tsect *s;
	for (s = tsect_tab[b].head; s && s->task != t; s = s->next)
		;
	if (!s) {
		while (!(s = weft__sys_malloc(sizeof *s)))
			weft_yield();
		s->task = t;
		s->depth = 0;
		s->next = tsect_tab[b].head;
		tsect_tab[b].head = s;
	}
	if (s->depth++ == 0)
		s->p = pin();
	weft__mutex_unlock(&tsect_tab[b].lock);
}

void weft_map_read_end(weft_map_t *m)
{
	if (!m)
		return;
	weft__task_t *t = weft__task_self();
	if (!t) {
		if (tl_sect.depth && --tl_sect.depth == 0)
			unpin(tl_sect.p);
		return;
	}
	uint32_t b = tsect_bucket(t);
	weft__mutex_lock(&tsect_tab[b].lock);
	struct tsect **pp, *s = NULL;
	for (pp = &tsect_tab[b].head; *pp && (*pp)->task != t; pp = &(*pp)->next)
		;
	s = *pp;
	if (s && --s->depth == 0) {
		unpin(s->p);
		*pp = s->next;
	} else {
		s = NULL;
	}
	weft__mutex_unlock(&tsect_tab[b].lock);
	free(s);
}

/* ---- public: singleflight ------------------------------------------------------ */

#define FLIGHT_BUCKETS 64

struct weft_flight {
	weft__mutex_t lock;
	uint64_t seed;
	struct call *b[FLIGHT_BUCKETS];
};

int weft_flight_create(weft_flight_t **out)
{
	if (!out)
		return -EINVAL;
	weft_flight_t *f = weft__sys_calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->seed = mum((uint64_t)(uintptr_t)f ^ K0, (uint64_t)weft_now() ^ K2);
	*out = f;
	return 0;
}

void weft_flight_destroy(weft_flight_t *f)
{
	if (!f)
		return;
	for (int i = 0; i < FLIGHT_BUCKETS; i++)
		while (f->b[i]) {
			struct call *c = f->b[i];
			f->b[i] = c->next;
			call_put(c);
		}
	free(f);
}

int weft_flight_do(weft_flight_t *f, const void *key, size_t klen,
		   int (*fn)(const void *key, size_t klen, void **value, void *user), void *user,
		   void **value, int *shared)
{
	if (!f || bad_key(key, klen) || !fn || !value)
		return -EINVAL;
	uint64_t h = hash_bytes(key, klen, f->seed);
	struct call **head = &f->b[h % FLIGHT_BUCKETS];
	weft__mutex_lock(&f->lock);
	struct call **pp = call_find(head, h, key, klen);
	if (pp)
		return call_join(*pp, &f->lock, value, shared);
	struct call *c = call_new(h, key, klen);
	if (!c) {
		weft__mutex_unlock(&f->lock);
		*value = NULL;
		return -ENOMEM;
	}
	c->next = *head;
	*head = c;
	weft__mutex_unlock(&f->lock);

	void *v = NULL;
	int err = fn(key, klen, &v, user);
	if (err)
		v = NULL;

	weft__mutex_lock(&f->lock);
	for (pp = head; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp) /* not forgotten meanwhile */
		*pp = c->next;
	uint32_t nwait = c->nwait;
	weft__mutex_unlock(&f->lock);
	if (shared)
		*shared = nwait > 0;
	*value = v;
	call_finish(c, err, v);
	return err;
}

int weft_flight_forget(weft_flight_t *f, const void *key, size_t klen)
{
	if (!f || bad_key(key, klen))
		return -EINVAL;
	uint64_t h = hash_bytes(key, klen, f->seed);
	weft__mutex_lock(&f->lock);
	struct call **pp = call_find(&f->b[h % FLIGHT_BUCKETS], h, key, klen);
	if (pp)
		*pp = (*pp)->next;
	weft__mutex_unlock(&f->lock);
	return pp != NULL;
}
