/* lib/internal/monitor.c: the one monitor thread and the probe that tells a
 * thread blocked outside weft from one on a CPU (see monitor.h).
 *
 * Ordering (kick vs. sleep): a kicker stores kicked, then increments word
 * (a full RMW), then futex-wakes it. The monitor loads word (acquire),
 * then the kicked flags, then sleeps with futex_wait(word, the value it
 * loaded): if the increment came before its load, the acquire makes the
 * kicked store visible; if after, the kernel's compare fails or the wake
 * finds it asleep. No kick is lost.
 */
#include "internal/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal/atomic.h"
#include "internal/futex.h"
#include "internal/park.h"
#include "internal/sys.h"
#include <weft/common.h>

static struct {
	weft__mutex_t lock; /* the list; held by every look */
	weft__watch_t *head;
	bool started;       /* the thread runs (lock) */
	uint32_t word;      /* futex word: +1 per kick */
} mon;

static void *monitor_main(void *arg)
{
	(void)arg;
	/* weft's own thread: nobody is to cancel it (its probes read /proc
	 * with cancellation points, under the monitor's lock) */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_setname_np(pthread_self(), "weft-monitor");
	weft__mutex_lock(&mon.lock);
	for (;;) {
		/* acquire: a kick's kicked store before its increment */
		uint32_t seq = weft__ld32_acq(&mon.word);
		int64_t now = weft_now(), next = INT64_MAX;
		for (weft__watch_t *w = mon.head; w; w = w->next) {
			uint32_t one = 1;
			if (weft__ld32_rlx(&w->kicked) && weft__cas32(&w->kicked, &one, 0))
				w->due = now;
			if (w->due <= now) {
				int64_t d = w->look(w, now);
				now = weft_now();
				w->due = d == WEFT__WATCH_IDLE ? INT64_MAX : now + d;
			}
			if (w->due < next)
				next = w->due;
		}
		weft__mutex_unlock(&mon.lock);
		if (next > weft_now())
			weft__futex_wait(&mon.word, seq, next == INT64_MAX ? WEFT_FOREVER : next);
		weft__mutex_lock(&mon.lock);
	}
	return NULL;
}

int weft__monitor_add(weft__watch_t *w)
{
	int rc = 0;
	weft__mutex_lock(&mon.lock);
	if (!mon.started) {
		pthread_t tid;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		int e = weft__sys_thread_create(&tid, &a, monitor_main, NULL);
		pthread_attr_destroy(&a);
		if (e)
			rc = e == ENOMEM ? -ENOMEM : -EAGAIN;
		else
			mon.started = true;
	}
	if (rc == 0) {
		w->due = 0; /* look at once */
		w->kicked = 0;
		w->next = mon.head;
		mon.head = w;
		/* (it may sleep until a far deadline: the new watch is due) */
		weft__faa32(&mon.word, 1);
		weft__futex_wake(&mon.word, 1);
	}
	weft__mutex_unlock(&mon.lock);
	return rc;
}

void weft__monitor_remove(weft__watch_t *w)
{
	weft__mutex_lock(&mon.lock);
	for (weft__watch_t **pp = &mon.head; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	weft__mutex_unlock(&mon.lock);
}

void weft__monitor_kick(weft__watch_t *w)
{
	weft__st32_rlx(&w->kicked, 1);
	/* full RMW: orders the store above before the monitor's next look
	 * (see Ordering) */
	weft__faa32(&mon.word, 1);
	weft__futex_wake(&mon.word, 1);
}

/* ---- the probe ---- */

void weft__probe_init(weft__probe_t *p)
{
	*p = (weft__probe_t){.fd = -1};
}

void weft__probe_close(weft__probe_t *p)
{
	if (p->fd >= 0)
		close(p->fd);
	weft__probe_init(p);
}

/* Run + runqueue-wait ns of thread tid; false if unknown (no /proc, or
 * the thread is gone). The fd is kept, reopened for a new tid. */
static bool sched_busy(weft__probe_t *p, uint32_t tid, uint64_t *busy)
{
	char buf[96];
	if (p->tid != tid || p->fd < 0) {
		if (p->fd >= 0)
			close(p->fd);
		snprintf(buf, sizeof buf, "/proc/self/task/%u/schedstat", tid);
		p->fd = open(buf, O_RDONLY | O_CLOEXEC);
		p->tid = tid;
		p->at = 0;
		if (p->fd < 0)
			return false;
	}
	ssize_t n = pread(p->fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *end;
	unsigned long long run = strtoull(buf, &end, 10);
	unsigned long long wait = strtoull(end, NULL, 10);
	*busy = run + wait;
	return true;
}

enum weft__probe_verdict weft__probe_look(weft__probe_t *p, uint32_t tid, uint64_t slept_ns,
					  int64_t now)
{
	uint64_t busy;
	if (!sched_busy(p, tid, &busy))
		return WEFT__PROBE_UNKNOWN;
	enum weft__probe_verdict v = WEFT__PROBE_FIRST;
	int64_t wall = now - p->at;
	if (p->at != 0 && wall > 0) {
		int64_t off = wall - (int64_t)(busy - p->busy) - (int64_t)(slept_ns - p->slept);
		v = off * 2 > wall ? WEFT__PROBE_OFF_CPU : WEFT__PROBE_ON_CPU;
	}
	p->at = now;
	p->busy = busy;
	p->slept = slept_ns;
	return v;
}
