/* lib/pipeline.c: pipelines, fan-out and fan-in on the public channel,
 * context and WaitGroup API (plus one internal receive with both a deadline
 * and a context, for retiring idle workers).
 *
 * A worker is a thread (joinable, joined by wait) or a task; either runs
 * worker_main, which does not care which. Every blocking call a worker
 * makes watches the pipeline's context: receives are try_recv, then
 * recv_ctx; emits are try_send, then send_ctx. A worker also looks at the
 * context once per input (weft_ctx_err: a few loads), so a stage whose
 * input never runs dry still stops.
 *
 * Ordering:
 * - p->err: the first nonzero fn result wins a CAS from 0 (full RMW), and
 *   only then is the context canceled with it as cause, so a sibling's
 *   -ECANCELED (which follows the cancel) is never first. wait reads err
 *   after weft_wg_wait (acquire through the WaitGroup: every worker's CAS
 *   is before its done).
 * - st->live: workers of a stage running (RMW). A retiring worker lowers
 *   it only by CAS from a value above min_workers, so only the final exits
 *   can bring it to 0, and the worker that does closes the output: every
 *   emit of every worker of the stage is before that close (each worker's
 *   emits precede its RMW; the last RMW reads them all through the RMW
 *   chain). A new worker is counted (CAS up) by a running worker, so live
 *   never rises from 0.
 * - Per-worker counters (struct wslot): one writer at a time (the
 *   occupant), relaxed stores; stats reads them relaxed (a snapshot). The
 *   occupant changes under st->lock.
 * - Ordered stages: the take token (a channel of one signal) serializes
 *   "receive an input, number it", so numbers follow the input's order;
 *   room tokens (a channel of `window` signals) bound the numbers in
 *   flight. A worker fills its slot, release-stores slot.done, then CASes
 *   o->flushing (full RMW). The flusher sends slots in number order while
 *   their done is set (acquire: the outputs are there), then
 *   release-stores flushing = 0, fences (store-load) and looks at done of
 *   the next slot again: Dekker with the worker's (done store, CAS), so a
 *   completed slot is never left unflushed. next_out is written only by
 *   the flusher of the moment (handed over by the flag's release/CAS).
 *
 * Deaths (a fn that ends its thread: pthread_exit, or pthread_cancel acted
 * on; internal/death.h): every worker runs under its death note (in its
 * struct worker). If a fn never returns, the note runs on the dying thread
 * (or carrier) after glibc's unwinding: the call counts as a failure of
 * the stage (failures + 1) and as the pipeline's error -EOWNERDEAD if it is
 * the first (the pipeline's rule for any failing fn: recorded, then the
 * context canceled), the worker leaves its slot, and a replacement starts
 * in the same slot (same index and output), which counts in `live` in its
 * stead, so the stage keeps its workers and its output stays open until
 * they end. A source worker is not replaced (its fn runs once per worker:
 * a second run would emit its elements again). In an ordered stage the
 * dead worker's numbers stay unflushed: harmless, as the pipeline is
 * canceled (nothing waits for them but context-watching calls).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/atomic.h"
#include "internal/chan_impl.h"
#include "internal/death.h"
#include "internal/park.h"
#include "internal/sys.h"
#include <weft/ctx.h>
#include <weft/pipeline.h>
#include <weft/sync.h>
#include <weft/task.h>

#define MAX_WORKERS 4096u
/* take(): the worker retires (e->retiring is set; any nonzero value of a
 * user fn is a failure, so the flag, not the value, tells) */
#define RETIRE 1

struct wslot {
	WEFT__ALIGNED uint64_t in; /* counters: the occupant writes, relaxed */
	uint64_t out;
	uint64_t failures;
	uint64_t wait_ns;  /* waiting for input or room */
	uint64_t alive_ns; /* of occupants that have left */
	int64_t start;     /* the occupant's start; 0: none */
	uint32_t used;     /* st->lock */
};

struct oslot {
	uint32_t done; /* release by the filler, acquire by the flusher */
	size_t n, cap; /* outputs held, room (in elements) */
	unsigned char *buf;
};

struct ord {
	size_t window;
	struct oslot *slots;
	weft_chan_t *take; /* one signal: the right to receive and number */
	weft_chan_t *room; /* window signals: numbers that may be in flight */
	uint64_t next_seq; /* under the take token */
	uint64_t next_out; /* the flusher's (relaxed: handed over by flushing) */
	uint32_t flushing;
	unsigned batch;    /* the most inputs a worker takes at once */
};

struct stage;

struct weft_emit {
	struct stage *st;
	struct wslot *slot;
	weft_chan_t *out;
	weft_ctx_t *ctx;
	unsigned idx;
	struct oslot *held; /* ordered: this input's outputs go here */
	bool retiring;      /* take() returned RETIRE */
	uint32_t nwaits;    /* blocking waits so far (wait_begin) */
	unsigned char *buf; /* run_inputs' input buffer when on the heap */
};

struct worker {
	struct worker *next; /* p->workers (p->lock) */
	pthread_t thr;
	int is_task;
	uint32_t finished; /* release: the worker no longer touches this struct */
	weft_emit_t e;
	struct stage *st;
	unsigned slot;
	weft__death_note_t note; /* a fn ended its thread: worker_died */
};

