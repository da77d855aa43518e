/* tests/fuzz/chan_model.h: a sequential model of one weft channel, under
 * any policy and capacity, shared by fuzz_chan.c and fuzz_select.c.
 *
 * Elements are numbered (seq) and their bytes are fz_fill(seq), so the
 * model keeps numbers and compares bytes. The queue is FIFO; under SPILL
 * its front `rlen` elements are in the memory ring and the rest on the
 * spill (a send goes to the ring only while the spill is empty and the
 * ring has room; a receive takes the ring first), which decides the
 * `spilled` count and the spill_max_bytes limit exactly.
 *
 * DROP_OLDEST evictions reach on_drop, which copies the bytes aside; the
 * harness compares them with the model's evictions after each call. */
#ifndef WEFT_FUZZ_CHAN_MODEL_H
#define WEFT_FUZZ_CHAN_MODEL_H

#include <errno.h>
#include <stdlib.h>

#include <weft/chan.h>
#include <weft/ctx.h>

#include "fuzz.h"

#define MC_MAX_ELEM 300 /* largest element size the harnesses use */
#define MC_MAX_EVICT 1024 /* evictions kept between two checks */

struct mch {
	weft_chan_t *ch;
	int policy;
	size_t cap, esize;
	uint64_t max_count; /* SPILL: elements on the spill at most; 0 none */
	bool closed;
	/* the queue of seqs: q[head .. head + n) */
	uint64_t *q;
	size_t head, n, qcap;
	size_t rlen; /* SPILL: how many of the front are in the ring */
	uint64_t sent, received, dropped, spilled;
	/* evictions: the model's (seqs) and on_drop's (bytes) */
	uint64_t ev_model[MC_MAX_EVICT];
	size_t nev_model;
	unsigned char *ev_got; /* MC_MAX_EVICT x esize */
	size_t nev_got;
	uint64_t ev_calls;
};

static void mc_on_drop(void *elem, void *user)
{
	struct mch *m = user;
	m->ev_calls++;
	CHECK(m->nev_got < MC_MAX_EVICT);
	if (m->esize)
		memcpy(m->ev_got + m->nev_got * m->esize, elem, m->esize);
	m->nev_got++;
}

static const size_t mc_caps[] = {0, 1, 2, 3, 4, 5, 7, 8, 16, 33, 64};
static const size_t mc_esizes[] = {0, 1, 2, 3, 4, 7, 8, 9, 16, 24, 100, 257, MC_MAX_ELEM};

/* Create m's channel from the input: policy, capacity, element size and
 * the spill's limits. Invalid combinations are tried first and must be
 * -EINVAL, then made valid. */
static void mc_create(struct fz *f, struct mch *m)
{
	memset(m, 0, sizeof *m);
	m->policy = (int)fz_below(f, 4);
	m->cap = FZ_PICK(f, mc_caps);
	m->esize = FZ_PICK(f, mc_esizes);
	weft_chan_opts_t o = {.elem_size = m->esize, .capacity = m->cap, .overflow = m->policy,
			      .on_drop = mc_on_drop, .user = m};
	if (m->policy == WEFT_OVERFLOW_SPILL) {
		uint8_t k = fz_u8(f);
		/* a small limit (in elements, or an odd byte count), or none */
		o.spill_max_bytes = k < 96 ? 0 : k < 192 ? (uint64_t)(k % 8 + 1) * (m->esize ? m->esize : 1)
						: (uint64_t)(k % 13);
		uint8_t b = fz_u8(f);
		/* blocks of 1-4 elements (disk after a few), odd sizes, or the
		 * 256 KiB default */
		o.spill_block_bytes = b < 160 ? (size_t)(b % 4 + 1) * (m->esize ? m->esize : 1)
				      : b < 224 ? (size_t)(b % 50) : 0;
	}
	weft_chan_t *ch = (weft_chan_t *)&m; /* must stay untouched on failure */
	int rc;
	if (m->policy != WEFT_OVERFLOW_BLOCK && (m->cap == 0 ||
	    (m->policy == WEFT_OVERFLOW_SPILL && m->esize == 0))) {
		rc = weft_chan_create_opts(&ch, &o);
		CHECK_EQ(rc, -EINVAL);
		CHECK(ch == (weft_chan_t *)&m);
		if (m->cap == 0)
			o.capacity = m->cap = 1;
		if (m->policy == WEFT_OVERFLOW_SPILL && m->esize == 0)
			o.elem_size = m->esize = 1;
	}
	if (m->policy == WEFT_OVERFLOW_SPILL && o.spill_max_bytes) {
		m->max_count = o.spill_max_bytes / m->esize;
		if (m->max_count == 0)
			m->max_count = 1;
	}
	if (m->policy == WEFT_OVERFLOW_BLOCK && fz_u8(f) & 1)
		rc = weft_chan_create(&ch, m->esize, m->cap);
	else
		rc = weft_chan_create_opts(&ch, &o);
	CHECK_EQ(rc, 0);
	m->ch = ch;
	m->ev_got = malloc(MC_MAX_EVICT * (m->esize ? m->esize : 1));
	CHECK(m->ev_got != NULL);
}

static void mc_destroy(struct mch *m)
{
	weft_chan_destroy(m->ch);
	free(m->q);
	free(m->ev_got);
	m->ch = NULL;
	m->q = NULL;
	m->ev_got = NULL;
}

