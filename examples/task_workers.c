/* task_workers: the seed's channel worker pool, line for line, with its
 * goroutines as tasks.
 *
 *	jobs := make(chan int, 200)
 *	results := make(chan int, 200)
 *	var wg sync.WaitGroup
 *	for w := 0; w < 100; w++ {
 *		wg.Add(1)
 *		go func() {
 *			defer wg.Done()
 *			for j := range jobs {
 *				results <- j * j
 *			}
 *		}()
 *	}
 *	go func() { for j := 0; j < 1000000; j++ { jobs <- j }; close(jobs) }()
 *	go func() { wg.Wait(); close(results) }()
 *	for r := range results { ... }
 *
 * 100 worker tasks on a machine with a few cores: a worker that waits for a
 * job costs a switch in user space, not a sleeping kernel thread. As Go's
 * main is a goroutine, the loop over results runs in a task too (main, a
 * plain thread, waits for it): a thread that receives from tasks sleeps
 * and is woken through the kernel whenever the channel runs dry. It checks
 * that every job's result came back exactly once; main prints the time per
 * job (not checked: it depends on the machine) and peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define WORKERS 100
#define JOBS 1000000L
#define QUEUE 200

static weft_chan_t *jobs, *results;
static weft_wg_t wg;

static void worker(void *arg)
{
	(void)arg;
	long j;
	while (weft_chan_recv(jobs, &j) == 0) {
		long r[2] = {j, j * j};
		weft_chan_send(results, r);
	}
	weft_wg_done(&wg);
}

static void producer(void *arg)
{
	(void)arg;
	for (long j = 0; j < JOBS; j++)
		weft_chan_send(jobs, &j);
	weft_chan_close(jobs);
}

static void closer(void *arg)
{
	(void)arg;
	weft_wg_wait(&wg);
	weft_chan_close(results);
}

struct drain {
	unsigned char *seen;
	weft_wg_t *done;
	long got;
	int bad;
};

static void drain_results(void *arg)
{
	struct drain *d = arg;
	long r[2];
	while (weft_chan_recv(results, r) == 0) {
		if (r[0] < 0 || r[0] >= JOBS || r[1] != r[0] * r[0] || d->seen[r[0]]++) {
			fprintf(stderr, "bad or repeated result for job %ld\n", r[0]);
			d->bad = 1;
		}
		d->got++;
	}
	weft_wg_done(d->done);
}

static long peak_rss_kb(void)
{
	char line[256];
	long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

int main(void)
{
	unsigned char *seen = calloc(JOBS, 1);
	if (!seen || weft_chan_create(&jobs, sizeof(long), QUEUE) ||
	    weft_chan_create(&results, 2 * sizeof(long), QUEUE) || weft_wg_init(&wg))
		return 1;
	int64_t t0 = weft_now();
	weft_wg_add(&wg, WORKERS);
	for (int w = 0; w < WORKERS; w++)
		if (weft_go(worker, NULL))
			return 1;
	if (weft_go(producer, NULL) || weft_go(closer, NULL))
		return 1;
	weft_wg_t drained;
	weft_wg_init(&drained);
	weft_wg_add(&drained, 1);
	struct drain d = {seen, &drained, 0, 0};
	if (weft_go(drain_results, &d))
		return 1;
	weft_wg_wait(&drained);
	if (d.bad)
		return 1;
	long got = d.got;
	int64_t ns = weft_now() - t0;
	if (got != JOBS) {
		fprintf(stderr, "%ld results of %ld\n", got, JOBS);
		return 1;
	}
	printf("%ld jobs through %d worker tasks in %lld ms: %lld ns per job, each result once\n",
	       JOBS, WORKERS, (long long)(ns / 1000000), (long long)(ns / JOBS));
	printf("peak RSS: %.1f MB\n", peak_rss_kb() / 1024.0);
	weft_chan_destroy(jobs);
	weft_chan_destroy(results);
	free(seen);
	return 0;
}
