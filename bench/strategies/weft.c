/* bench/strategies/weft.c: weft's lock-free channel (weft/chan.h) seen as a
 * channel strategy: "weft" (the benchmark's workers are threads) and
 * "tasks" (they are tasks, weft/task.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include <weft/chan.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "strategy.h"

/* struct chan_case mirrors weft_case_t field for field; select copies the
 * cases across rather than casting, so no aliasing rule is bent. */
_Static_assert(sizeof(struct chan_case) == sizeof(weft_case_t), "case layout");
_Static_assert(offsetof(struct chan_case, op) == offsetof(weft_case_t, op) &&
		       offsetof(struct chan_case, elem) == offsetof(weft_case_t, elem) &&
		       offsetof(struct chan_case, err) == offsetof(weft_case_t, err),
	       "case layout");
_Static_assert(WEFT_SEND == 1 && WEFT_RECV == 2, "case ops");

static int s_create(void **out, size_t elem_size, size_t capacity)
{
	weft_chan_t *c;
	int rc;

	if (!out)
		return weft_chan_create(NULL, elem_size, capacity);
	rc = weft_chan_create(&c, elem_size, capacity);
	if (!rc)
		*out = c;
	return rc;
}

static void s_destroy(void *ch)
{
	weft_chan_destroy(ch);
}

static int s_send(void *ch, const void *elem)
{
	return weft_chan_send(ch, elem);
}

static int s_recv(void *ch, void *elem)
{
	return weft_chan_recv(ch, elem);
}

static int s_try_send(void *ch, const void *elem)
{
	return weft_chan_try_send(ch, elem);
}

static int s_try_recv(void *ch, void *elem)
{
	return weft_chan_try_recv(ch, elem);
}

static int s_send_until(void *ch, const void *elem, int64_t deadline)
{
	return weft_chan_send_until(ch, elem, deadline);
}

static int s_recv_until(void *ch, void *elem, int64_t deadline)
{
	return weft_chan_recv_until(ch, elem, deadline);
}

static int s_close(void *ch)
{
	return weft_chan_close(ch);
}

static size_t s_len(const void *ch)
{
	return weft_chan_len(ch);
}

static long s_send_many(void *ch, const void *elems, size_t n)
{
	return weft_chan_send_many(ch, elems, n);
}

static long s_recv_many(void *ch, void *elems, size_t max)
{
	return weft_chan_recv_many(ch, elems, max);
}

enum { SEL_BLOCK, SEL_TRY, SEL_UNTIL };

#define SEL_STACK 32

static int s_select_any(struct chan_case *cases, size_t n, int64_t deadline, int mode)
{
	weft_case_t buf[SEL_STACK], *wc = buf;
	int rc;

	if (!cases || n > WEFT_SELECT_MAX_CASES) {
		/* let weft report the error (it never reads the cases here) */
		wc = NULL;
	} else if (n > SEL_STACK) {
		wc = malloc(n * sizeof *wc);
		if (!wc)
			return -ENOMEM;
	}
	if (wc) {
		for (size_t i = 0; i < n; i++) {
			wc[i].chan = cases[i].chan;
			wc[i].op = cases[i].op;
			wc[i].elem = cases[i].elem;
			wc[i].err = cases[i].err;
		}
	}
	if (mode == SEL_BLOCK)
		rc = weft_select(wc, n);
	else if (mode == SEL_TRY)
		rc = weft_select_try(wc, n);
	else
		rc = weft_select_until(wc, n, deadline);
	if (wc) {
		for (size_t i = 0; i < n; i++)
			cases[i].err = wc[i].err;
		if (wc != buf)
			free(wc);
	}
	return rc;
}

static int s_select(struct chan_case *cases, size_t n)
{
	return s_select_any(cases, n, WEFT_FOREVER, SEL_BLOCK);
}

static int s_select_try(struct chan_case *cases, size_t n)
{
	return s_select_any(cases, n, 0, SEL_TRY);
}

static int s_select_until(struct chan_case *cases, size_t n, int64_t deadline)
{
	return s_select_any(cases, n, deadline, SEL_UNTIL);
}

#define WEFT_STRATEGY_OPS                                                        \
	.create = s_create, .destroy = s_destroy, .send = s_send, .recv = s_recv,  \
	.try_send = s_try_send, .try_recv = s_try_recv, .send_until = s_send_until, \
	.recv_until = s_recv_until, .close = s_close, .len = s_len,                \
	.send_many = s_send_many, .recv_many = s_recv_many, .select = s_select,    \
	.select_try = s_select_try, .select_until = s_select_until

const struct chan_strategy chan_strategy_weft = {
	.name = "weft",
	.caps = CHAN_CAP_UNBUFFERED | CHAN_CAP_BLOCKING | CHAN_CAP_MPMC,
	WEFT_STRATEGY_OPS,
};

/* The benchmark's participants as tasks (struct chan_runtime): each waits
 * on the gate (a WaitGroup of 1, done by go), runs, and is done on done. */
struct task_group {
	weft_wg_t gate, done;
};

struct task_start {
	struct task_group *g;
	void (*fn)(void *);
	void *arg;
};

static void *tg_create(unsigned n)
{
	struct task_group *g = malloc(sizeof *g);

	if (!g)
		return NULL;
	weft_wg_init(&g->gate);
	weft_wg_init(&g->done);
	weft_wg_add(&g->gate, 1);
	weft_wg_add(&g->done, n);
	return g;
}

static void tg_main(void *p)
{
	struct task_start st = *(struct task_start *)p;

	free(p);
	weft_wg_wait(&st.g->gate);
	st.fn(st.arg);
	weft_wg_done(&st.g->done);
}

static int tg_spawn(void *g, void (*fn)(void *), void *arg)
{
	struct task_start *st = malloc(sizeof *st);
	int rc;

	if (!st)
		return -ENOMEM;
	*st = (struct task_start){ g, fn, arg };
	if ((rc = weft_go(tg_main, st)) != 0)
		free(st);
	return rc;
}

static void tg_go(void *g)
{
	weft_wg_done(&((struct task_group *)g)->gate);
}

static int tg_join(void *g, int64_t deadline)
{
	return weft_wg_wait_until(&((struct task_group *)g)->done, deadline);
}

static void tg_destroy(void *g)
{
	free(g);
}

const struct chan_runtime chan_runtime_tasks = {
	.name = "weft tasks",
	.group_create = tg_create,
	.group_spawn = tg_spawn,
	.group_go = tg_go,
	.group_join = tg_join,
	.group_destroy = tg_destroy,
};

/* The same channels, the benchmark's workers run as tasks (weft/task.h). */
const struct chan_strategy chan_strategy_tasks = {
	.name = "tasks",
	.caps = CHAN_CAP_UNBUFFERED | CHAN_CAP_BLOCKING | CHAN_CAP_MPMC,
	WEFT_STRATEGY_OPS,
	.rt = &chan_runtime_tasks,
};
