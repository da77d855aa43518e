/* tests/fuzz/fuzz_map.c: every call of weft/map.h against a model
 * dictionary, and value_free counted exactly once per value that left.
 *
 * Keys: 32 fixed ones (the empty key, lengths 1, 2, 7, 8 (the one-load
 * compare), 9, 16, 100), keys taken raw from the input (0-32 bytes), and
 * bulk keys (8 and 12 bytes) stored and deleted a few hundred at a time so
 * shards fill, rebuild and drop dead nodes. Values are tokens: addresses
 * in a static array, each stored at most once (or NULL, which the map
 * keeps and never passes to value_free). Every token has a state:
 *   IN      in the map, under one key
 *   LEFT    left the map (replaced by store, removed by delete,
 *           compare_and_*, clear, the loser of get_or_compute, at
 *           destroy): value_free owes it exactly one call
 *   FREED   value_free called
 *   BACK    handed back (load_and_delete, swap): never freed
 *   CALLER  offered but not stored (load_or_store found one, a failed
 *           compare_and_swap): never freed
 * value_free may only see a LEFT token, once. A token that left inside a
 * read_begin/read_end section must not be freed before the outermost
 * read_end. After destroy every LEFT token must be FREED.
 *
 * Calls: load, store, load_or_store, load_and_delete, delete, swap,
 * compare_and_swap, compare_and_delete (with the right old value, another
 * one, NULL), store and compare_and_swap of the value already there (it
 * does not leave the map), range (stopping early; fn deleting or
 * replacing the key it sees, inserting, clearing: each key seen at most
 * once, every key present throughout seen, each value the model's at that
 * moment), len, clear, get_or_compute (found; computed; failed; compute
 * calling the map: its own key is absent, get_or_compute of it is
 * -EDEADLK, a store of it makes the computed value the loser), sections,
 * singleflight do/forget, bad arguments (-EINVAL), destroy and create with
 * or without value_free and with capacity hints. */
#include <errno.h>
#include <stdlib.h>

#include <weft/map.h>

#include "fuzz.h"

#define MAXTOK 50000
#define MAXK 100
#define NFIXED 32
#define BULK_KEYS 3000

enum { T_FRESH, T_IN, T_LEFT, T_FREED, T_BACK, T_CALLER };

static char tokbuf[MAXTOK];
static uint8_t tok_state[MAXTOK];
static bool tok_guarded[MAXTOK]; /* left inside a section still open */
static int ntok;

/* ---- the model dictionary ---- */

struct ment {
	struct ment *next;
	size_t len;
	bool present;
	bool seen; /* range: visits */
	int tok;   /* -1: the value NULL */
	unsigned char key[MAXK];
};

#define MBUCKETS 4096
static struct ment *mtab[MBUCKETS];
static size_t mcount;

static weft_map_t *map;
static bool with_free;
static int free_user;
static int depth; /* sections open */
static struct fz *g_f;
static weft_flight_t *flight;

static uint32_t khash(const void *k, size_t n)
{
	const unsigned char *p = k;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h ^ (uint32_t)n;
}

static struct ment *mfind(const void *k, size_t n, bool make)
{
	struct ment **pp = &mtab[khash(k, n) % MBUCKETS];
	for (struct ment *e = *pp; e; e = e->next)
		if (e->len == n && (!n || memcmp(e->key, k, n) == 0))
			return e;
	if (!make)
		return NULL;
	struct ment *e = calloc(1, sizeof *e);
	CHECK(e != NULL);
	e->len = n;
	if (n)
		memcpy(e->key, k, n);
	e->next = *pp;
	*pp = e;
	return e;
}

static void model_reset(void)
{
	for (int i = 0; i < MBUCKETS; i++) {
		while (mtab[i]) {
			struct ment *e = mtab[i];
			mtab[i] = e->next;
			free(e);
		}
	}
	mcount = 0;
}

static void *tokp(int t)
{
	return t < 0 ? NULL : &tokbuf[t];
}