struct stage {
	struct stage *next;
	weft_pipeline_t *p;
	int kind;
	char name[32];
	weft_source_fn src;
	weft_stage_fn fn;
	weft_sink_fn sink;
	void *user;
	weft_chan_t **ins; /* 1 (stage, sink, fan_out), n (fan_in), 0 (source) */
	weft_chan_t **outs;
	size_t nin, nout;
	size_t in_esize, out_esize;
	unsigned min_w, max_w;
	int64_t idle_ns;
	uint32_t live;        /* workers running (RMW) */
	uint64_t added, retired;
	uint64_t died;        /* workers whose fn ended their thread (RMW) */
	int64_t backed_since; /* scaling: first look at a backed-up input */
	weft__mutex_t lock;   /* slots' occupancy */
	struct wslot *slots;  /* max_w */
	struct ord *ord;
	int owns_outs;
};

struct weft_pipeline {
	weft_ctx_t *ctx;
	weft__mutex_t lock; /* stages list, workers list, setup state */
	struct stage *stages, **stages_tail;
	struct worker *workers;
	weft_wg_t wg;       /* workers not yet finished */
	uint32_t err;       /* the first failure (CAS from 0) */
	uint32_t ctx_exit;  /* a worker stopped because the context was done */
	int tasks;
	int waited, result;
};

/* ---- small helpers ---- */

static inline void cnt_add(uint64_t *c, uint64_t d)
{
	/* single writer (the slot's occupant): relaxed, read by stats */
	weft__st64_rlx(c, weft__ld64_rlx(c) + d);
}

static void record(weft_pipeline_t *p, int rc)
{
	uint32_t zero = 0;
	/* full RMW: the first failure is recorded before the cancel (see
	 * Ordering); pairs with wait's read after weft_wg_wait */
	if (weft__cas32(&p->err, &zero, (uint32_t)rc))
		weft_ctx_cancel_cause(p->ctx, rc);
}

static void note_ctx_exit(weft_pipeline_t *p)
{
	/* relaxed: read by wait after weft_wg_wait (acquire through the wg) */
	weft__st32_rlx(&p->ctx_exit, 1);
}

/* A worker ends because of rc (nonzero): a failure of its fn (or of its
 * output), or the context being done. */
static void worker_failed(weft_emit_t *e, int rc)
{
	weft_pipeline_t *p = e->st->p;
	if ((rc == -ECANCELED || rc == -ETIMEDOUT) && weft_ctx_err(p->ctx)) {
		note_ctx_exit(p);
		return;
	}
	cnt_add(&e->slot->failures, 1);
	record(p, rc);
}

/* Waiting time (for busy_ns) is sampled: one blocking wait in WAIT_SAMPLE
 * is timed and counted WAIT_SAMPLE times. Two clock reads per wait were a
 * quarter of the CPU of an unbuffered pipeline (perf stat, 500k items
 * through 4 stages: ~320 ms against ~250 without them). */
#define WAIT_SAMPLE 8

static inline int64_t wait_begin(weft_emit_t *e)
{
	return ++e->nwaits % WAIT_SAMPLE == 0 ? weft_now() : 0;
}

static inline void wait_end(weft_emit_t *e, int64_t t0)
{
	if (t0)
		cnt_add(&e->slot->wait_ns, WAIT_SAMPLE * (uint64_t)(weft_now() - t0));
}

/* Send to the worker's output, watching the context. 0 (sent, or dropped
 * by a DROP_NEWEST output), or an error. */
static int send_out(weft_emit_t *e, weft_chan_t *out, const void *elem)
{
	int rc = weft_chan_try_send(out, elem);
	if (rc == -EAGAIN) {
		int64_t t0 = wait_begin(e);
		rc = weft_chan_send_ctx(out, elem, e->ctx);
		wait_end(e, t0);
	}
	if (rc == 0)
		cnt_add(&e->slot->out, 1);
	else if (rc == -ENOBUFS)
		rc = 0; /* DROP_NEWEST: counted by the channel */
	return rc;
}

/* Hold one output of an ordered stage's input until its turn. */
static int hold(weft_emit_t *e, const void *elem)
{
	struct oslot *s = e->held;
	size_t es = e->st->out_esize;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		unsigned char *b = weft__sys_realloc(s->buf, (es ? es : 1) * cap);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	if (es)
		memcpy(s->buf + s->n * es, elem, es);
	s->n++;
	return 0;
}

int weft_emit(weft_emit_t *e, const void *elem)
{
	if (!e || !e->out || (!elem && e->st->out_esize))
		return -EINVAL;
	int rc = weft_ctx_err(e->ctx);
	if (rc)
		return rc;
	if (e->held)
		return hold(e, elem);
	return send_out(e, e->out, elem);
}

weft_ctx_t *weft_emit_ctx(const weft_emit_t *e)
{
	return e ? e->ctx : NULL;
}

unsigned weft_emit_worker(const weft_emit_t *e)
{
	return e ? e->idx : 0;
}

/* ---- scaling ---- */

static int spawn(struct stage *st, unsigned slot);

