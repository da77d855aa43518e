/* task_pipeline: the seed's pipeline, its stages as tasks, stopped by a
 * context.
 *
 *	func generate(ctx context.Context) <-chan int {
 *		out := make(chan int)
 *		go func() {
 *			defer close(out)
 *			for i := 0; ; i++ {
 *				select {
 *				case out <- i:
 *				case <-ctx.Done():
 *					return
 *				}
 *			}
 *		}()
 *		return out
 *	}
 *	// square and filterEven alike: range over in, select on the send
 *	// and ctx.Done()
 *	func main() {
 *		ctx, cancel := context.WithCancel(context.Background())
 *		out := filterEven(ctx, square(ctx, generate(ctx)))
 *		for v := range out {
 *			if v > 1000000 { cancel(); break }
 *		}
 *	}
 *
 * Here every stage is a task (weft_go) connected by unbuffered channels,
 * so each hand-off is a switch in user space on one core. main (a plain
 * thread) reads the even squares until one passes a million, then cancels;
 * every stage's send or receive returns the context's error, the stages
 * close their outputs and finish, and main waits for all three on a
 * WaitGroup. It prints what it read and that every stage stopped.
 */
#include <stdatomic.h>
#include <stdio.h>

#include <weft.h>

struct stage {
	weft_ctx_t *ctx;
	weft_chan_t *in, *out;
	weft_wg_t *wg;
	atomic_int *stopped_by_cancel;
	const char *name;
};

/* send v, or give up when the context is done */
static int emit(struct stage *s, long v)
{
	return weft_chan_send_ctx(s->out, &v, s->ctx);
}

static void finish(struct stage *s, int rc)
{
	/* the context's error, or the input closed by a stage that saw it */
	if (rc == -ECANCELED || rc == -EPIPE)
		atomic_fetch_add(s->stopped_by_cancel, 1);
	weft_chan_close(s->out);
	weft_wg_done(s->wg);
}

static void generate(void *p)
{
	struct stage *s = p;
	int rc;
	for (long i = 0;; i++)
		if ((rc = emit(s, i)) != 0)
			break;
	finish(s, rc);
}

static void square(void *p)
{
	struct stage *s = p;
	long v;
	int rc;
	while ((rc = weft_chan_recv_ctx(s->in, &v, s->ctx)) == 0)
		if ((rc = emit(s, v * v)) != 0)
			break;
	finish(s, rc);
}

static void filter_even(void *p)
{
	struct stage *s = p;
	long v;
	int rc;
	while ((rc = weft_chan_recv_ctx(s->in, &v, s->ctx)) == 0)
		if (v % 2 == 0 && (rc = emit(s, v)) != 0)
			break;
	finish(s, rc);
}

int main(void)
{
	weft_ctx_t *ctx;
	weft_chan_t *nums, *squares, *evens;
	weft_wg_t wg;
	atomic_int stopped = 0;

	if (weft_ctx_with_cancel(&ctx, weft_ctx_background()) ||
	    weft_chan_create(&nums, sizeof(long), 0) || weft_chan_create(&squares, sizeof(long), 0) ||
	    weft_chan_create(&evens, sizeof(long), 0) || weft_wg_init(&wg))
		return 1;
	struct stage st[3] = {
		{ctx, NULL, nums, &wg, &stopped, "generate"},
		{ctx, nums, squares, &wg, &stopped, "square"},
		{ctx, squares, evens, &wg, &stopped, "filterEven"},
	};
	void (*fns[3])(void *) = {generate, square, filter_even};
	weft_wg_add(&wg, 3);
	for (int i = 0; i < 3; i++) {
		weft_task_opts_t o = {.name = st[i].name};
		if (weft_go_opts(fns[i], &st[i], &o) != 0)
			return 1;
	}

	long v, n = 0, sum = 0;
	int64_t t0 = weft_now();
	while (weft_chan_recv(evens, &v) == 0) {
		if (v != (2 * n) * (2 * n)) { /* the n-th even square */
			fprintf(stderr, "out of order: %ld as the %ld-th\n", v, n);
			return 1;
		}
		n++;
		sum += v;
		if (v > 1000000) {
			weft_ctx_cancel(ctx);
			break;
		}
	}
	int64_t ns = weft_now() - t0;
	weft_wg_wait(&wg);
	printf("read %ld even squares in order, the last %ld (sum %ld) in %.1f us\n", n, v, sum,
	       ns / 1e3);
	printf("canceled: %d of 3 stages stopped, every task finished\n", atomic_load(&stopped));
	weft_ctx_release(ctx);
	weft_chan_destroy(nums);
	weft_chan_destroy(squares);
	weft_chan_destroy(evens);
	return 0;
}