static int tok_of(const void *p)
{
	if (!p)
		return -1;
	CHECK((const char *)p >= tokbuf && (const char *)p < tokbuf + MAXTOK);
	return (int)((const char *)p - tokbuf);
}

/* a new token, or (rarely) NULL */
static int fresh(void)
{
	if ((fz_u8(g_f) & 15) == 0 || ntok == MAXTOK)
		return -1;
	tok_state[ntok] = T_FRESH;
	tok_guarded[ntok] = false;
	return ntok++;
}

static void tok_set(int t, int st)
{
	if (t < 0)
		return;
	tok_state[t] = (uint8_t)st;
	if (st == T_LEFT && depth > 0)
		tok_guarded[t] = true;
}

/* a value left the map: value_free owes it a call (if there is one) */
static void leaves(int t)
{
	tok_set(t, with_free ? T_LEFT : T_BACK);
}

static void value_free(void *value, void *user)
{
	CHECK(user == &free_user);
	CHECK(with_free);
	int t = tok_of(value);
	CHECK(t >= 0);
	if (tok_state[t] != T_LEFT) {
		fprintf(stderr, "value_free(token %d) in state %d\n", t, tok_state[t]);
		CHECK(!"value_free of a value that did not leave, or twice");
	}
	if (tok_guarded[t] && depth > 0)
		CHECK(!"value_free inside the section the value left in");
	tok_state[t] = T_FREED;
}

/* ---- keys ---- */

struct key {
	unsigned char b[MAXK];
	size_t len;
};

static const size_t fixed_lens[] = {1, 2, 7, 8, 9, 16, 100};

static void key_fixed(struct key *k, unsigned id)
{
	id %= NFIXED;
	if (id == 0) {
		k->len = 0;
		return;
	}
	k->len = fixed_lens[id % 7];
	fz_fill(k->b, k->len, id + 1000);
	k->b[0] = (unsigned char)id; /* < 32: unique among fixed keys */
}

static void key_bulk(struct key *k, unsigned id)
{
	k->len = id & 1 ? 12 : 8;
	memset(k->b, 0xB5, k->len);
	k->b[0] = 0xFF; /* apart from fixed keys (first byte < 32) */
	memcpy(k->b + 1, &id, sizeof id);
}

static void key_from(struct key *k)
{
	uint8_t c = fz_u8(g_f);
	if (c < 200) {
		key_fixed(k, c);
	} else if (c < 240) {
		k->len = fz_below(g_f, 33);
		for (size_t i = 0; i < k->len; i++)
			k->b[i] = fz_u8(g_f);
	} else {
		key_bulk(k, fz_below(g_f, BULK_KEYS));
	}
}

/* ---- checks ---- */

static struct ment *present(const struct key *k)
{
	struct ment *e = mfind(k->b, k->len, false);
	return e && e->present ? e : NULL;
}

static void put_model(const struct key *k, int t)
{
	struct ment *e = mfind(k->b, k->len, true);
	if (!e->present)
		mcount++;
	e->present = true;
	e->tok = t;
	tok_set(t, T_IN);
}

static void remove_model(struct ment *e)
{
	e->present = false;
	mcount--;
}

static void model_clear(void)
{
	for (int i = 0; i < MBUCKETS; i++)
		for (struct ment *m = mtab[i]; m; m = m->next)
			if (m->present) {
				leaves(m->tok);
				m->present = false;
			}
	mcount = 0;
}

static void check_len(void)
{
	CHECK_EQ(weft_map_len(map), mcount);
}

/* ---- range ---- */

static int range_stop_after, range_visits;
static bool range_mutate;

