/* bench/baseline/pool_mutex.c: the mutex + condition variable worker pool
 * (see pool_mutex.h).
 *
 * Every job gets a sequence number at submit (its place in submit order).
 * The queue is FIFO, so the head's number is the smallest still queued; a
 * worker records the number of the job it runs in cur_seq[] (NO_SEQ when
 * it runs none). wait() takes target = the next number and returns once
 * the head's number and every cur_seq are at least target: every job
 * submitted before the call has then left the queue and finished. A job
 * run inline (a worker submitting to its full pool) needs no slot: the
 * worker's own, smaller cur_seq covers it until its outer job ends.
 */
#include "pool_mutex.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define NO_SEQ UINT64_MAX
#define DEFAULT_QUEUE 1024

enum { OPEN = 0 }; /* else MPOOL_DRAIN or MPOOL_CANCEL */

struct job {
	mpool_job_fn fn;
	void *arg;
	uint64_t seq;
};

struct mpool {
	pthread_mutex_t mu;
	pthread_cond_t not_empty; /* idle workers */
	pthread_cond_t not_full;  /* submitters of a full queue */
	pthread_cond_t done;      /* wait() callers; a second shutdown */
	struct job *q;
	size_t cap, head, len;
	uint64_t next_seq;
	unsigned idle, blocked, waiters; /* threads waiting on each condvar */
	uint64_t wait_target;            /* largest target of the current waiters */
	int state;
	int shutting; /* a shutdown call owns the join */
	int joined;
	unsigned nworkers, running;
	pthread_t *tids;
	uint64_t *cur_seq; /* per worker */
	uint64_t completed, failed, discarded, submits_blocked;
	uint64_t wakes; /* not_empty signals to a waiting worker */
	struct mpool_opts opts;
};

struct worker_arg {
	mpool_t *p;
	unsigned id;
};

/* the pool whose job this thread runs, if any (inline submit, -EDEADLK) */
static _Thread_local mpool_t *tl_pool;

/* Called with p->mu held. */
static void wake_waiters(mpool_t *p, uint64_t seq)
{
	if (p->waiters && seq < p->wait_target)
		pthread_cond_broadcast(&p->done);
}

static void *worker_main(void *varg)
{
	struct worker_arg *wa = varg;
	mpool_t *p = wa->p;
	unsigned id = wa->id;

	free(wa);
	tl_pool = p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->len == 0 && p->state == OPEN) {
			p->idle++;
			pthread_cond_wait(&p->not_empty, &p->mu);
			p->idle--;
		}
		if (p->len == 0 || p->state == MPOOL_CANCEL)
			break;
		struct job j = p->q[p->head];
		int signal_full = p->blocked > 0;

		p->head = p->head + 1 == p->cap ? 0 : p->head + 1;
		p->len--;
		p->cur_seq[id] = j.seq;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		if (signal_full)
			pthread_cond_signal(&p->not_full);

		int rc = j.fn(j.arg);

		if (rc && p->opts.on_error)
			p->opts.on_error(j.fn, j.arg, rc, p->opts.user);
		pthread_mutex_lock(&p->mu);
		p->completed++;
		p->failed += rc != 0;
		p->running--;
		p->cur_seq[id] = NO_SEQ;
		wake_waiters(p, j.seq);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Take every queued job out (state is MPOOL_CANCEL), hand each to
 * on_discard without the lock. Called and returns with p->mu held. */