static void mc_push(struct mch *m, uint64_t seq)
{
	if (m->head + m->n == m->qcap) {
		if (m->head > m->qcap / 2) {
			memmove(m->q, m->q + m->head, m->n * sizeof *m->q);
			m->head = 0;
		} else {
			m->qcap = m->qcap ? 2 * m->qcap : 64;
			m->q = realloc(m->q, m->qcap * sizeof *m->q);
			CHECK(m->q != NULL);
		}
	}
	m->q[m->head + m->n++] = seq;
}

static uint64_t mc_pop(struct mch *m)
{
	CHECK(m->n > 0);
	m->n--;
	return m->q[m->head++];
}

/* Elements in memory (the ring) and, under SPILL, on the spill. */
static inline size_t mc_ring_len(const struct mch *m)
{
	return m->policy == WEFT_OVERFLOW_SPILL ? m->rlen : m->n;
}

static inline size_t mc_spill_len(const struct mch *m)
{
	return m->policy == WEFT_OVERFLOW_SPILL ? m->n - m->rlen : 0;
}

/* Would a send complete without waiting (0 or an error)? */
static bool mc_send_ready(const struct mch *m)
{
	if (m->closed)
		return true;
	switch (m->policy) {
	case WEFT_OVERFLOW_BLOCK:
		return m->cap && m->n < m->cap;
	case WEFT_OVERFLOW_SPILL:
		return !m->max_count || mc_spill_len(m) < m->max_count;
	default:
		return true; /* DROP_*: never waits for room */
	}
}

/* Would a receive complete without waiting? */
static bool mc_recv_ready(const struct mch *m)
{
	return m->closed || m->n > 0;
}

/* A send of seq that does not wait (the caller checked mc_send_ready, or
 * it is a try): the expected result, the model updated. -EAGAIN where a
 * blocking send would wait. */
static int mc_send(struct mch *m, uint64_t seq)
{
	if (m->closed)
		return -EPIPE;
	switch (m->policy) {
	case WEFT_OVERFLOW_BLOCK:
		if (!m->cap || m->n == m->cap)
			return -EAGAIN;
		break;
	case WEFT_OVERFLOW_DROP_NEWEST:
		if (m->n == m->cap) {
			m->dropped++;
			return -ENOBUFS;
		}
		break;
	case WEFT_OVERFLOW_DROP_OLDEST:
		if (m->n == m->cap) {
			CHECK(m->nev_model < MC_MAX_EVICT);
			m->ev_model[m->nev_model++] = mc_pop(m);
			m->dropped++;
		}
		break;
	case WEFT_OVERFLOW_SPILL:
		if (mc_spill_len(m) == 0 && m->rlen < m->cap) {
			m->rlen++;
		} else if (m->max_count && mc_spill_len(m) >= m->max_count) {
			return -EAGAIN;
		} else {
			m->spilled++;
		}
		break;
	}
	mc_push(m, seq);
	m->sent++;
	return 0;
}

/* A receive that does not wait: expected result (0 with *seq, -EPIPE,
 * -EAGAIN where a blocking receive would wait). */
static int mc_recv(struct mch *m, uint64_t *seq)
{
	if (m->n == 0)
		return m->closed ? -EPIPE : -EAGAIN;
	if (m->policy == WEFT_OVERFLOW_SPILL && m->rlen > 0)
		m->rlen--;
	*seq = mc_pop(m);
	m->received++;
	return 0;
}

/* received bytes against the model's seq */
static void mc_check_elem(const struct mch *m, const void *got, uint64_t seq)
{
	unsigned char want[MC_MAX_ELEM];
	fz_fill(want, m->esize, seq);
	if (memcmp(want, got, m->esize) != 0) {
		fprintf(stderr, "element mismatch: want seq %llu (esize %zu)\n",
			(unsigned long long)seq, m->esize);
		CHECK(!"element bytes");
	}
}

/* Everything observable without changing the channel: len, cap,
 * elem_size, closed, stats, and the evictions on_drop saw. */
static void mc_check(struct mch *m)
{
	weft_chan_t *ch = m->ch;
	size_t len = m->cap ? m->n : 0;
	CHECK_EQ(weft_chan_len(ch), len);
	CHECK_EQ(weft_chan_cap(ch), m->cap);
	CHECK_EQ(weft_chan_elem_size(ch), m->esize);
	CHECK_EQ(!!weft_chan_is_closed(ch), m->closed);
	weft_chan_stats_t s;
	memset(&s, 0xA5, sizeof s);
	CHECK_EQ(weft_chan_stats(ch, &s), 0);
	CHECK_EQ(s.len, len);
	CHECK_EQ(s.sent, m->cap ? m->sent : 0);
	CHECK_EQ(s.received, m->cap ? m->received : 0);
	CHECK_EQ(s.dropped, m->dropped);
	CHECK_EQ(s.spilled, m->spilled);
	CHECK_EQ(s.spill_bytes, mc_spill_len(m) * m->esize);
	CHECK_EQ(s.overflow, m->policy);
	if (m->policy == WEFT_OVERFLOW_SPILL) {
		CHECK(s.spill_file_read <= s.spill_file_written);
	} else {
		CHECK_EQ(s.spill_file_written, 0);
		CHECK_EQ(s.spill_file_read, 0);
	}
	/* evictions: exactly the model's, in order, bytes and all */
	CHECK_EQ(m->nev_got, m->nev_model);
	for (size_t i = 0; i < m->nev_model; i++)
		mc_check_elem(m, m->ev_got + i * m->esize, m->ev_model[i]);
	m->nev_got = m->nev_model = 0;
}

#endif
