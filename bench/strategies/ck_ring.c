/* bench/strategies/ck_ring.c: Concurrency Kit's ck_ring, the raw-ring
 * reference, as two strategies: "ck_ring_spsc" (ck_ring_*_spsc: one sender
 * and one receiver) and "ck_ring_mpmc" (ck_ring_*_mpmc). Both spin (PAUSE,
 * then sched_yield, see wait.h) on a full or empty ring: ck_ring has no
 * parking, so they are not CHAN_CAP_BLOCKING, and it has no rendezvous
 * (buffered only) and no select.
 *
 * ck_ring holds pointer-sized values in a power-of-two ring of size - 1
 * usable slots. What the wrapper adds, and what it costs:
 *   - elements of 8 bytes or less on the spsc ring travel inline in the
 *     pointer value; capacity is exact because the one sender checks
 *     ck_ring_size() before it enqueues (only it makes the ring grow).
 *   - otherwise (mpmc, or larger elements) a slab of capacity slots and a
 *     second ring of free slot indices: a send takes a free index (none:
 *     full), copies the element into the slab and enqueues the index; a
 *     receive dequeues an index, copies out and returns the index. Two ring
 *     operations per side, capacity exact, any element size. ck_ring's own
 *     cost per operation is half of what this strategy measures.
 *   - close: ck_ring has none. A state word holds a closed bit and the
 *     count of sends in progress: a send adds 2 (seq_cst), gives up if the
 *     bit is set, and subtracts 2 (release) when done; a receiver that
 *     finds the ring empty, the bit set and no send in progress (acquire)
 *     tries once more and then returns -EPIPE. So a send that returned 0 is
 *     always received, at the price of two atomic adds on a shared word per
 *     send (contended by the senders of the mpmc variant).
 * Not built under ThreadSanitizer: ck_pr is inline assembly TSan cannot see.
 *
 * The mpmc enqueue waits for its turn with a yielding spin (see enq()).
 *
 * Ordering: ck_ring orders the slot contents before p_tail / c_head itself;
 * the slab copy happens before the index is enqueued (ck_ring's store fence
 * before publishing) and after it is dequeued, so the slab needs nothing
 * more. The state word is described above.
 */
#include <ck_ring.h>

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strategy.h"
#include "wait.h"

#define CKR_MAX_CAPACITY (1u << 30)

struct ckr {
	ck_ring_t data; /* padded by ck: consumer and producer on their own lines */
	ck_ring_t free;
	ck_ring_buffer_t *dbuf, *fbuf;
	unsigned char *slab; /* NULL: values travel inline */
	size_t esz, cap;
	bool mpmc;
	/* bit 0: closed; the rest: 2 x sends in progress */
	alignas(64) atomic_ulong state;
};

/* mpmc: ck_ring_enqueue_mpmc reserves a slot, writes it, then waits in
 * ck_pr_stall() (PAUSE, never yielding) until every earlier producer has
 * committed. On 2 cores with 8 producers the earlier one is often
 * preempted, and a pure spin there burns whole time slices (the stress
 * tests took minutes). So the wrapper uses ck's reserve / commit pair and
 * waits for its turn itself with the PAUSE-then-yield of wait.h; ck's
 * commit then finds p_tail ready and publishes (fence, store). */
static bool enq(struct ckr *c, ck_ring_t *r, ck_ring_buffer_t *b, uintptr_t v)
{
	unsigned ticket, steps = 0;
	void **slot;

	if (!c->mpmc)
		return ck_ring_enqueue_spsc(r, b, (void *)v);
	slot = ck_ring_enqueue_reserve_mpmc(r, b, &ticket);
	if (!slot)
		return false;
	*slot = (void *)v;
	while (ck_pr_load_uint(&r->p_tail) != ticket)
		sw_spin(&steps);
	ck_ring_enqueue_commit_mpmc(r, ticket);
	return true;
}

static bool deq(struct ckr *c, ck_ring_t *r, ck_ring_buffer_t *b, uintptr_t *v)
{
	void *p;
	bool ok = c->mpmc ? ck_ring_dequeue_mpmc(r, b, &p) : ck_ring_dequeue_spsc(r, b, &p);

	if (ok)
		*v = (uintptr_t)p;
	return ok;
}

static int create(void **out, size_t elem_size, size_t capacity, bool mpmc)
{
	struct ckr *c;
	size_t size = 2;

	if (!out || capacity == 0)
		return -EINVAL;
	if (capacity > CKR_MAX_CAPACITY || (elem_size && capacity > SIZE_MAX / elem_size))
		return -ENOMEM;
	while (size < capacity + 1) /* ck_ring uses size - 1 slots */
		size *= 2;
	c = aligned_alloc(64, sizeof *c);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	c->esz = elem_size;
	c->cap = capacity;
	c->mpmc = mpmc;
	atomic_init(&c->state, 0);
	ck_ring_init(&c->data, (unsigned)size);
	c->dbuf = aligned_alloc(64, ((size * sizeof *c->dbuf + 63) / 64) * 64);
	if (!c->dbuf)
		goto fail;
	if (mpmc || elem_size > sizeof(uintptr_t)) {
		ck_ring_init(&c->free, (unsigned)size);
		c->fbuf = aligned_alloc(64, ((size * sizeof *c->fbuf + 63) / 64) * 64);
		c->slab = malloc(elem_size ? capacity * elem_size : 1);
		if (!c->fbuf || !c->slab)
			goto fail;
		for (size_t i = 0; i < capacity; i++)
			enq(c, &c->free, c->fbuf, i);
	}
	*out = c;
	return 0;
fail:
	free(c->dbuf);
	free(c->fbuf);
	free(c->slab);
	free(c);
	return -ENOMEM;
}

