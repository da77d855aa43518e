/* bench/strategies/mutex.c: the mutex + condvar baseline (bench/baseline/
 * chan_mutex.c) seen as a channel strategy. */
#include "strategy.h"
#include "../baseline/chan_mutex.h" /* strategies lib has only bench/ on its path */

static int s_create(void **out, size_t elem_size, size_t capacity)
{
	mchan_t *c;
	int rc;

	if (!out)
		return mchan_create(NULL, elem_size, capacity);
	rc = mchan_create(&c, elem_size, capacity);
	if (!rc)
		*out = c;
	return rc;
}

static void s_destroy(void *ch)
{
	mchan_destroy(ch);
}

static int s_send(void *ch, const void *elem)
{
	return mchan_send(ch, elem);
}

static int s_recv(void *ch, void *elem)
{
	return mchan_recv(ch, elem);
}

static int s_try_send(void *ch, const void *elem)
{
	return mchan_try_send(ch, elem);
}

static int s_try_recv(void *ch, void *elem)
{
	return mchan_try_recv(ch, elem);
}

static int s_send_until(void *ch, const void *elem, int64_t deadline)
{
	return mchan_send_until(ch, elem, deadline);
}

static int s_recv_until(void *ch, void *elem, int64_t deadline)
{
	return mchan_recv_until(ch, elem, deadline);
}

static int s_close(void *ch)
{
	return mchan_close(ch);
}

static size_t s_len(const void *ch)
{
	return mchan_len(ch);
}

static long s_send_many(void *ch, const void *elems, size_t n)
{
	return mchan_send_many(ch, elems, n);
}

static long s_recv_many(void *ch, void *elems, size_t max)
{
	return mchan_recv_many(ch, elems, max);
}

const struct chan_strategy chan_strategy_mutex = {
	.name = "mutex",
	.caps = CHAN_CAP_UNBUFFERED | CHAN_CAP_BLOCKING | CHAN_CAP_MPMC,
	.create = s_create,
	.destroy = s_destroy,
	.send = s_send,
	.recv = s_recv,
	.try_send = s_try_send,
	.try_recv = s_try_recv,
	.send_until = s_send_until,
	.recv_until = s_recv_until,
	.close = s_close,
	.len = s_len,
	.send_many = s_send_many,
	.recv_many = s_recv_many,
	.select = mchan_select,
	.select_try = mchan_select_try,
	.select_until = mchan_select_until,
};