static void discard_queue(mpool_t *p)
{
	while (p->len) {
		size_t n = p->len, k = 0;
		struct job *out = malloc(n * sizeof *out);

		if (!out)
			n = 1; /* one at a time, on the stack */
		struct job one;
		uint64_t last = 0;

		for (size_t i = 0; i < n; i++) {
			struct job *j = out ? &out[k++] : &one;

			*j = p->q[p->head];
			last = j->seq;
			p->head = p->head + 1 == p->cap ? 0 : p->head + 1;
			p->len--;
		}
		p->discarded += n;
		wake_waiters(p, last);
		if (p->blocked)
			pthread_cond_broadcast(&p->not_full);
		pthread_mutex_unlock(&p->mu);
		if (p->opts.on_discard)
			for (size_t i = 0; i < n; i++) {
				struct job *j = out ? &out[i] : &one;

				p->opts.on_discard(j->fn, j->arg, p->opts.user);
			}
		free(out);
		pthread_mutex_lock(&p->mu);
	}
}

static int join_workers(mpool_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->tids[i], NULL);
	return 0;
}

int mpool_create(mpool_t **out, const struct mpool_opts *opts)
{
	mpool_t *p;
	pthread_condattr_t ca;
	size_t cap;
	unsigned i;

	if (!out || !opts || opts->workers == 0 || opts->workers > MPOOL_MAX_WORKERS ||
	    opts->queue_capacity > MPOOL_MAX_QUEUE)
		return -EINVAL;
	cap = opts->queue_capacity ? opts->queue_capacity : DEFAULT_QUEUE;
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->q = malloc(cap * sizeof *p->q);
	p->tids = calloc(opts->workers, sizeof *p->tids);
	p->cur_seq = malloc(opts->workers * sizeof *p->cur_seq);
	if (!p->q || !p->tids || !p->cur_seq) {
		free(p->q);
		free(p->tids);
		free(p->cur_seq);
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < opts->workers; i++)
		p->cur_seq[i] = NO_SEQ;
	p->cap = cap;
	p->opts = *opts;
	p->nworkers = opts->workers;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->not_empty, &ca);
	pthread_cond_init(&p->not_full, &ca);
	pthread_cond_init(&p->done, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < p->nworkers; i++) {
		struct worker_arg *wa = malloc(sizeof *wa);

		if (wa)
			*wa = (struct worker_arg){ p, i };
		if (!wa || pthread_create(&p->tids[i], NULL, worker_main, wa) != 0) {
			free(wa);
			pthread_mutex_lock(&p->mu);
			p->state = MPOOL_CANCEL;
			pthread_cond_broadcast(&p->not_empty);
			pthread_mutex_unlock(&p->mu);
			join_workers(p, i);
			p->joined = 1;
			p->nworkers = 0;
			mpool_destroy(p);
			return -EAGAIN;
		}
	}
	*out = p;
	return 0;
}

static int timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline)
{
	struct timespec ts;

	if (deadline == MPOOL_FOREVER)
		return pthread_cond_wait(cv, mu);
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	return pthread_cond_timedwait(cv, mu, &ts);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* deadline: MPOOL_FOREVER, an absolute time, or -1 for try */
static int submit(mpool_t *p, mpool_job_fn fn, void *arg, int64_t deadline)
{
	int counted = 0, wake;

	if (!p || !fn)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->state != OPEN) {
			pthread_mutex_unlock(&p->mu);
			return -EPIPE;
		}
		if (p->len < p->cap)
			break;
		if (tl_pool == p) {
			/* a job of this pool: run it here rather than wait for
			 * a worker that may be this very thread */
			p->next_seq++;
			pthread_mutex_unlock(&p->mu);
			int rc = fn(arg);

			if (rc && p->opts.on_error)
				p->opts.on_error(fn, arg, rc, p->opts.user);
			pthread_mutex_lock(&p->mu);
			p->completed++;
			p->failed += rc != 0;
			pthread_mutex_unlock(&p->mu);
			return 0;
		}
		if (deadline == -1) {
			pthread_mutex_unlock(&p->mu);
			return -EAGAIN;
		}
		if (deadline != MPOOL_FOREVER && mono_ns() >= deadline) {
			pthread_mutex_unlock(&p->mu);
			return -ETIMEDOUT;
		}
		if (!counted) {
			p->submits_blocked++;
			counted = 1;
		}
		p->blocked++;
		timed_wait(&p->not_full, &p->mu, deadline);
		p->blocked--;
	}
	size_t tail = p->head + p->len;

	if (tail >= p->cap)
		tail -= p->cap;
	p->q[tail] = (struct job){ fn, arg, p->next_seq++ };
	p->len++;
	wake = p->idle > 0;
	if (wake)
		p->wakes++;
	pthread_mutex_unlock(&p->mu);
	if (wake)
		pthread_cond_signal(&p->not_empty);
	return 0;
}