static int range_fn(const void *key, size_t klen, void *value, void *user)
{
	CHECK(user == &range_visits);
	struct ment *e = mfind(key, klen, false);
	CHECK(e != NULL && e->present);
	CHECK(!e->seen);
	e->seen = true;
	CHECK(tok_of(value) == e->tok);
	range_visits++;
	if (range_mutate) {
		uint8_t c = fz_u8(g_f);
		struct key k = {.len = klen};
		memcpy(k.b, key, klen);
		/* the model first: a value may be freed inside the call
		 * that removes it (it reclaims) */
		if (c % 5 == 0) { /* delete what we see */
			leaves(e->tok);
			remove_model(e);
			CHECK_EQ(weft_map_delete(map, key, klen), 1);
		} else if (c % 5 == 1) { /* replace it */
			int t = fresh();
			if (e->tok != t)
				leaves(e->tok);
			put_model(&k, t);
			e->seen = true;
			CHECK_EQ(weft_map_store(map, key, klen, tokp(t)), 0);
		} else if (c % 5 == 2) { /* insert another: seen at most once */
			struct key n;
			key_from(&n);
			int t = fresh();
			struct ment *o = present(&n);
			if (o && o->tok != t)
				leaves(o->tok);
			put_model(&n, t);
			CHECK_EQ(weft_map_store(map, n.b, n.len, tokp(t)), 0);
		} else if (c % 5 == 3 && (c & 0x80)) { /* clear: nothing seen after */
			model_clear();
			CHECK_EQ(weft_map_clear(map), 0);
		}
	}
	if (range_stop_after && range_visits == range_stop_after)
		return 7 + range_visits;
	return 0;
}

static void op_range(void)
{
	uint8_t c = fz_u8(g_f);
	range_mutate = c & 1;
	range_stop_after = (c >> 1) % 4 == 0 ? 1 + (c >> 3) % 8 : 0;
	range_visits = 0;
	size_t before = mcount;
	for (int i = 0; i < MBUCKETS; i++)
		for (struct ment *e = mtab[i]; e; e = e->next)
			e->seen = false;
	/* keys present at the start: those not removed by fn must be seen */
	int rc = weft_map_range(map, range_fn, &range_visits);
	if (range_stop_after && range_visits == range_stop_after) {
		CHECK_EQ(rc, 7 + range_stop_after);
		return;
	}
	CHECK_EQ(rc, 0);
	if (!range_mutate) {
		CHECK_EQ((size_t)range_visits, before);
		for (int i = 0; i < MBUCKETS; i++)
			for (struct ment *e = mtab[i]; e; e = e->next)
				CHECK(!e->present || e->seen);
	}
}

/* ---- get_or_compute ---- */

struct cmp {
	struct key k;
	int calls;
	int tok;
	int err;
	bool stored_meanwhile;
	int meanwhile_tok;
};

static int compute(const void *key, size_t klen, void **value, void *user)
{
	struct cmp *c = user;
	c->calls++;
	CHECK_EQ(c->calls, 1);
	CHECK(klen == c->k.len && (!klen || memcmp(key, c->k.b, klen) == 0));
	/* while compute runs, its key is absent */
	void *v = (void *)1;
	CHECK_EQ(weft_map_load(map, key, klen, &v), 0);
	CHECK(v == NULL);
	check_len();
	uint8_t a = fz_u8(g_f);
	if (a % 4 == 1) { /* the same key again: -EDEADLK, not a wait */
		v = (void *)1;
		CHECK_EQ(weft_map_get_or_compute(map, key, klen, compute, user, &v), -EDEADLK);
		CHECK(v == NULL);
	} else if (a % 4 == 2) { /* another key: fine */
		struct key o;
		key_from(&o);
		if (o.len != klen || memcmp(o.b, key, klen)) {
			int t = fresh();
			struct ment *e = present(&o);
			if (e && e->tok != t)
				leaves(e->tok);
			put_model(&o, t);
			CHECK_EQ(weft_map_store(map, o.b, o.len, tokp(t)), 0);
		}
	} else if (a % 4 == 3 && (a & 4)) { /* our own key stored meanwhile */
		int t = fresh();
		CHECK_EQ(weft_map_store(map, key, klen, tokp(t)), 0);
		put_model(&c->k, t);
		c->stored_meanwhile = true;
		c->meanwhile_tok = t;
	}
	if (a & 0x80) {
		c->err = a & 0x40 ? -EIO : -ENOENT;
		*value = (void *)0x1; /* ignored on failure */
		return c->err;
	}
	c->tok = fresh();
	*value = tokp(c->tok);
	/* our key was stored meanwhile: that value stands, and ours goes
	 * to value_free (at once, inside get_or_compute) */
	if (c->stored_meanwhile && c->tok >= 0) /* never loadable: no section guards it */
		tok_state[c->tok] = with_free ? T_LEFT : T_CALLER;
	return 0;
}