static int create_spsc(void **out, size_t elem_size, size_t capacity)
{
	return create(out, elem_size, capacity, false);
}

static int create_mpmc(void **out, size_t elem_size, size_t capacity)
{
	return create(out, elem_size, capacity, true);
}

static void destroy(void *ch)
{
	struct ckr *c = ch;

	if (!c)
		return;
	free(c->dbuf);
	free(c->fbuf);
	free(c->slab);
	free(c);
}

/* one attempt: true if sent */
static bool try_put(struct ckr *c, const void *elem)
{
	uintptr_t v = 0;

	if (!c->slab) {
		if (ck_ring_size(&c->data) >= c->cap)
			return false;
		if (c->esz)
			memcpy(&v, elem, c->esz);
		return enq(c, &c->data, c->dbuf, v); /* room: always true */
	}
	if (!deq(c, &c->free, c->fbuf, &v))
		return false;
	if (c->esz)
		memcpy(c->slab + v * c->esz, elem, c->esz);
	enq(c, &c->data, c->dbuf, v); /* at most capacity indices: always room */
	return true;
}

/* one attempt: true if received */
static bool try_take(struct ckr *c, void *elem)
{
	uintptr_t v;

	if (!deq(c, &c->data, c->dbuf, &v))
		return false;
	if (!c->slab) {
		if (c->esz)
			memcpy(elem, &v, c->esz);
		return true;
	}
	if (c->esz)
		memcpy(elem, c->slab + v * c->esz, c->esz);
	enq(c, &c->free, c->fbuf, v);
	return true;
}

static int send_op(void *ch, const void *elem, int mode, int64_t deadline)
{
	struct ckr *c = ch;
	unsigned steps = 0;
	int rc = 0;

	if (!c || sw_bad_elem(elem, c->esz))
		return -EINVAL;
	/* seq_cst: our count before our look at the closed bit; pairs with
	 * the fetch_or in close (one of us sees the other) */
	if (atomic_fetch_add(&c->state, 2) & 1) {
		rc = -EPIPE;
		goto out;
	}
	while (!try_put(c, elem)) {
		if (atomic_load_explicit(&c->state, memory_order_relaxed) & 1)
			rc = -EPIPE;
		else if (mode == SW_TRY)
			rc = -EAGAIN;
		else if ((steps >= 64 || deadline != SW_FOREVER) && sw_passed(deadline))
			rc = -ETIMEDOUT;
		if (rc)
			break;
		sw_spin(&steps);
	}
out:
	/* release: our enqueue before a receiver's look at the count; pairs
	 * with the acquire in recv_op */
	atomic_fetch_sub_explicit(&c->state, 2, memory_order_release);
	return rc;
}

static int recv_op(void *ch, void *elem, int mode, int64_t deadline)
{
	struct ckr *c = ch;
	unsigned steps = 0;

	if (!c || sw_bad_elem(elem, c->esz))
		return -EINVAL;
	while (!try_take(c, elem)) {
		/* acquire: every finished send's enqueue; pairs with the
		 * release in send_op */
		unsigned long s = atomic_load_explicit(&c->state, memory_order_acquire);

		if (s == 1) /* closed, no send in progress: nothing more comes */
			return try_take(c, elem) ? 0 : -EPIPE;
		if (s & 1)
			; /* closed, a send finishing: wait for it whatever the mode */
		else if (mode == SW_TRY)
			return -EAGAIN;
		else if ((steps >= 64 || deadline != SW_FOREVER) && sw_passed(deadline))
			return -ETIMEDOUT;
		sw_spin(&steps);
	}
	return 0;
}

static int s_send(void *ch, const void *elem)
{
	return send_op(ch, elem, SW_UNTIL, SW_FOREVER);
}

static int s_recv(void *ch, void *elem)
{
	return recv_op(ch, elem, SW_UNTIL, SW_FOREVER);
}

static int s_try_send(void *ch, const void *elem)
{
	return send_op(ch, elem, SW_TRY, 0);
}

static int s_try_recv(void *ch, void *elem)
{
	return recv_op(ch, elem, SW_TRY, 0);
}

static int s_send_until(void *ch, const void *elem, int64_t deadline)
{
	return send_op(ch, elem, SW_UNTIL, deadline);
}

static int s_recv_until(void *ch, void *elem, int64_t deadline)
{
	return recv_op(ch, elem, SW_UNTIL, deadline);
}

static int s_close(void *ch)
{
	struct ckr *c = ch;

	if (!c)
		return -EINVAL;
	/* seq_cst: pairs with the fetch_add in send_op */
	return atomic_fetch_or(&c->state, 1) & 1 ? -EPIPE : 0;
}

static size_t s_len(const void *ch)
{
	const struct ckr *c = ch;

	return c ? ck_ring_size(&c->data) : 0;
}

const struct chan_strategy chan_strategy_ck_ring_spsc = {
	.name = "ck_ring_spsc",
	.caps = 0,
	.create = create_spsc,
	.destroy = destroy,
	.send = s_send,
	.recv = s_recv,
	.try_send = s_try_send,
	.try_recv = s_try_recv,
	.send_until = s_send_until,
	.recv_until = s_recv_until,
	.close = s_close,
	.len = s_len,
};

const struct chan_strategy chan_strategy_ck_ring_mpmc = {
	.name = "ck_ring_mpmc",
	.caps = CHAN_CAP_MPMC,
	.create = create_mpmc,
	.destroy = destroy,
	.send = s_send,
	.recv = s_recv,
	.try_send = s_try_send,
	.try_recv = s_try_recv,
	.send_until = s_send_until,
	.recv_until = s_recv_until,
	.close = s_close,
	.len = s_len,
};