/* Retire if more than min_workers run: true if this worker is to go. */
static bool try_retire(struct stage *st)
{
	/* relaxed: the CAS below decides */
	uint32_t v = weft__ld32_rlx(&st->live);
	while (v > st->min_w) {
		/* full RMW: see Ordering (live) */
		if (weft__cas32(&st->live, &v, v - 1)) {
			/* RMW: a counter for stats only */
			weft__faa64(&st->retired, 1);
			return true;
		}
	}
	return false;
}

/* After an input: if the buffered input has stayed more than half full for
 * WEFT_STAGE_SCALE_NS, start one more worker (up to max_workers). */
static void maybe_scale(struct stage *st, weft_chan_t *in)
{
	size_t cap = weft_chan_cap(in);
	if (cap == 0 || weft_chan_len(in) * 2 <= cap) {
		if (weft__ld64_rlx((uint64_t *)&st->backed_since))
			/* relaxed: a hint */
			weft__st64_rlx((uint64_t *)&st->backed_since, 0);
		return;
	}
	uint64_t now = (uint64_t)weft_now();
	/* relaxed: a hint shared by the stage's workers (the CASes decide) */
	uint64_t bs = weft__ld64_rlx((uint64_t *)&st->backed_since);
	if (bs == 0) {
		/* relaxed: a hint shared by the stage's workers */
		weft__cas64((uint64_t *)&st->backed_since, &bs, now);
		return;
	}
	if (now - bs < (uint64_t)WEFT_STAGE_SCALE_NS)
		return;
	/* one scaler per interval: the CAS winner */
	if (!weft__cas64((uint64_t *)&st->backed_since, &bs, now))
		return;
	/* relaxed: the CAS below decides */
	uint32_t v = weft__ld32_rlx(&st->live);
	while (v < st->max_w) {
		/* full RMW: counted before it starts (see Ordering, live) */
		if (weft__cas32(&st->live, &v, v + 1)) {
			/* counted with live, so stats never show the worker
			 * without its addition */
			weft__faa64(&st->added, 1);
			if (spawn(st, UINT32_MAX) != 0) {
				/* full RMWs: undo the counts (see Ordering, live) */
				weft__faa64(&st->added, (uint64_t)-1);
				weft__faa32(&st->live, (uint32_t)-1);
			}
			return;
		}
	}
}

/* ---- receiving ---- */

/* One input: 0, -EPIPE (closed and drained), RETIRE, or the context's
 * error. */
static int take(weft_emit_t *e, weft_chan_t *in, void *buf)
{
	struct stage *st = e->st;
	int rc = weft_ctx_err(e->ctx);
	if (rc)
		return rc;
	rc = weft_chan_try_recv(in, buf);
	if (rc != -EAGAIN)
		return rc;
	int64_t t0 = wait_begin(e);
	if (st->max_w > st->min_w) {
		for (;;) {
			/* saturating (fuzz_opts: idle_ns near INT64_MAX
			 * overflowed now + idle_ns, undefined behaviour and in
			 * practice a deadline already passed) */
			rc = weft__chan_recv_until_ctx(in, buf, weft_deadline(st->idle_ns), e->ctx);
			if (rc != -ETIMEDOUT || weft_ctx_err(e->ctx))
				break;
			if (try_retire(st)) {
				e->retiring = true;
				rc = RETIRE;
				break;
			}
		}
	} else {
		rc = weft_chan_recv_ctx(in, buf, e->ctx);
	}
	wait_end(e, t0);
	return rc;
}

/* ---- ordered stages ---- */

static int flush(weft_emit_t *e)
{
	struct ord *o = e->st->ord;
	size_t es = e->st->out_esize;
	for (;;) {
		uint32_t zero = 0;
		/* full RMW: after our slot's done store (Dekker, see Ordering) */
		if (!weft__cas32(&o->flushing, &zero, 1))
			return 0;
		int rc = 0;
		/* relaxed: ours while we hold the flag (acquired by the CAS above) */
		uint64_t next = weft__ld64_rlx(&o->next_out), freed = 0;
		for (;;) {
			struct oslot *s = &o->slots[next % o->window];
			/* acquire: the filler's outputs before its done */
			if (!weft__ld32_acq(&s->done))
				break;
			for (size_t i = 0; i < s->n && rc == 0; i++)
				rc = send_out(e, e->out, s->buf + i * es);
			s->n = 0;
			/* relaxed: the slot goes back with its room token (a channel op: release) */
			weft__st32_rlx(&s->done, 0);
			next++;
			/* relaxed: the flusher's own; handed over by flushing */
			weft__st64_rlx(&o->next_out, next);
			freed++;
			if (rc)
				break;
		}
		/* the slots are free: their room tokens back, in one call (never
		 * blocks: at most window tokens) */
		if (freed)
			weft_chan_send_many(o->room, NULL, freed);
		/* release: our slot updates before the next flusher's CAS */
		weft__st32_rel(&o->flushing, 0);
		if (rc)
			return rc;
		/* store-load: the flag cleared before looking at done again */
		weft__fence_sc();
		/* relaxed: next_out is written only by flushers, handed over by the flag */
		struct oslot *s = &o->slots[weft__ld64_rlx(&o->next_out) % o->window];
		if (!weft__ld32_acq(&s->done))
			return 0;
	}
}