static void op_goc(void)
{
	struct cmp c = {.tok = -1, .meanwhile_tok = -1};
	key_from(&c.k);
	struct ment *e = present(&c.k);
	void *v = (void *)1;
	int rc = weft_map_get_or_compute(map, c.k.b, c.k.len, compute, &c, &v);
	if (e) {
		CHECK_EQ(rc, 1);
		CHECK_EQ(c.calls, 0);
		CHECK_EQ(tok_of(v), e->tok);
		return;
	}
	CHECK_EQ(c.calls, 1);
	if (c.err) {
		CHECK_EQ(rc, c.err);
		CHECK(v == NULL);
		/* a store made by compute stands */
		return;
	}
	if (c.stored_meanwhile) {
		/* that value stands; the computed one went to value_free */
		CHECK_EQ(rc, 1);
		CHECK_EQ(tok_of(v), c.meanwhile_tok);
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(tok_of(v), c.tok);
	put_model(&c.k, c.tok);
}

/* ---- singleflight ---- */

struct fl {
	struct key k;
	int calls;
	int rc;
};

static int flight_fn(const void *key, size_t klen, void **value, void *user)
{
	struct fl *c = user;
	c->calls++;
	uint8_t a = fz_u8(g_f);
	void *v = (void *)1;
	int sh = 5;
	if (a & 1) /* our own key from inside: -EDEADLK */
		CHECK_EQ(weft_flight_do(flight, key, klen, flight_fn, user, &v, &sh), -EDEADLK);
	if (a & 2) /* forget the call in flight: there is one */
		CHECK_EQ(weft_flight_forget(flight, key, klen), 1);
	c->rc = a & 4 ? -(int)(a >> 3) : 0;
	*value = c->rc ? NULL : (void *)&c->calls;
	return c->rc;
}

static void op_flight(void)
{
	struct fl c = {0};
	key_from(&c.k);
	void *v = (void *)1;
	int shared = 9;
	int rc = weft_flight_do(flight, c.k.b, c.k.len, flight_fn, &c, &v, &shared);
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(rc, c.rc);
	CHECK(v == (c.rc ? NULL : (void *)&c.calls));
	CHECK_EQ(shared, 0);
	CHECK_EQ(weft_flight_forget(flight, c.k.b, c.k.len), 0); /* none in flight */
	CHECK_EQ(weft_flight_do(NULL, c.k.b, c.k.len, flight_fn, &c, &v, NULL), -EINVAL);
	CHECK_EQ(weft_flight_do(flight, c.k.b, c.k.len, NULL, &c, &v, NULL), -EINVAL);
	CHECK_EQ(weft_flight_do(flight, c.k.b, c.k.len, flight_fn, &c, NULL, NULL), -EINVAL);
}

/* ---- lifecycle ---- */

static void map_create(void)
{
	static const size_t hints[] = {0, 1, 15, 100, 5000, 70000};
	uint8_t c = fz_u8(g_f);
	with_free = c & 1;
	weft_map_opts_t o = {.value_free = with_free ? value_free : NULL, .user = &free_user,
			     .capacity_hint = hints[(c >> 1) % 6]};
	CHECK_EQ(weft_map_create(&map, (c & 0x80) && !with_free ? NULL : &o), 0);
	model_reset();
}

static void map_destroy(void)
{
	while (depth > 0) {
		weft_map_read_end(map);
		depth--;
	}
	for (int i = 0; i < MBUCKETS; i++)
		for (struct ment *e = mtab[i]; e; e = e->next)
			if (e->present)
				leaves(e->tok);
	for (int t = 0; t < ntok; t++)
		tok_guarded[t] = false;
	weft_map_destroy(map);
	map = NULL;
	/* every value that left went to value_free, once */
	for (int t = 0; t < ntok; t++) {
		if (tok_state[t] == T_LEFT) {
			fprintf(stderr, "token %d left the map and was never freed\n", t);
			CHECK(!"value_free missing");
		}
		if (tok_state[t] == T_IN)
			CHECK(!"token still in a destroyed map");
	}
	model_reset();
}

/* ---- one op ---- */

static void op(void)
{
	uint8_t o = fz_u8(g_f);
	struct key k;
	key_from(&k);
	struct ment *e = present(&k);
	void *v = (void *)1;
	int rc;
	switch (o % 20) {
	case 0:
	case 1:
		rc = weft_map_load(map, k.b, k.len, &v);
		CHECK_EQ(rc, e != NULL);
		CHECK(v == (e ? tokp(e->tok) : NULL));
		break;
	case 2:
	case 3: { /* store: a new value, NULL, or the one already there */
		int t = e && (o & 0x80) ? e->tok : fresh();
		if (e && e->tok != t)
			leaves(e->tok);
		put_model(&k, t);
		CHECK_EQ(weft_map_store(map, k.b, k.len, tokp(t)), 0);
		break;
	}
	case 4: {
		int t = fresh();
		rc = weft_map_load_or_store(map, k.b, k.len, tokp(t), &v);
		CHECK_EQ(rc, e != NULL);
		if (e) {
			CHECK_EQ(tok_of(v), e->tok);
			tok_set(t, T_CALLER);
		} else {
			CHECK(v == NULL);
			put_model(&k, t);
		}
		break;
	}
	case 5:
		rc = weft_map_load_and_delete(map, k.b, k.len, &v);
		CHECK_EQ(rc, e != NULL);
		CHECK(v == (e ? tokp(e->tok) : NULL));
		if (e) {
			tok_set(e->tok, T_BACK);
			remove_model(e);
		}
		break;
	case 6:
		if (e) {
			leaves(e->tok);
			remove_model(e);
		}
		CHECK_EQ(weft_map_delete(map, k.b, k.len), e != NULL);
		break;
	case 7: {
		int t = e && (o & 0x80) ? e->tok : fresh();
		rc = weft_map_swap(map, k.b, k.len, tokp(t), &v);
		CHECK_EQ(rc, e != NULL);
		CHECK(v == (e ? tokp(e->tok) : NULL));
		if (e && e->tok != t)
			tok_set(e->tok, T_BACK);
		put_model(&k, t);
		break;
	}
	case 8:
	case 9: { /* compare_and_swap: old right, wrong, NULL; new fresh or old */
		uint8_t c = fz_u8(g_f);
		int old = e && c % 3 == 0 ? e->tok : c % 3 == 1 ? -1 : fresh();
		int nw = c & 0x80 ? old : fresh();
		bool ok = e && e->tok == old;
		if (ok) {
			if (old != nw)
				leaves(old);
			put_model(&k, nw);
		} else if (nw >= 0 && tok_state[nw] == T_FRESH) {
			tok_set(nw, T_CALLER);
		}
		CHECK_EQ(weft_map_compare_and_swap(map, k.b, k.len, tokp(old), tokp(nw)), ok);
		break;
	}
	case 10: {
		uint8_t c = fz_u8(g_f);
		int old = e && c % 3 == 0 ? e->tok : c % 3 == 1 ? -1 : fresh();
		bool ok = e && e->tok == old;
		if (ok) {
			leaves(old);
			remove_model(e);
		}
		CHECK_EQ(weft_map_compare_and_delete(map, k.b, k.len, tokp(old)), ok);
		break;
	}
	case 11:
		op_range();
		break;
	case 12:
		if ((o & 0xE0) == 0xE0) {
			model_clear();
			CHECK_EQ(weft_map_clear(map), 0);
		}
		break;
	case 13:
		op_goc();
		break;
	case 14: { /* bulk: store (or delete) a run of bulk keys */
		unsigned first = fz_below(g_f, BULK_KEYS);
		unsigned n = fz_u8(g_f) * 3u;
		bool del = o & 0x80;
		for (unsigned i = 0; i < n && first + i < BULK_KEYS; i++) {
			struct key b;
			key_bulk(&b, first + i);
			struct ment *be = present(&b);
			if (del) {
				if (be) {
					leaves(be->tok);
					remove_model(be);
				}
				CHECK_EQ(weft_map_delete(map, b.b, b.len), be != NULL);
			} else {
				if (ntok == MAXTOK)
					break;
				int t = ntok++;
				tok_state[t] = T_FRESH;
				tok_guarded[t] = false;
				if (be)
					leaves(be->tok);
				put_model(&b, t);
				CHECK_EQ(weft_map_store(map, b.b, b.len, tokp(t)), 0);
			}
		}
		break;
	}
	case 15: /* sections */
		if ((o & 0x80) && depth > 0) {
			weft_map_read_end(map);
			if (--depth == 0)
				for (int t = 0; t < ntok; t++)
					tok_guarded[t] = false;
		} else if (depth < 5) {
			weft_map_read_begin(map);
			depth++;
		}
		weft_map_read_begin(NULL); /* nothing, and no section */
		weft_map_read_end(NULL);
		break;
	case 16:
		op_flight();
		break;
	case 17: { /* bad arguments: -EINVAL, nothing changed */
		CHECK_EQ(weft_map_load(NULL, k.b, k.len, &v), -EINVAL);
		CHECK_EQ(weft_map_load(map, NULL, 1, &v), -EINVAL);
		CHECK_EQ(weft_map_load(map, k.b, k.len, NULL), -EINVAL);
		CHECK_EQ(weft_map_store(map, k.b, WEFT_MAP_MAX_KEY + 1, NULL), -EINVAL);
		CHECK_EQ(weft_map_store(map, NULL, 3, NULL), -EINVAL);
		CHECK_EQ(weft_map_load_or_store(map, k.b, k.len, NULL, NULL), -EINVAL);
		CHECK_EQ(weft_map_swap(map, k.b, k.len, NULL, NULL), -EINVAL);
		CHECK_EQ(weft_map_load_and_delete(map, k.b, k.len, NULL), -EINVAL);
		CHECK_EQ(weft_map_delete(map, NULL, (size_t)-1), -EINVAL);
		CHECK_EQ(weft_map_compare_and_swap(NULL, k.b, k.len, NULL, NULL), -EINVAL);
		CHECK_EQ(weft_map_compare_and_delete(map, NULL, 9, NULL), -EINVAL);
		CHECK_EQ(weft_map_range(map, NULL, NULL), -EINVAL);
		CHECK_EQ(weft_map_range(NULL, range_fn, NULL), -EINVAL);
		CHECK_EQ(weft_map_clear(NULL), -EINVAL);
		CHECK_EQ(weft_map_len(NULL), 0);
		CHECK_EQ(weft_map_get_or_compute(map, k.b, k.len, NULL, NULL, &v), -EINVAL);
		CHECK_EQ(weft_map_get_or_compute(map, k.b, k.len, compute, NULL, NULL), -EINVAL);
		CHECK_EQ(weft_map_create(NULL, NULL), -EINVAL);
		weft_map_destroy(NULL);
		break;
	}
	case 18: /* a new map */
		if ((o & 0xC0) == 0xC0) {
			map_destroy();
			map_create();
		}
		break;
	default:
		check_len();
		break;
	}
	check_len();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	g_f = &f;
	ntok = 0;
	depth = 0;
	if (!flight)
		CHECK_EQ(weft_flight_create(&flight), 0);
	map_create();
	while (fz_more(&f))
		op();
	map_destroy();
	return 0;
}
