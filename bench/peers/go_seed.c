/* bench/peers/go_seed.c: the pool family's "go" strategy. It runs a
 * streaming case (bench/pool.h) as Go's own program, bench/peers/seed.go
 * built into WEFT_GO_SEED by bench/meson.build, in a child process, and
 * reads back what that program measured over its own timed span: wall,
 * CPU and context switches (its getrusage), peak RSS (its VmHWM: the
 * Go process alone, where weft's and the mutex pool's figure is the whole
 * weft-bench process). Futex wakes are not known (-1). A child that fails,
 * prints something else, or outlives the timeout (then it is killed) fails
 * the run with the reason. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../measure.h"
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

static int go_run_stream(const struct pool_bench_case *c, uint64_t jobs, int64_t timeout_ns,
			 struct pool_bench_result *out)
{
	char a_jobs[24], a_workers[24], a_queue[24], a_results[24], a_sleep[24];
	char *argv[] = { WEFT_GO_SEED, a_jobs, a_workers, a_queue, a_results, a_sleep, NULL };
	char line[512];
	int fds[2], status;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	snprintf(a_jobs, sizeof a_jobs, "%" PRIu64, jobs);
	snprintf(a_workers, sizeof a_workers, "%u", c->workers);
	snprintf(a_queue, sizeof a_queue, "%zu", c->queue);
	snprintf(a_results, sizeof a_results, "%d", RESULTS_CAP);
	snprintf(a_sleep, sizeof a_sleep, "%" PRId64, c->sleep_ns);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	int rc = posix_spawn(&pid, WEFT_GO_SEED, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		snprintf(out->error, sizeof out->error, "spawn %s: %s", WEFT_GO_SEED, strerror(rc));
		return -1;
	}
	ssize_t n = read_until(fds[0], line, sizeof line, bench_now_ns() + timeout_ns);
	close(fds[0]);
	if (n < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n < 0) {
		snprintf(out->error, sizeof out->error,
			 "go seed: hung (killed after %" PRId64 " s)", timeout_ns / 1000000000);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(out->error, sizeof out->error,
			 "go seed: exit status %d (its stderr above says why)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	uint64_t got;
	int64_t wall, cpu, sw, rss;
	if (sscanf(line,
		   "jobs=%" SCNu64 " wall_ns=%" SCNd64 " cpu_ns=%" SCNd64 " ctx_switches=%" SCNd64
		   " peak_rss_kb=%" SCNd64,
		   &got, &wall, &cpu, &sw, &rss) != 5 ||
	    got != jobs || wall <= 0) {
		snprintf(out->error, sizeof out->error, "go seed: unexpected output: %.120s", line);
		return -1;
	}
	out->wall_ns = wall;
	out->cpu_ns = cpu;
	out->ctx_switches = sw;
	out->peak_rss_kb = rss;
	out->rss_per_run = 1; /* a fresh process per run */
	return 0;
}

const struct pool_strategy pool_strategy_go = {
	.name = "go",
	.run_stream = go_run_stream,
};