int mpool_submit(mpool_t *p, mpool_job_fn fn, void *arg)
{
	return submit(p, fn, arg, MPOOL_FOREVER);
}

int mpool_try_submit(mpool_t *p, mpool_job_fn fn, void *arg)
{
	return submit(p, fn, arg, -1);
}

int mpool_submit_until(mpool_t *p, mpool_job_fn fn, void *arg, int64_t deadline)
{
	return submit(p, fn, arg, deadline < 0 ? 0 : deadline);
}

/* Called with p->mu held: has every job numbered below target finished? */
static int finished_below(const mpool_t *p, uint64_t target)
{
	if (p->len && p->q[p->head].seq < target)
		return 0;
	for (unsigned i = 0; i < p->nworkers; i++)
		if (p->cur_seq[i] < target)
			return 0;
	return 1;
}

int mpool_wait(mpool_t *p)
{
	uint64_t target;

	if (!p)
		return -EINVAL;
	if (tl_pool == p)
		return -EDEADLK; /* it would wait for its own job */
	pthread_mutex_lock(&p->mu);
	target = p->next_seq;
	while (!finished_below(p, target)) {
		if (p->waiters++ == 0 || target > p->wait_target)
			p->wait_target = target;
		pthread_cond_wait(&p->done, &p->mu);
		if (--p->waiters == 0)
			p->wait_target = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int mpool_shutdown(mpool_t *p, int how)
{
	if (!p || (how != MPOOL_DRAIN && how != MPOOL_CANCEL))
		return -EINVAL;
	if (tl_pool == p)
		return -EDEADLK;
	pthread_mutex_lock(&p->mu);
	if (p->shutting) {
		/* a second call: CANCEL still cancels what a DRAIN left queued */
		if (how == MPOOL_CANCEL && p->state == MPOOL_DRAIN) {
			p->state = MPOOL_CANCEL;
			discard_queue(p);
		}
		while (!p->joined) {
			p->waiters++;
			pthread_cond_wait(&p->done, &p->mu);
			p->waiters--;
		}
		pthread_mutex_unlock(&p->mu);
		return -EPIPE;
	}
	p->shutting = 1;
	p->state = how;
	if (how == MPOOL_CANCEL)
		discard_queue(p);
	pthread_cond_broadcast(&p->not_empty);
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->mu);
	join_workers(p, p->nworkers);
	pthread_mutex_lock(&p->mu);
	p->joined = 1;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void mpool_destroy(mpool_t *p)
{
	if (!p)
		return;
	if (!p->joined)
		mpool_shutdown(p, MPOOL_DRAIN);
	pthread_cond_destroy(&p->not_empty);
	pthread_cond_destroy(&p->not_full);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p->q);
	free(p->tids);
	free(p->cur_seq);
	free(p);
}

int mpool_stats(mpool_t *p, struct mpool_stats *out)
{
	if (!p || !out)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	*out = (struct mpool_stats){
		.submitted = p->next_seq,
		.completed = p->completed,
		.failed = p->failed,
		.discarded = p->discarded,
		.submits_blocked = p->submits_blocked,
		.futex_wakes = p->wakes,
		.queued = p->len,
		.running = p->running,
		.parked = p->idle,
		.workers = p->joined ? 0 : p->nworkers,
	};
	pthread_mutex_unlock(&p->mu);
	return 0;
}
