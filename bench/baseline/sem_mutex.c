/* bench/baseline/sem_mutex.c: the mutex + condition variable weighted
 * semaphore (see sem_mutex.h). */
#include "sem_mutex.h"

#include <errno.h>
#include <stddef.h>
#include <time.h>

struct msem_waiter {
	struct msem_waiter *next, *prev;
	int64_t n;
	int granted; /* set under s->mu by the release that hands the tokens */
	pthread_cond_t cv;
};

int msem_init(msem_t *s, int64_t capacity)
{
	int rc;

	if (!s || capacity <= 0)
		return -EINVAL;
	rc = pthread_mutex_init(&s->mu, NULL);
	if (rc)
		return -rc;
	s->capacity = capacity;
	s->free = capacity;
	s->head = s->tail = NULL;
	return 0;
}

void msem_destroy(msem_t *s)
{
	if (s)
		pthread_mutex_destroy(&s->mu);
}

static int bad_n(const msem_t *s, int64_t n)
{
	return !s || n < 0 || n > s->capacity;
}

static void unlink_waiter(msem_t *s, struct msem_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		s->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		s->tail = w->prev;
	w->next = w->prev = NULL;
}

/* Hand free tokens to the head waiters, in order, as far as they fit.
 * Called with s->mu held. Signals under the lock: the waiter's condition
 * variable lives on its stack and may be gone once the lock is dropped. */
static void grant(msem_t *s)
{
	struct msem_waiter *w;

	while ((w = s->head) && w->n <= s->free) {
		s->free -= w->n;
		unlink_waiter(s, w);
		w->granted = 1;
		pthread_cond_signal(&w->cv);
	}
}

int msem_try_acquire(msem_t *s, int64_t n)
{
	int rc = -EAGAIN;

	if (bad_n(s, n))
		return -EINVAL;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (!s->head && s->free >= n) {
		s->free -= n;
		rc = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int msem_acquire_until(msem_t *s, int64_t n, int64_t deadline)
{
	struct msem_waiter w = { .n = n };
	pthread_condattr_t ca;
	struct timespec ts;
	int rc = 0;

	if (bad_n(s, n))
		return -EINVAL;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (!s->head && s->free >= n) { /* the fast path: lock, check, unlock */
		s->free -= n;
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	if (deadline != MSEM_FOREVER) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec >= deadline) {
			pthread_mutex_unlock(&s->mu);
			return -ETIMEDOUT;
		}
		ts.tv_sec = deadline / 1000000000LL;
		ts.tv_nsec = deadline % 1000000000LL;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	/* enqueue at the tail */
	w.prev = s->tail;
	if (s->tail)
		s->tail->next = &w;
	else
		s->head = &w;
	s->tail = &w;
	while (!w.granted) {
		if (deadline == MSEM_FOREVER) {
			pthread_cond_wait(&w.cv, &s->mu);
		} else if (pthread_cond_timedwait(&w.cv, &s->mu, &ts) == ETIMEDOUT &&
			   !w.granted) {
			/* give up: if we were the head, the waiters behind us
			 * may fit now */
			int was_head = s->head == &w;

			unlink_waiter(s, &w);
			if (was_head)
				grant(s);
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

int msem_acquire(msem_t *s, int64_t n)
{
	return msem_acquire_until(s, n, MSEM_FOREVER);
}

int msem_release(msem_t *s, int64_t n)
{
	if (bad_n(s, n))
		return -EINVAL;
	if (n == 0)
		return 0;
	pthread_mutex_lock(&s->mu);
	/* over-release: more than capacity would be free */
	if (s->free > s->capacity - n) {
		pthread_mutex_unlock(&s->mu);
		return -EINVAL;
	}
	s->free += n;
	if (s->head)
		grant(s);
	pthread_mutex_unlock(&s->mu);
	return 0;
}
