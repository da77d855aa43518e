/* pool_seed: the worker pool of Go by Example, written with weft.
 *
 *	func worker(id int, jobs <-chan int, results chan<- int) {
 *		for j := range jobs {
 *			time.Sleep(time.Second)
 *			results <- j * 2
 *		}
 *	}
 *	func main() {
 *		jobs := make(chan int, numJobs)
 *		results := make(chan int, numJobs)
 *		for w := 1; w <= 5; w++ {
 *			go worker(w, jobs, results)
 *		}
 *		for j := 1; j <= numJobs; j++ {
 *			jobs <- j
 *		}
 *		close(jobs)
 *		for a := 1; a <= numJobs; a++ {
 *			<-results
 *		}
 *	}
 *
 * Here the pool owns the workers and the job queue: 5 workers, 20 jobs,
 * each sleeping 100 ms (a stand-in for I/O), so the 20 jobs run in 4 waves
 * and take about 400 ms. Each job sends {job, result, worker} into a weft
 * results channel; main prints every result as it arrives, checks that each
 * job reported exactly once, and prints the elapsed time (not checked: it
 * depends on the machine).
 */
#include <weft.h>
#include <weft/pool.h>

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define NWORKERS 5
#define NJOBS 20

struct result {
	int job, value, worker;
};

struct job {
	int id;
	weft_chan_t *results;
};

/* A small number per pool thread, given on its first job (1, 2, ...). */
static atomic_int next_worker = 1;
static _Thread_local int worker_id;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int work(void *arg)
{
	struct job *j = arg;
	struct timespec io = { 0, 100 * 1000 * 1000 };

	if (!worker_id)
		worker_id = atomic_fetch_add(&next_worker, 1);
	nanosleep(&io, NULL); /* the "expensive task" */
	struct result r = { j->id, j->id * 2, worker_id };

	return weft_chan_send(j->results, &r);
}

int main(void)
{
	weft_pool_opts_t opts = { .workers = NWORKERS, .queue_capacity = NJOBS,
				  .name = "seed-worker" };
	struct job jobs[NJOBS];
	int seen[NJOBS + 1] = { 0 };
	weft_chan_t *results;
	weft_pool_t *pool;
	int64_t t0 = now_ms();
	int rc, i, ok = 1;

	if ((rc = weft_chan_create(&results, sizeof(struct result), NJOBS)) != 0 ||
	    (rc = weft_pool_create(&pool, &opts)) != 0) {
		printf("create: %s (%d)\n", weft_strerror(rc), rc);
		return 1;
	}
	for (i = 0; i < NJOBS; i++) {
		jobs[i] = (struct job){ i + 1, results };
		if ((rc = weft_pool_submit(pool, work, &jobs[i])) != 0) {
			printf("submit: %s (%d)\n", weft_strerror(rc), rc);
			return 1;
		}
	}
	for (i = 0; i < NJOBS; i++) {
		struct result r;

		if ((rc = weft_chan_recv(results, &r)) != 0) {
			printf("recv: %s (%d)\n", weft_strerror(rc), rc);
			return 1;
		}
		printf("result: job %d -> %d (worker %d)\n", r.job, r.value, r.worker);
		if (r.job < 1 || r.job > NJOBS || r.value != 2 * r.job || seen[r.job]++)
			ok = 0;
	}
	/* close the pool (Go's close(jobs)): every job has run */
	rc = weft_pool_shutdown(pool, WEFT_POOL_DRAIN);
	weft_pool_destroy(pool);
	weft_chan_destroy(results);
	for (i = 1; i <= NJOBS; i++)
		ok &= seen[i] == 1;
	if (rc || !ok) {
		printf("FAIL: shutdown %d, or a job reported twice or never\n", rc);
		return 1;
	}
	printf("every job once: %d results from %d workers in %lld ms\n", NJOBS, NWORKERS,
	       (long long)(now_ms() - t0));
	return 0;
}