/* Ordered stages take inputs in batches of up to ORD_BATCH under one take
 * token (the first waits, the others only while the input has one ready
 * and a room token is free), so the token's hand-off between workers (a
 * futex wake-up when they are threads) is paid once per batch; a worker
 * whose items take longer than ORD_FAST_NS each takes one at a time, so
 * slow items still spread over every worker. */
#define ORD_BATCH 16
#define ORD_FAST_NS 10000

/* One batch of an ordered stage. 0 to go on, else the end (as take(), or
 * fn's error). *kmax: the batch size to use (adapted here). */
static int ordered_batch(weft_emit_t *e, weft_chan_t *in, unsigned char *bufs, size_t bs,
			 unsigned *kmax)
{
	struct stage *st = e->st;
	struct ord *o = st->ord;
	int rc = weft_chan_recv_ctx(o->room, NULL, e->ctx);
	if (rc)
		return rc;
	rc = weft_chan_recv_ctx(o->take, NULL, e->ctx);
	if (rc) {
		weft_chan_try_send(o->room, NULL);
		return rc;
	}
	rc = take(e, in, bufs);
	uint64_t seq = o->next_seq;
	unsigned k = 0;
	if (rc == 0) {
		k = 1;
		while (k < *kmax && weft_chan_try_recv(o->room, NULL) == 0) {
			if (weft_chan_try_recv(in, bufs + k * bs) != 0) {
				weft_chan_try_send(o->room, NULL);
				break;
			}
			k++;
		}
		o->next_seq = seq + k;
	}
	weft_chan_try_send(o->take, NULL); /* never blocks: the only token */
	if (rc) {
		weft_chan_try_send(o->room, NULL);
		return rc;
	}
	cnt_add(&e->slot->in, k);
	int64_t t0 = weft_now();
	int frc = 0, flrc = 0;
	for (unsigned i = 0; i < k; i++) {
		struct oslot *s = &o->slots[(seq + i) % o->window];
		if (frc == 0) {
			e->held = s;
			frc = st->fn(e, bufs + i * bs, st->user);
			e->held = NULL;
		}
		/* (after a failure the rest go out empty, so the line of
		 * numbers has no hole) release: the outputs before done, for
		 * the flusher's acquire */
		weft__st32_rel(&s->done, 1);
		/* quick items: one flush for the batch (a flush is a CAS on a
		 * line every worker writes and a full fence); slow ones at once */
		if (flrc == 0 && (*kmax == 1 || i + 1 == k))
			flrc = flush(e);
	}
	*kmax = (weft_now() - t0) / k < ORD_FAST_NS ? o->batch : 1;
	return frc ? frc : flrc;
}

/* ---- the worker loop ---- */

static int run_inputs(weft_emit_t *e)
{
	struct stage *st = e->st;
	weft_chan_t *in = st->ins[0];
	size_t bs = st->in_esize ? st->in_esize : 1;
	size_t need = st->ord ? bs * ORD_BATCH : bs;
	unsigned char small[256];
	unsigned char *buf = need <= sizeof small ? small : weft__sys_malloc(need);
	if (!buf)
		return -ENOMEM;
	if (buf != small)
		e->buf = buf; /* freed by worker_died if a fn never returns */
	int rc;
	unsigned kmax = 1;
	for (uint64_t n = 1;; n++) {
		if (st->ord) {
			rc = ordered_batch(e, in, buf, bs, &kmax);
		} else {
			rc = take(e, in, buf);
			if (rc == 0) {
				cnt_add(&e->slot->in, 1);
				rc = st->kind == WEFT_STAGE_SINK ? st->sink(buf, st->user)
								 : st->fn(e, buf, st->user);
			}
		}
		if (rc)
			break;
		if (st->max_w > st->min_w && (n & 15) == 0)
			maybe_scale(st, in);
	}
	if (buf != small) {
		free(buf);
		e->buf = NULL;
	}
	return rc;
}

static int run_fan_in(weft_emit_t *e)
{
	weft_chan_t *in = e->st->ins[e->idx];
	size_t bs = e->st->in_esize ? e->st->in_esize : 1;
	unsigned char small[256];
	unsigned char *buf = bs <= sizeof small ? small : weft__sys_malloc(bs);
	if (!buf)
		return -ENOMEM;
	int rc;
	for (;;) {
		rc = take(e, in, buf);
		if (rc)
			break;
		cnt_add(&e->slot->in, 1);
		rc = send_out(e, e->out, buf);
		if (rc)
			break;
	}
	if (buf != small)
		free(buf);
	return rc;
}

/* A worker leaves: its slot's time to the totals, its context released.
 * keep: the slot stays taken, for its replacement (see Deaths). */
static void leave_slot(struct worker *w, bool keep)
{
	struct stage *st = w->st;
	weft_emit_t *e = &w->e;
	int64_t now = weft_now();
	cnt_add(&e->slot->alive_ns, (uint64_t)(now - e->slot->start));
	/* relaxed: stats' snapshot only */
	weft__st64_rlx((uint64_t *)&e->slot->start, 0);
	if (!keep) {
		weft__mutex_lock(&st->lock);
		e->slot->used = 0;
		weft__mutex_unlock(&st->lock);
	}

	weft_ctx_release(e->ctx);
	e->ctx = NULL;
}

