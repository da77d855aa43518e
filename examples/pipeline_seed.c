/* pipeline_seed: the seed's pipeline (generate -> square -> filterEven) as
 * a weft pipeline, stopped by context cancellation.
 *
 *	func main() {
 *		ctx, cancel := context.WithCancel(context.Background())
 *		out := filterEven(ctx, square(ctx, generate(ctx)))
 *		for v := range out {
 *			if v > 1000000 { cancel(); break }
 *		}
 *	}
 *
 * In Go every stage checks ctx.Done() by hand in a select around each send
 * and receive. Here the stages are three fns that only compute and emit;
 * the pipeline watches its context for them: generate emits forever,
 * main reads the even squares until one passes a million and cancels,
 * and every worker (blocked in an emit or a receive at that moment) returns
 * promptly; weft_pipeline_wait joins them all and returns -ECANCELED. It
 * prints what it read, then the per-stage metrics (weft_pipeline_stats).
 */
#include <stdio.h>

#include <weft.h>

static int generate(weft_emit_t *out, void *user)
{
	(void)user;
	for (long i = 0;; i++) {
		int rc = weft_emit(out, &i); /* the context's error once canceled */
		if (rc)
			return rc;
	}
}

static int square(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	long v = *(const long *)in;
	v *= v;
	return weft_emit(out, &v);
}

static int filter_even(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	long v = *(const long *)in;
	return v % 2 == 0 ? weft_emit(out, &v) : 0;
}

int main(void)
{
	weft_pipeline_t *p;
	weft_chan_t *nums, *squares, *evens;
	if (weft_pipeline_create(&p, NULL))
		return 1;
	/* unbuffered channels, one worker each, as the seed */
	weft_stage_opts_t g = {.name = "generate", .out_elem_size = sizeof(long)};
	weft_stage_opts_t s = {.name = "square"};
	weft_stage_opts_t f = {.name = "filterEven"};
	if (weft_pipeline_source(p, &nums, generate, NULL, &g) ||
	    weft_pipeline_stage(p, nums, &squares, square, NULL, &s) ||
	    weft_pipeline_stage(p, squares, &evens, filter_even, NULL, &f))
		return 1;

	int64_t t0 = weft_now();
	long v, last = -1, n = 0, sum = 0;
	int in_order = 1;
	while (weft_chan_recv_ctx(evens, &v, weft_pipeline_ctx(p)) == 0) {
		in_order &= v > last;
		last = v;
		n++;
		sum += v;
		if (v > 1000000) {
			weft_pipeline_cancel(p);
			break;
		}
	}
	int64_t us = (weft_now() - t0) / 1000;
	int rc = weft_pipeline_wait(p);
	printf("read %ld even squares %s, the last %ld (sum %ld) in %.1f us\n", n,
	       in_order ? "in order" : "OUT OF ORDER", last, sum, (double)us);
	weft_stage_stats_t st[3];
	long k = weft_pipeline_stats(p, st, 3);
	int stopped = 0;
	for (long i = 0; i < k; i++) {
		printf("  %-10s in %8llu  out %8llu  workers now %u  busy %.1f us\n", st[i].name,
		       (unsigned long long)st[i].in, (unsigned long long)st[i].out, st[i].workers,
		       (double)st[i].busy_ns / 1e3);
		stopped += st[i].workers == 0;
	}
	printf("canceled: wait returned %d (%s), %d of 3 stages stopped, every worker joined\n", rc,
	       weft_strerror(rc), stopped);
	weft_pipeline_destroy(p);
	return rc == -ECANCELED && stopped == 3 && in_order && n == 502 ? 0 : 1;
}
