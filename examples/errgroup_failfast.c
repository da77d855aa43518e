/* errgroup_failfast: the first error cancels the siblings, as in Go's
 *
 *	g, ctx := errgroup.WithContext(ctx)
 *	for i := 0; i < 8; i++ {
 *		g.Go(func() error {
 *			if i == 0 {
 *				time.Sleep(20 * time.Millisecond)
 *				return syscall.EIO // fails
 *			}
 *			select {
 *			case r := <-results: // never comes
 *				return use(r)
 *			case <-ctx.Done():
 *				return ctx.Err() // canceled by the failure
 *			}
 *		})
 *	}
 *	err := g.Wait() // the first error, never ctx.Err()
 *
 * Task 0 fails with -EIO after 20 ms. The other seven block on the group's
 * context: half in weft_chan_recv_ctx on a channel nobody sends to, half in
 * weft_ctx_wait. The failure cancels the group's context with -EIO as its
 * cause; every blocked sibling returns -ECANCELED at once, and
 * weft_group_wait returns -EIO: the first error, not the cancellations it
 * caused. The siblings wait at most 10 s, so a missed cancellation shows
 * up as a wrong count (a -ETIMEDOUT), not as a hang.
 */
#include <weft.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define NTASKS 8
#define FAIL_AFTER_NS (20 * 1000 * 1000LL) /* 20 ms */
#define PATIENCE_NS (10 * 1000 * 1000 * 1000LL) /* 10 s */

struct shared {
	weft_chan_t *results; /* nobody ever sends on it */
	atomic_int canceled;  /* siblings that returned -ECANCELED */
	atomic_int other;     /* siblings that returned anything else */
	_Atomic int64_t failed_at;  /* when task 0 failed (ns) */
	_Atomic int64_t last_exit;  /* when the last sibling returned (ns) */
};

struct task {
	struct shared *sh;
	int id;
};

/* Text for an error: weft's own codes by weft_strerror, the application's
 * (here EIO) by the C library. */
static const char *errtext(int err)
{
	const char *s = weft_strerror(err);

	return strcmp(s, "unknown error") ? s : strerror(err < 0 ? -err : err);
}

static int task(weft_ctx_t *ctx, void *arg)
{
	struct task *t = arg;
	struct shared *sh = t->sh;
	int rc, r;

	if (t->id == 0) {
		/* The failing task: some work (a sleep that a cancellation
		 * would cut short), then an error. */
		weft_ctx_wait(ctx, weft_deadline(FAIL_AFTER_NS));
		atomic_store(&sh->failed_at, weft_now());
		return -EIO;
	}

	/* The siblings: wait for something that never comes, or for the
	 * group's context to be done, whichever is first. */
	if (t->id % 2)
		rc = weft_chan_recv_ctx(sh->results, &r, ctx);
	else
		rc = weft_ctx_wait(ctx, weft_deadline(PATIENCE_NS));

	if (rc == -ECANCELED)
		atomic_fetch_add(&sh->canceled, 1);
	else
		atomic_fetch_add(&sh->other, 1);

	/* Record the latest exit (a CAS max). */
	{
		int64_t now = weft_now(), prev = atomic_load(&sh->last_exit);

		while (prev < now && !atomic_compare_exchange_weak(&sh->last_exit, &prev, now))
			;
	}
	return rc;
}

int main(void)
{
	struct shared sh = { 0 };
	struct task tasks[NTASKS];
	weft_group_t *g;
	weft_ctx_t *ctx;
	int i, err, cause, ok;
	int64_t stop_ms;

	if (weft_chan_create(&sh.results, sizeof(int), 1) ||
	    weft_group_create(&g, NULL, &ctx)) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	atomic_init(&sh.canceled, 0);
	atomic_init(&sh.other, 0);
	atomic_init(&sh.failed_at, 0);
	atomic_init(&sh.last_exit, 0);

	for (i = 0; i < NTASKS; i++) {
		tasks[i] = (struct task){ .sh = &sh, .id = i };
		if (weft_group_go(g, task, &tasks[i])) {
			fprintf(stderr, "weft_group_go failed\n");
			return 1;
		}
	}

	err = weft_group_wait(g);   /* the first error */
	cause = weft_ctx_cause(ctx); /* why the group's context was canceled */
	stop_ms = (atomic_load(&sh.last_exit) - atomic_load(&sh.failed_at)) / 1000000;

	printf("first error: %s (%d)\n", errtext(err), err);
	printf("canceled siblings: %d\n", atomic_load(&sh.canceled));
	printf("cause: %s (%d)\n", errtext(cause), cause);
	printf("siblings stopped within %lld ms of the failure\n", (long long)stop_ms);

	ok = err == -EIO && cause == -EIO && atomic_load(&sh.canceled) == NTASKS - 1 &&
	     atomic_load(&sh.other) == 0;

	weft_group_destroy(g); /* also releases ctx */
	weft_chan_destroy(sh.results);
	return ok ? 0 : 1;
}