/* A worker's last steps. retiring: uncounted from live already; replaced:
 * a replacement counts in live in its stead and keeps its output open
 * (see Deaths). */
static void worker_end(struct worker *w, bool retiring, bool replaced)
{
	struct stage *st = w->st;
	weft_pipeline_t *p = st->p;
	if (!replaced) {
		if (st->kind == WEFT_STAGE_FAN_OUT)
			weft_chan_close(st->outs[w->e.idx]);
		/* full RMW: see Ordering (live) */
		if (!retiring && weft__faa32(&st->live, (uint32_t)-1) == 1 &&
		    st->kind != WEFT_STAGE_FAN_OUT && st->nout)
			weft_chan_close(st->outs[0]);
	}
	/* release: nothing of w is touched after this (the reaper frees it) */
	weft__st32_rel(&w->finished, 1);
	weft_wg_done(&p->wg); /* the last access to the pipeline */
}

/* A fn ended the worker's thread (or carrier) without returning (see
 * Deaths): on the dying thread, after glibc's unwinding. */
static void worker_died(weft__death_note_t *n)
{
	struct worker *w = (struct worker *)((char *)n - offsetof(struct worker, note));
	struct stage *st = w->st;
	weft_emit_t *e = &w->e;
	free(e->buf);
	e->buf = NULL;
	e->held = NULL;
	/* the call that never returned: a failure of the stage */
	cnt_add(&e->slot->failures, 1);
	/* RMW: a counter for stats only */
	weft__faa64(&st->died, 1);
	record(st->p, -EOWNERDEAD);
	/* the slot stays taken for the replacement (no scaler takes it
	 * between), and is freed if none starts */
	bool replace = st->kind != WEFT_STAGE_SOURCE;
	leave_slot(w, replace);
	if (replace && spawn(st, w->slot) != 0) {
		replace = false;
		weft__mutex_lock(&st->lock);
		e->slot->used = 0;
		weft__mutex_unlock(&st->lock);
	}
	worker_end(w, false, replace);
}

static void worker_main(struct worker *w)
{
	struct stage *st = w->st;
	weft_emit_t *e = &w->e;
	int rc;
	w->note.died = worker_died;
	weft__death_push(&w->note);
	if (st->kind == WEFT_STAGE_SOURCE)
		rc = st->src(e, st->user);
	else if (st->kind == WEFT_STAGE_FAN_IN)
		rc = run_fan_in(e);
	else
		rc = run_inputs(e);
	weft__death_pop(&w->note);
	bool retiring = e->retiring;
	if (rc == -EPIPE && st->kind != WEFT_STAGE_SOURCE)
		rc = 0; /* the input is closed and drained: the normal end */
	if (rc && !retiring)
		worker_failed(e, rc);
	leave_slot(w, false);
	/* a retiree was uncounted from live already */
	worker_end(w, retiring, false);
}

static void *thread_main(void *arg)
{
	worker_main(arg);
	return NULL;
}

static void task_main(void *arg)
{
	worker_main(arg);
}

/* p->lock held: free finished workers (threads joined: they have at most
 * the return left to run). */
