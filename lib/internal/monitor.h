/* lib/internal/monitor.h: the one monitor of the process (Go's sysmon).
 *
 * weft has two kinds of workers that can be held by what they run: pool
 * workers (threads running a job) and carriers (threads running a task).
 * Both are watched by the same thread, and both ask the same question of
 * a worker that has not moved on for a while: is it on a CPU (computing),
 * or blocked outside weft (a system call, a sleep, a pthread lock)? That
 * question is answered here, once (weft__probe_look).
 *
 * Watches. A pool with more workers than cores, and the task runtime once
 * started, each add a weft__watch_t. The monitor thread (started by the
 * first add, then kept for the process) calls each watch's look when its
 * time comes; look returns the nanoseconds until it wants the next one, or
 * WEFT__WATCH_IDLE to be left alone until weft__monitor_kick. Looks run one
 * at a time under the monitor's lock, so weft__monitor_remove returning
 * means no look of that watch runs or will run: the pool may be freed.
 * A look may take other locks (the pool's, the runtime's) but must not
 * call add or remove.
 *
 * weft__monitor_kick is lock-free and async-signal-safe (two atomic stores
 * and a futex wake): the runtime's SIGQUIT handler kicks it.
 */
#ifndef WEFT_INTERNAL_MONITOR_H
#define WEFT_INTERNAL_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#define WEFT__WATCH_IDLE INT64_MAX

typedef struct weft__watch weft__watch_t;
struct weft__watch {
	/* one look at the workers; returns ns to the next, or WEFT__WATCH_IDLE */
	int64_t (*look)(weft__watch_t *w, int64_t now);
	/* the monitor's (its lock) */
	weft__watch_t *next;
	int64_t due;     /* the next look; INT64_MAX: until kicked */
	uint32_t kicked; /* 1: look at once (set by kick, taken by the monitor) */
};

/* Watch with w->look set; the first look comes at once. 0, or -EAGAIN /
 * -ENOMEM when the monitor thread cannot start (w is then not watched). */
int weft__monitor_add(weft__watch_t *w);
/* Stop watching; on return no look of w runs or will run. */
void weft__monitor_remove(weft__watch_t *w);
/* Look at w now (a watch that said IDLE has something to decide). */
void weft__monitor_kick(weft__watch_t *w);

/* ---- is a thread blocked outside weft? ----
 *
 * A probe keeps, for one kernel thread, what the last look saw: its run
 * plus runqueue-wait time (/proc/self/task/TID/schedstat) and the time it
 * slept inside weft (its weft__sleep_note_t, park.h; 0 for a thread that
 * keeps none). Between two looks, the wall time left after both is time
 * the thread was blocked outside weft. */
typedef struct weft__probe {
	uint32_t tid; /* the thread fd reads */
	int fd;       /* its schedstat, or -1 */
	int64_t at;   /* when we last read it (0: not yet) */
	uint64_t busy;
	uint64_t slept;
} weft__probe_t;

enum weft__probe_verdict {
	WEFT__PROBE_FIRST,   /* first reading: judged at the next look */
	WEFT__PROBE_ON_CPU,  /* on a CPU (or waiting inside weft) most of the time */
	WEFT__PROBE_OFF_CPU, /* blocked outside weft most of the time */
	WEFT__PROBE_UNKNOWN, /* no schedstat (no /proc, the thread gone) */
};

void weft__probe_init(weft__probe_t *p);
/* Judge thread tid since the last look (a new tid starts over). */
enum weft__probe_verdict weft__probe_look(weft__probe_t *p, uint32_t tid, uint64_t slept_ns,
					  int64_t now);
/* Forget the last reading (the thread moved on): the next look is FIRST. */
static inline void weft__probe_reset(weft__probe_t *p)
{
	p->at = 0;
}
void weft__probe_close(weft__probe_t *p);

#endif
