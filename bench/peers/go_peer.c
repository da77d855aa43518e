/* bench/peers/go_peer.c: the "go" strategy of the pool family (its
 * streaming cases, bench/pool.h), of the channel family (its P x C
 * cases, bench/chan.h) and of the breaker family (bench/breaker.h). It runs the case as Go's own program,
 * bench/peers/go_peer.go built into WEFT_GO_PEER by bench/meson.build, in a
 * child process, and reads back what that program measured over its own
 * timed span: wall, CPU and context switches (its getrusage), peak RSS
 * (its VmHWM: the Go process alone, where the other strategies' figure is
 * the whole weft-bench process's). Futex calls are not known (-1). A child that fails,
 * prints something else, or outlives the timeout (then it is killed) fails
 * the run with the reason. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../measure.h"
#include "../breaker.h"
#include "../chan.h"
#include "../map.h"
#include "../pool.h"

extern char **environ;

#define RESULTS_CAP 200 /* as bench/pool.c's results channel */

/* Read the child's stdout until EOF or the deadline. Returns bytes read,
 * or -1 on timeout. */
static ssize_t read_until(int fd, char *buf, size_t size, int64_t deadline)
{
	size_t n = 0;

	for (;;) {
		int64_t left = deadline - bench_now_ns();
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		if (left <= 0)
			return -1;
		int rc = poll(&pf, 1, (int)(left / 1000000 + 1));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			continue; /* the deadline is checked above */
		ssize_t got = read(fd, buf + n, size - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
		if (n == size - 1)
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

/* The last line a peer printed (the map family reads its extra fields). */
static char last_line[512];

/* What the peer measured over its timed span. */
struct peer_run {
	uint64_t items;
	int64_t wall_ns, cpu_ns, ctx_switches, peak_rss_kb;
};

/* into any family's result (the same four fields in each) */
#define PEER_FIGURES(r, pr)                                                              \
	((r)->wall_ns = (pr).wall_ns, (r)->cpu_ns = (pr).cpu_ns,                         \
	 (r)->ctx_switches = (pr).ctx_switches, (r)->peak_rss_kb = (pr).peak_rss_kb)

/* Run WEFT_GO_PEER with args (NULL-terminated, after argv[0]) and parse its
 * line. 0, or -1 with err set. */
static int run_peer(char *const *args, uint64_t items, int64_t timeout_ns, struct peer_run *out,
		    char *err, size_t errsize)
{
	char *argv[8] = { WEFT_GO_PEER };
	char line[512];
	int fds[2], status;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	for (int i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errsize, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	int rc = posix_spawn(&pid, WEFT_GO_PEER, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		snprintf(err, errsize, "spawn %s: %s", WEFT_GO_PEER, strerror(rc));
		return -1;
	}
	ssize_t n = read_until(fds[0], line, sizeof line, bench_now_ns() + timeout_ns);
	close(fds[0]);
	if (n >= 0)
		memcpy(last_line, line, sizeof line);
	if (n < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n < 0) {
		snprintf(err, errsize, "go peer: hung (killed after %" PRId64 " s)",
			 timeout_ns / 1000000000);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errsize, "go peer: exit status %d (its stderr above says why)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	if (sscanf(line,
		   "items=%" SCNu64 " wall_ns=%" SCNd64 " cpu_ns=%" SCNd64 " ctx_switches=%" SCNd64
		   " peak_rss_kb=%" SCNd64,
		   &out->items, &out->wall_ns, &out->cpu_ns, &out->ctx_switches,
		   &out->peak_rss_kb) != 5 ||
	    out->items != items || out->wall_ns <= 0) {
		snprintf(err, errsize, "go peer: unexpected output: %.120s", line);
		return -1;
	}
	return 0;
}

static int go_run_stream(const struct pool_bench_case *c, uint64_t jobs, int64_t timeout_ns,
			 struct pool_bench_result *out)
{
	char a_jobs[24], a_workers[24], a_queue[24], a_results[24], a_sleep[24];
	char *args[] = { "pool", a_jobs, a_workers, a_queue, a_results, a_sleep, NULL };
	struct peer_run pr;

	snprintf(a_jobs, sizeof a_jobs, "%" PRIu64, jobs);
	snprintf(a_workers, sizeof a_workers, "%u", c->workers);
	snprintf(a_queue, sizeof a_queue, "%zu", c->queue);
	snprintf(a_results, sizeof a_results, "%d", RESULTS_CAP);
	snprintf(a_sleep, sizeof a_sleep, "%" PRId64, c->sleep_ns);
	if (run_peer(args, jobs, timeout_ns, &pr, out->error, sizeof out->error) != 0)
		return -1;
	PEER_FIGURES(out, pr);
	out->rss_per_run = 1; /* a fresh process per run */
	return 0;
}

const struct pool_strategy pool_strategy_go = {
	.name = "go",
	.run_stream = go_run_stream,
};

int go_peer_chan_run(const struct chan_bench_case *c, uint64_t items, int64_t timeout_ns,
		     struct chan_bench_result *r)
{
	char a_p[16], a_c[16], a_cap[24], a_items[24];
	char *args[] = { "chan", a_p, a_c, a_cap, a_items, NULL };
	struct peer_run pr;

	/* the same program in Go: chan P C CAP ITEMS, or the pipeline,
	 * fan-out and seed pool shapes (N: the workers) */
	if (c->kind == CHAN_BENCH_PIPELINE)
		args[0] = "pipeline";
	else if (c->kind == CHAN_BENCH_FANOUT)
		args[0] = "fanout";
	else if (c->kind == CHAN_BENCH_SEEDPOOL)
		args[0] = "seedpool";
	snprintf(a_p, sizeof a_p, "%u", c->producers);
	snprintf(a_c, sizeof a_c, "%u", c->consumers);
	snprintf(a_cap, sizeof a_cap, "%zu", c->capacity);
	snprintf(a_items, sizeof a_items, "%" PRIu64, items);
	if (run_peer(args, items, timeout_ns, &pr, r->error, sizeof r->error) != 0)
		return -1;
	r->items = items;
	PEER_FIGURES(r, pr);
	r->futex_calls = -1;
	return 0;
}

int go_peer_breaker_run(const struct breaker_bench_case *c, uint64_t items, int64_t timeout_ns,
			struct breaker_bench_result *r)
{
	char a_threads[16], a_items[24];
	static const char *const kinds[] = { "closed", "open", "half_open" };
	char *args[] = { "breaker", (char *)kinds[c->kind], a_threads, a_items, NULL };
	struct peer_run pr;

	/* the same program in Go: breaker KIND THREADS ITEMS */
	snprintf(a_threads, sizeof a_threads, "%u", c->threads);
	snprintf(a_items, sizeof a_items, "%" PRIu64, items);
	if (run_peer(args, items, timeout_ns, &pr, r->error, sizeof r->error) != 0)
		return -1;
	r->items = items;
	PEER_FIGURES(r, pr);
	r->has_latency = 0;
	return 0;
}

int go_peer_map_run(const struct map_bench_case *c, uint64_t keys, uint64_t ops, int go_sf,
		    int64_t timeout_ns, struct map_bench_result *r)
{
	char a1[24], a2[24], a3[24], a4[24], a5[24];
	char *args[] = { "map", a1, a2, a3, a4, a5, NULL };
	struct peer_run pr;
	const char *x;

	if (c->kind == MAP_BENCH_HERD) {
		/* herd THREADS KEYS COMPUTE_NS SINGLEFLIGHT */
		args[0] = "herd";
		args[5] = NULL;
		snprintf(a1, sizeof a1, "%u", c->threads);
		snprintf(a2, sizeof a2, "%" PRIu64, ops / c->threads);
		snprintf(a3, sizeof a3, "%d", 200000);
		snprintf(a4, sizeof a4, "%d", go_sf ? 1 : 0);
	} else {
		/* map KEYS THREADS READ_PCT ZIPF 0 */
		snprintf(a1, sizeof a1, "%" PRIu64, keys);
		snprintf(a2, sizeof a2, "%u", c->threads);
		snprintf(a3, sizeof a3, "%u", c->read_pct);
		snprintf(a4, sizeof a4, "%d", c->dist == MAP_DIST_ZIPF);
		snprintf(a5, sizeof a5, "0");
	}
	if (run_peer(args, ops, timeout_ns, &pr, r->error, sizeof r->error) != 0)
		return -1;
	r->items = ops;
	PEER_FIGURES(r, pr);
	r->rss_bytes_per_key = -1;
	r->computes_per_key = -1;
	if ((x = strstr(last_line, "rss_bytes_per_key=")))
		r->rss_bytes_per_key = strtod(x + 18, NULL);
	if ((x = strstr(last_line, "computes=")))
		r->computes_per_key = strtod(x + 9, NULL) / (double)(ops / c->threads);
	return 0;
}