static void reap_locked(weft_pipeline_t *p)
{
	struct worker **pp = &p->workers;
	while (*pp) {
		struct worker *w = *pp;
		/* acquire: pairs with the worker's release of finished */
		if (weft__ld32_acq(&w->finished)) {
			*pp = w->next;
			if (!w->is_task)
				weft__join_nocancel(w->thr); /* under p->lock */
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

/* Start one worker of st (counted in st->live by the caller). slot: its
 * fixed index (fan_out, fan_in, the first workers) or UINT32_MAX for the
 * first free one. 0 or a negative errno. */
static int spawn(struct stage *st, unsigned slot)
{
	weft_pipeline_t *p = st->p;
	struct worker *w = weft__sys_calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	weft__mutex_lock(&st->lock);
	if (slot == UINT32_MAX) {
		for (slot = 0; slot < st->max_w && st->slots[slot].used; slot++)
			;
	}
	if (slot >= st->max_w) {
		weft__mutex_unlock(&st->lock);
		free(w);
		return -EAGAIN;
	}
	struct wslot *ws = &st->slots[slot];
	ws->used = 1;
	/* relaxed: stats' snapshot only (the slot's hand-over is under st->lock) */
	weft__st64_rlx((uint64_t *)&ws->start, (uint64_t)weft_now());
	weft__mutex_unlock(&st->lock);

	w->st = st;
	w->slot = slot;
	w->e.st = st;
	w->e.slot = ws;
	/* each worker watches a child of the pipeline's context: a blocked
	 * receive or emit registers on its context under that context's
	 * lock, and one shared lock for every worker was contended on every
	 * hand-off (a carrier blocked on it, with tasks) */
	int crc = weft_ctx_with_cancel(&w->e.ctx, p->ctx);
	if (crc) {
		weft__mutex_lock(&st->lock);
		ws->used = 0;
		/* relaxed: stats' snapshot only */
		weft__st64_rlx((uint64_t *)&ws->start, 0);
		weft__mutex_unlock(&st->lock);
		free(w);
		return crc;
	}
	w->e.idx = slot;
	w->e.out = st->nout == 0 ? NULL : st->outs[st->kind == WEFT_STAGE_FAN_OUT ? slot : 0];
	w->is_task = p->tasks;

	weft_wg_add(&p->wg, 1);
	weft__mutex_lock(&p->lock);
	reap_locked(p);
	w->next = p->workers;
	p->workers = w;
	int rc = 0;
	char name[32];
	snprintf(name, sizeof name, "%.10s/%u", st->name, slot);
	if (w->is_task) {
		weft_task_opts_t o = {.name = name};
		rc = weft_go_opts(task_main, w, &o);
		if (rc == -ENOSYS) /* no tasks on this CPU: a thread */
			w->is_task = 0;
	}
	if (!w->is_task) {
		rc = -weft__sys_thread_create(&w->thr, NULL, thread_main, w);
		if (rc == 0)
			pthread_setname_np(w->thr, name);
	}
	if (rc) {
		p->workers = w->next;
		weft__mutex_unlock(&p->lock);
		weft__mutex_lock(&st->lock);
		ws->used = 0;
		/* relaxed: stats' snapshot only */
		weft__st64_rlx((uint64_t *)&ws->start, 0);
		weft__mutex_unlock(&st->lock);
		weft_wg_done(&p->wg);
		weft_ctx_release(w->e.ctx);
		free(w);
		return rc;
	}
	weft__mutex_unlock(&p->lock);
	return 0;
}

/* ---- setup ---- */

int weft_pipeline_create(weft_pipeline_t **out, weft_ctx_t *parent)
{
	if (!out)
		return -EINVAL;
	weft_pipeline_t *p = weft__sys_calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	int rc = weft_ctx_with_cancel(&p->ctx, parent ? parent : weft_ctx_background());
	if (rc) {
		free(p);
		return rc;
	}
	p->stages_tail = &p->stages;
	p->tasks = 1; /* the default: see pipeline.h */
	weft_wg_init(&p->wg);
	*out = p;
	return 0;
}

int weft_pipeline_set_tasks(weft_pipeline_t *p, int on)
{
	if (!p)
		return -EINVAL;
	weft__mutex_lock(&p->lock);
	p->tasks = on != 0;
	weft__mutex_unlock(&p->lock);
	return 0;
}

weft_ctx_t *weft_pipeline_ctx(weft_pipeline_t *p)
{
	return p ? p->ctx : NULL;
}

/* Also frees a stage add_stage could not complete: any of its arrays may
 * be NULL (no memory), and so may the channels not made yet. */
static void stage_free(struct stage *st)
{
	if (!st)
		return;
	if (st->owns_outs && st->outs)
		for (size_t i = 0; i < st->nout; i++)
			weft_chan_destroy(st->outs[i]);
	if (st->ord) {
		for (size_t i = 0; st->ord->slots && i < st->ord->window; i++)
			free(st->ord->slots[i].buf);
		free(st->ord->slots);
		weft_chan_destroy(st->ord->take);
		weft_chan_destroy(st->ord->room);
		free(st->ord);
	}
	free(st->ins);
	free(st->outs);
	free(st->slots);
	free(st);
}

static int make_out(weft_chan_t **out, size_t esize, const weft_stage_opts_t *o)
{
	weft_chan_opts_t co = {
		.elem_size = esize,
		.capacity = o->out_capacity,
		.overflow = o->overflow,
		.spill_dir = o->spill_dir,
		.spill_max_bytes = o->spill_max_bytes,
	};
	return weft_chan_create_opts(out, &co);
}

static int make_ord(struct stage *st, const weft_stage_opts_t *o)
{
	struct ord *od = weft__sys_calloc(1, sizeof *od);
	if (!od)
		return -ENOMEM;
	st->ord = od;
	size_t win = o->window;
	if (win == 0)
		win = 4 * ORD_BATCH * (size_t)st->max_w;
	/* a batch at most a share of the window, so every worker can hold one */
	od->batch = (unsigned)(win / (2 * (size_t)st->max_w));
	if (od->batch > ORD_BATCH)
		od->batch = ORD_BATCH;
	if (od->batch == 0)
		od->batch = 1;
	od->slots = weft__sys_calloc(win, sizeof *od->slots);
	if (!od->slots)
		return -ENOMEM;
	/* only now: stage_free walks `window` slots (fuzz_opts: an ordered
	 * stage with window SIZE_MAX failed this calloc, and stage_free
	 * then read the slots of a NULL array) */
	od->window = win;
	if (weft_chan_create(&od->take, 0, 1) || weft_chan_create(&od->room, 0, win))
		return -ENOMEM;
	weft_chan_send(od->take, NULL);
	for (size_t i = 0; i < win; i++)
		weft_chan_send(od->room, NULL);
	return 0;
}

/* the fn of a stage: one of them set */
struct fns {
	weft_source_fn src;
	weft_stage_fn fn;
	weft_sink_fn sink;
};

/* Validate, build and start one stage of any kind. */
static int add_stage(weft_pipeline_t *p, int kind, weft_chan_t *const *ins, size_t nin,
		     weft_chan_t **outs, size_t nout, struct fns fn, void *user,
		     const weft_stage_opts_t *o)
{
	static const weft_stage_opts_t zero_opts;
	if (!p || (kind != WEFT_STAGE_FAN_IN && !fn.src && !fn.fn && !fn.sink) || (nin && !ins) || (nout && !outs))
		return -EINVAL;
	if (!o)
		o = &zero_opts;
	for (size_t i = 0; i < nin; i++)
		if (!ins[i] || weft_chan_elem_size(ins[i]) != weft_chan_elem_size(ins[0]))
			return -EINVAL;
	unsigned wk = o->workers ? o->workers : 1;
	unsigned mx = o->max_workers > wk ? o->max_workers : wk;
	if (kind == WEFT_STAGE_FAN_OUT) {
		if (o->ordered || o->max_workers > nout)
			return -EINVAL;
		wk = mx = (unsigned)nout;
	}
	if (kind == WEFT_STAGE_FAN_IN)
		wk = mx = (unsigned)nin;
	if (wk == 0 || mx > MAX_WORKERS || o->idle_ns < 0 ||
	    (o->ordered && kind != WEFT_STAGE_STAGE))
		return -EINVAL;
	size_t in_es = nin ? weft_chan_elem_size(ins[0]) : 0;
	size_t out_es = o->out_elem_size ? o->out_elem_size : in_es;
	if (kind == WEFT_STAGE_SOURCE && !o->out_elem_size)
		return -EINVAL;
	if (kind == WEFT_STAGE_FAN_IN)
		out_es = in_es;

	weft__mutex_lock(&p->lock);
	bool done = p->waited;
	weft__mutex_unlock(&p->lock);
	if (done)
		return -EINVAL;

	struct stage *st = weft__sys_calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->p = p;
	st->kind = kind;
	snprintf(st->name, sizeof st->name, "%s",
		 o->name ? o->name
			 : (const char *[]){"", "source", "stage", "sink", "fan_out", "fan_in"}[kind]);
	st->src = fn.src;
	st->sink = fn.sink;
	st->fn = fn.fn;
	st->user = user;
	st->nin = nin;
	st->nout = nout;
	st->in_esize = in_es;
	st->out_esize = out_es;
	st->min_w = wk;
	st->max_w = mx;
	st->idle_ns = o->idle_ns ? o->idle_ns : WEFT_STAGE_IDLE_NS;
	st->ins = weft__sys_calloc(nin ? nin : 1, sizeof *st->ins);
	st->outs = weft__sys_calloc(nout ? nout : 1, sizeof *st->outs);
	/* padded counters: aligned as their type asks */
	st->slots = weft__sys_aligned_alloc(_Alignof(struct wslot), mx * sizeof *st->slots);
	if (st->slots)
		memset(st->slots, 0, mx * sizeof *st->slots);
	int rc = 0;
	if (!st->ins || !st->outs || !st->slots)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < nin; i++)
		st->ins[i] = ins[i];
	st->owns_outs = 1;
	for (size_t i = 0; rc == 0 && i < nout; i++)
		rc = make_out(&st->outs[i], out_es, o);
	if (rc == 0 && o->ordered && mx > 1)
		rc = make_ord(st, o);
	if (rc) {
		stage_free(st);
		return rc;
	}
	for (size_t i = 0; i < nout; i++)
		outs[i] = st->outs[i];

	weft__mutex_lock(&p->lock);
	*p->stages_tail = st;
	p->stages_tail = &st->next;
	weft__mutex_unlock(&p->lock);

	/* all counted first, so no early finisher closes the output while
	 * its siblings are still to start */
	weft__st32_rlx(&st->live, wk);
	for (unsigned i = 0; i < wk; i++) {
		rc = spawn(st, i);
		if (rc) {
			/* uncount the ones that will not start; if they were
			 * the last, close as a finishing worker would */
			if (weft__faa32(&st->live, (uint32_t)-(wk - i)) == wk - i && nout &&
			    kind != WEFT_STAGE_FAN_OUT)
				weft_chan_close(st->outs[0]);
			if (kind == WEFT_STAGE_FAN_OUT)
				for (unsigned j = i; j < wk; j++)
					weft_chan_close(st->outs[j]);
			record(p, rc);
			return rc;
		}
	}
	return 0;
}

int weft_pipeline_source(weft_pipeline_t *p, weft_chan_t **out, weft_source_fn fn, void *user,
			 const weft_stage_opts_t *o)
{
	if (!out)
		return -EINVAL;
	return add_stage(p, WEFT_STAGE_SOURCE, NULL, 0, out, 1, (struct fns){.src = fn}, user, o);
}

int weft_pipeline_stage(weft_pipeline_t *p, weft_chan_t *in, weft_chan_t **out, weft_stage_fn fn,
			void *user, const weft_stage_opts_t *o)
{
	if (!in || !out)
		return -EINVAL;
	return add_stage(p, WEFT_STAGE_STAGE, &in, 1, out, 1, (struct fns){.fn = fn}, user, o);
}

int weft_pipeline_sink(weft_pipeline_t *p, weft_chan_t *in, weft_sink_fn fn, void *user,
		       const weft_stage_opts_t *o)
{
	if (!in)
		return -EINVAL;
	return add_stage(p, WEFT_STAGE_SINK, &in, 1, NULL, 0, (struct fns){.sink = fn}, user, o);
}

int weft_pipeline_fan_out(weft_pipeline_t *p, weft_chan_t *in, weft_chan_t **outs, size_t n,
			  weft_stage_fn fn, void *user, const weft_stage_opts_t *o)
{
	if (!in || !outs || n == 0 || n > MAX_WORKERS)
		return -EINVAL;
	return add_stage(p, WEFT_STAGE_FAN_OUT, &in, 1, outs, n, (struct fns){.fn = fn}, user, o);
}

int weft_pipeline_fan_in(weft_pipeline_t *p, weft_chan_t *const *ins, size_t n, weft_chan_t **out,
			 const weft_stage_opts_t *o)
{
	if (!ins || !out || n == 0 || n > MAX_WORKERS)
		return -EINVAL;
	weft_stage_opts_t fo = {0};
	if (o) {
		fo.name = o->name;
		fo.out_capacity = o->out_capacity;
		fo.overflow = o->overflow;
		fo.spill_dir = o->spill_dir;
		fo.spill_max_bytes = o->spill_max_bytes;
	}
	return add_stage(p, WEFT_STAGE_FAN_IN, ins, n, out, 1, (struct fns){0}, NULL, &fo);
}

/* ---- run ---- */

int weft_pipeline_cancel(weft_pipeline_t *p)
{
	if (!p)
		return -EINVAL;
	weft_ctx_cancel(p->ctx);
	return 0;
}

int weft_pipeline_wait(weft_pipeline_t *p)
{
	if (!p)
		return -EINVAL;
	weft__mutex_lock(&p->lock);
	int waited = p->waited;
	p->waited = 1; /* later setup calls: -EINVAL */
	weft__mutex_unlock(&p->lock);
	if (waited == 2)
		return p->result;
	weft_wg_wait(&p->wg);
	weft__mutex_lock(&p->lock);
	reap_locked(p); /* every worker has finished: joins them all */
	weft__mutex_unlock(&p->lock);
	/* after weft_wg_wait: every worker's record and ctx_exit are seen */
	int rc = (int)weft__ld32_rlx(&p->err);
	/* relaxed: after weft_wg_wait, whose acquire orders every worker's store */
	if (rc == 0 && weft__ld32_rlx(&p->ctx_exit)) {
		rc = weft_ctx_err(p->ctx);
		if (rc == 0)
			rc = -ECANCELED;
	}
	weft_ctx_cancel(p->ctx);
	p->result = rc;
	weft__mutex_lock(&p->lock);
	p->waited = 2;
	weft__mutex_unlock(&p->lock);
	return rc;
}

void weft_pipeline_destroy(weft_pipeline_t *p)
{
	if (!p)
		return;
	weft__mutex_lock(&p->lock);
	int waited = p->waited;
	weft__mutex_unlock(&p->lock);
	if (waited != 2) {
		weft_ctx_cancel(p->ctx);
		weft_pipeline_wait(p);
	}
	while (p->stages) {
		struct stage *st = p->stages;
		p->stages = st->next;
		stage_free(st);
	}
	weft_ctx_release(p->ctx);
	free(p);
}

/* ---- metrics ---- */

long weft_pipeline_stats(weft_pipeline_t *p, weft_stage_stats_t *out, size_t n)
{
	if (!p || (!out && n))
		return -EINVAL;
	int64_t now = weft_now();
	long k = 0;
	weft__mutex_lock(&p->lock);
	for (struct stage *st = p->stages; st; st = st->next, k++) {
		if ((size_t)k >= n)
			continue;
		weft_stage_stats_t *s = &out[k];
		memset(s, 0, sizeof *s);
		memcpy(s->name, st->name, sizeof s->name);
		s->kind = st->kind;
		uint64_t alive = 0, wait = 0;
		for (unsigned i = 0; i < st->max_w; i++) {
			struct wslot *w = &st->slots[i];
			/* relaxed: one writer (the occupant), a snapshot here */
			s->in += weft__ld64_rlx(&w->in);
			s->out += weft__ld64_rlx(&w->out);
			s->failures += weft__ld64_rlx(&w->failures);
			wait += weft__ld64_rlx(&w->wait_ns);
			alive += weft__ld64_rlx(&w->alive_ns);
			int64_t start = (int64_t)weft__ld64_rlx((uint64_t *)&w->start);
			if (start && now > start)
				alive += (uint64_t)(now - start);
		}
		s->busy_ns = alive > wait ? alive - wait : 0;
		/* relaxed loads (here and below): a snapshot of counters, no data behind them */
		s->workers = weft__ld32_rlx(&st->live);
		s->min_workers = st->min_w;
		s->max_workers = st->max_w;
		s->workers_added = weft__ld64_rlx(&st->added);
		s->workers_retired = weft__ld64_rlx(&st->retired);
		s->workers_died = weft__ld64_rlx(&st->died);
		for (size_t i = 0; i < st->nin; i++)
			s->in_len += weft_chan_len(st->ins[i]);
		for (size_t i = 0; i < st->nout; i++)
			s->out_len += weft_chan_len(st->outs[i]);
	}
	weft__mutex_unlock(&p->lock);
	return k;
}
