/* tests/unit/test_task.c: tasks (weft/task.h).
 *
 * Arguments and errors; weft_in_task and ids; tasks started from threads
 * and from tasks (a WaitGroup a thread waits on counts them: each runs
 * exactly once); weft_go from many threads at once; an unbuffered
 * ping-pong between two tasks (in order, nothing lost) and between a task
 * and a thread both ways; a buffered channel between many tasks and
 * threads (exactly once); deadlines and contexts inside tasks (never
 * early); weft_sleep and weft_yield; a semaphore, a Once and the slow-path
 * mutex under tasks; a million tasks started and finished; 10k tasks parked
 * in recv and then all released by close; with one carrier held by a task
 * blocked in read(2), and then by one spinning on a flag that only a task
 * queued behind it sets, the others still run (the monitor);
 * weft_runtime_dump names each task and what it waits in, and SIGQUIT
 * prints it when opted in (a child process); a stack
 * overflow ends the process with the message that names the task (a
 * child process). Tasks that end their carrier thread (pthread_exit, a
 * cancel of themselves, from code with and without unwind info), with one
 * carrier: their own cleanup handlers run, the carrier is replaced (the
 * runtime keeps its carriers), tasks parked or queued there and a timer
 * armed there carry on, the dead tasks leave the dump.
 * No durations are asserted beyond "not early".
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "die_noeh.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
/* ThreadSanitizer makes a fiber per task: about 1.7 ms each here */
#if defined(__SANITIZE_THREAD__)
#define TASKS_SCALE 16
#else
#define TASKS_SCALE 1
#endif

static void nop(void *arg)
{
	(void)arg;
}

static void test_task_args(void)
{
	CHECK_EQ(weft_in_task(), 0);
	CHECK_EQ(weft_task_id(), 0);
	CHECK_EQ(weft_go(NULL, NULL), -EINVAL);
	weft_task_opts_t o = {.stack_size = ((size_t)1 << 30) + 1};
	CHECK_EQ(weft_go_opts(nop, NULL, &o), -ENOMEM);
	CHECK_EQ(weft_runtime_set_procs(100000), -EINVAL);
	CHECK_EQ(weft_runtime_set_stack_size(((size_t)1 << 31)), -ENOMEM);
	CHECK_EQ(weft_sleep(0), 0);
	CHECK_EQ(weft_sleep(-5), 0);
	CHECK_EQ(weft_sleep_until(0), 0);
	weft_yield(); /* a thread: sched_yield */
}

/* ---- start and finish: each task runs exactly once ---- */

struct counted {
	weft_wg_t wg;
	atomic_uint runs[64];
	atomic_int in_task, bad_id;
};

struct counted_arg {
	struct counted *c;
	unsigned i;
};

static void counted_fn(void *p)
{
	struct counted_arg *a = p;
	atomic_fetch_add(&a->c->runs[a->i], 1);
	if (weft_in_task())
		atomic_fetch_add(&a->c->in_task, 1);
	if (weft_task_id() == 0)
		atomic_fetch_add(&a->c->bad_id, 1);
	weft_wg_done(&a->c->wg);
}

static void test_task_runs_once(void)
{
	static struct counted c;
	static struct counted_arg args[64];
	CHECK_EQ(weft_wg_init(&c.wg), 0);
	CHECK_EQ(weft_wg_add(&c.wg, 64), 0);
	for (unsigned i = 0; i < 64; i++) {
		args[i] = (struct counted_arg){&c, i};
		weft_task_opts_t o = {.name = "counted", .stack_size = i % 2 ? 100000 : 0};
		CHECK_EQ(weft_go_opts(counted_fn, &args[i], &o), 0);
	}
	CHECK_EQ(weft_wg_wait(&c.wg), 0); /* a thread waits on tasks */
	for (unsigned i = 0; i < 64; i++)
		CHECK_EQ(atomic_load(&c.runs[i]), 1);
	CHECK_EQ(atomic_load(&c.in_task), 64);
	CHECK_EQ(atomic_load(&c.bad_id), 0);
	CHECK_EQ(weft_in_task(), 0); /* the runtime did not make us a task */
}

/* tasks that start tasks, three levels deep: 1 + 8 + 64 + 512 */
struct tree {
	weft_wg_t wg;
	atomic_uint total;
};
static struct tree tree;

static void tree_fn(void *p)
{
	uintptr_t depth = (uintptr_t)p;
	atomic_fetch_add(&tree.total, 1);
	if (depth < 3)
		for (int i = 0; i < 8; i++) {
			weft_wg_add(&tree.wg, 1);
			CHECK_EQ(weft_go(tree_fn, (void *)(depth + 1)), 0);
		}
	weft_wg_done(&tree.wg);
}

static void test_task_spawn_from_tasks(void)
{
	weft_wg_init(&tree.wg);
	weft_wg_add(&tree.wg, 1);
	CHECK_EQ(weft_go(tree_fn, (void *)0), 0);
	CHECK_EQ(weft_wg_wait(&tree.wg), 0);
	CHECK_EQ(atomic_load(&tree.total), 1 + 8 + 64 + 512);
}

/* weft_go from 8 threads at once */
#define MANY_PER (2000 / TASKS_SCALE)
static weft_wg_t many_wg;
static atomic_ulong many_sum;

static void many_fn(void *p)
{
	atomic_fetch_add(&many_sum, (uintptr_t)p);
	weft_wg_done(&many_wg);
}

static void *many_starter(void *p)
{
	uintptr_t base = (uintptr_t)p * 10000;
	for (uintptr_t i = 0; i < MANY_PER; i++)
		CHECK_EQ(weft_go(many_fn, (void *)(base + i)), 0);
	return NULL;
}

static void test_task_go_from_threads(void)
{
	pthread_t t[8];
	weft_wg_init(&many_wg);
	weft_wg_add(&many_wg, 8 * MANY_PER);
	for (uintptr_t i = 0; i < 8; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, many_starter, (void *)i), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(weft_wg_wait(&many_wg), 0);
	unsigned long want = 0;
	for (unsigned long i = 0; i < 8; i++)
		want += MANY_PER * i * 10000 + MANY_PER * (MANY_PER - 1) / 2;
	CHECK_EQ(atomic_load(&many_sum), want);
}

/* ---- hand-offs ---- */

struct pp {
	weft_chan_t *ping, *pong;
	long rounds;
	weft_wg_t wg;
	atomic_long bad;
};

static void pinger(void *p)
{
	struct pp *x = p;
	for (long i = 0; i < x->rounds; i++) {
		long v;
		CHECK_EQ(weft_chan_send(x->ping, &i), 0);
		CHECK_EQ(weft_chan_recv(x->pong, &v), 0);
		if (v != -i)
			atomic_fetch_add(&x->bad, 1);
	}
	weft_chan_close(x->ping);
	weft_wg_done(&x->wg);
}

static void ponger(void *p)
{
	struct pp *x = p;
	long v, n = 0;
	while (weft_chan_recv(x->ping, &v) == 0) {
		if (v != n++)
			atomic_fetch_add(&x->bad, 1);
		v = -v;
		CHECK_EQ(weft_chan_send(x->pong, &v), 0);
	}
	if (n != x->rounds)
		atomic_fetch_add(&x->bad, 1);
	weft_wg_done(&x->wg);
}

/* Run a task function on a plain thread instead (the mixed cases). */
struct as_thread {
	void (*fn)(void *);
	void *arg;
};

static void *as_thread_main(void *p)
{
	struct as_thread c = *(struct as_thread *)p;
	free(p);
	c.fn(c.arg);
	return NULL;
}

static void start_thread(pthread_t *t, void (*fn)(void *), void *arg)
{
	struct as_thread *c = malloc(sizeof *c);
	CHECK(c != NULL);
	*c = (struct as_thread){fn, arg};
	CHECK_EQ(pthread_create(t, NULL, as_thread_main, c), 0);
}

/* mode 0: two tasks; 1: task pings a thread; 2: thread pings a task */
static void pingpong_rounds(size_t cap, int mode, long rounds)
{
	struct pp x = {.rounds = rounds};
	pthread_t th;
	CHECK_EQ(weft_chan_create(&x.ping, sizeof(long), cap), 0);
	CHECK_EQ(weft_chan_create(&x.pong, sizeof(long), cap), 0);
	weft_wg_init(&x.wg);
	weft_wg_add(&x.wg, 2);
	if (mode == 2)
		start_thread(&th, pinger, &x);
	else
		CHECK_EQ(weft_go(pinger, &x), 0);
	if (mode == 1)
		start_thread(&th, ponger, &x);
	else
		CHECK_EQ(weft_go(ponger, &x), 0);
	CHECK_EQ(weft_wg_wait(&x.wg), 0);
	if (mode)
		pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&x.bad), 0);
	weft_chan_destroy(x.ping);
	weft_chan_destroy(x.pong);
}

static void pingpong(size_t cap, int mode)
{
	pingpong_rounds(cap, mode, SANITIZED ? 2000 : 50000);
}

static void test_task_pingpong(void)
{
	for (int mode = 0; mode < 3; mode++) {
		pingpong(0, mode);
		pingpong(1, mode);
	}
}

/* P producer tasks + P producer threads -> C consumer tasks + a thread;
 * every value exactly once */
#define MP_P 4
#define MP_C 4
#define MP_N (SANITIZED ? 2000 : 50000)

struct mp {
	weft_chan_t *ch;
	weft_wg_t producers, consumers;
	atomic_uchar *seen;
	atomic_long dup;
};

struct mp_arg {
	struct mp *m;
	long id;
};

static void mp_produce(void *p)
{
	struct mp_arg *a = p;
	for (long i = 0; i < MP_N; i++) {
		long v = a->id * MP_N + i;
		CHECK_EQ(weft_chan_send(a->m->ch, &v), 0);
		if (i % 1000 == 999)
			weft_yield();
	}
	weft_wg_done(&a->m->producers);
}

static void mp_consume(void *p)
{
	struct mp *m = p;
	long v;
	while (weft_chan_recv(m->ch, &v) == 0)
		if (atomic_fetch_add(&m->seen[v], 1) != 0)
			atomic_fetch_add(&m->dup, 1);
	weft_wg_done(&m->consumers);
}


static void test_task_mpmc_mixed(void)
{
	for (size_t cap = 0; cap <= 64; cap += 64) {
		struct mp m = {0};
		struct mp_arg args[2 * MP_P];
		pthread_t pt[MP_P], ct;
		long total = 2 * MP_P * (long)MP_N;
		m.seen = calloc((size_t)total, 1);
		CHECK(m.seen);
		CHECK_EQ(weft_chan_create(&m.ch, sizeof(long), cap), 0);
		weft_wg_init(&m.producers);
		weft_wg_init(&m.consumers);
		weft_wg_add(&m.producers, 2 * MP_P);
		weft_wg_add(&m.consumers, MP_C + 1);
		for (int i = 0; i < MP_C; i++)
			CHECK_EQ(weft_go(mp_consume, &m), 0);
		start_thread(&ct, mp_consume, &m);
		for (int i = 0; i < 2 * MP_P; i++) {
			args[i] = (struct mp_arg){&m, i};
			if (i < MP_P)
				CHECK_EQ(weft_go(mp_produce, &args[i]), 0);
			else
				start_thread(&pt[i - MP_P], mp_produce, &args[i]);
		}
		CHECK_EQ(weft_wg_wait(&m.producers), 0);
		CHECK_EQ(weft_chan_close(m.ch), 0);
		CHECK_EQ(weft_wg_wait(&m.consumers), 0);
		for (int i = 0; i < MP_P; i++)
			pthread_join(pt[i], NULL);
		pthread_join(ct, NULL);
		CHECK_EQ(atomic_load(&m.dup), 0);
		for (long v = 0; v < total; v++)
			CHECK_EQ(atomic_load(&m.seen[v]), 1);
		weft_chan_destroy(m.ch);
		free(m.seen);
	}
}

/* ---- time ---- */

struct timing {
	weft_wg_t wg;
	atomic_int early, bad;
};

static void timed_fn(void *p)
{
	struct timing *x = p;
	weft_chan_t *ch;
	long v;
	CHECK_EQ(weft_chan_create(&ch, sizeof v, 0), 0);
	for (int i = 0; i < 5; i++) {
		int64_t dl = weft_deadline(200000 * (i + 1));
		if (weft_chan_recv_until(ch, &v, dl) != -ETIMEDOUT)
			atomic_fetch_add(&x->bad, 1);
		if (weft_now() < dl)
			atomic_fetch_add(&x->early, 1);
		int64_t t0 = weft_now();
		CHECK_EQ(weft_sleep(300000), 0);
		if (weft_now() - t0 < 300000)
			atomic_fetch_add(&x->early, 1);
	}
	/* a context with a timeout, and one canceled by its parent */
	weft_ctx_t *ctx;
	int64_t t0 = weft_now(); /* before: the deadline counts from creation */
	CHECK_EQ(weft_ctx_with_timeout(&ctx, weft_ctx_background(), 1000000), 0);
	if (weft_chan_recv_ctx(ch, &v, ctx) != -ETIMEDOUT)
		atomic_fetch_add(&x->bad, 1);
	if (weft_now() - t0 < 1000000)
		atomic_fetch_add(&x->early, 1);
	weft_ctx_release(ctx);
	weft_chan_destroy(ch);
	weft_wg_done(&x->wg);
}

static void test_task_deadlines(void)
{
	struct timing x = {0};
	weft_wg_init(&x.wg);
	weft_wg_add(&x.wg, 16);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(weft_go(timed_fn, &x), 0);
	CHECK_EQ(weft_wg_wait(&x.wg), 0);
	CHECK_EQ(atomic_load(&x.early), 0);
	CHECK_EQ(atomic_load(&x.bad), 0);
}

/* a context canceled by a thread wakes tasks blocked under it */
struct cancel {
	weft_ctx_t *ctx;
	weft_chan_t *ch;
	weft_wg_t parked, done;
	atomic_int ok;
};

static void cancel_fn(void *p)
{
	struct cancel *x = p;
	long v;
	weft_wg_done(&x->parked);
	if (weft_chan_recv_ctx(x->ch, &v, x->ctx) == -ECANCELED)
		atomic_fetch_add(&x->ok, 1);
	weft_wg_done(&x->done);
}

static void test_task_ctx_cancel(void)
{
	struct cancel x = {0};
	weft_ctx_t *parent;
	CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_with_cancel(&x.ctx, parent), 0);
	CHECK_EQ(weft_chan_create(&x.ch, sizeof(long), 4), 0);
	weft_wg_init(&x.parked);
	weft_wg_init(&x.done);
	weft_wg_add(&x.parked, 100);
	weft_wg_add(&x.done, 100);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(weft_go(cancel_fn, &x), 0);
	CHECK_EQ(weft_wg_wait(&x.parked), 0);
	weft_sleep(2000000);
	weft_ctx_cancel(parent);
	CHECK_EQ(weft_wg_wait(&x.done), 0);
	CHECK_EQ(atomic_load(&x.ok), 100);
	weft_ctx_release(x.ctx);
	weft_ctx_release(parent);
	weft_chan_destroy(x.ch);
}

/* ---- sync primitives under tasks ---- */

struct shared {
	weft_sem_t sem;
	weft_wg_t wg;
	atomic_int inside, max_inside;
	long counter; /* guarded by the semaphore of capacity 1 */
};

static void sem_fn(void *p)
{
	struct shared *x = p;
	for (int i = 0; i < 200; i++) {
		CHECK_EQ(weft_sem_acquire(&x->sem, 1), 0);
		int in = atomic_fetch_add(&x->inside, 1) + 1;
		if (in > atomic_load(&x->max_inside))
			atomic_store(&x->max_inside, in);
		x->counter++;
		if (i % 7 == 0)
			weft_yield(); /* hold it across a switch */
		atomic_fetch_sub(&x->inside, 1);
		CHECK_EQ(weft_sem_release(&x->sem, 1), 0);
	}
	weft_wg_done(&x->wg);
}

static void test_task_semaphore(void)
{
	struct shared x = {0};
	CHECK_EQ(weft_sem_init(&x.sem, 1), 0);
	weft_wg_init(&x.wg);
	weft_wg_add(&x.wg, 50);
	for (int i = 0; i < 50; i++)
		CHECK_EQ(weft_go(sem_fn, &x), 0);
	CHECK_EQ(weft_wg_wait(&x.wg), 0);
	CHECK_EQ(x.counter, 50 * 200);
	CHECK_EQ(atomic_load(&x.max_inside), 1);
}

static weft_once_t once = WEFT_ONCE_INIT;
static atomic_int once_runs;
static weft_wg_t once_wg;

static void once_body(void *arg)
{
	(void)arg;
	atomic_fetch_add(&once_runs, 1);
	weft_sleep(2000000); /* the others park on the Once meanwhile */
}

static void once_fn(void *p)
{
	(void)p;
	CHECK_EQ(weft_once(&once, once_body, NULL), 0);
	CHECK_EQ(atomic_load(&once_runs), 1);
	weft_wg_done(&once_wg);
}

static void test_task_once(void)
{
	weft_wg_init(&once_wg);
	weft_wg_add(&once_wg, 64);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(weft_go(once_fn, NULL), 0);
	CHECK_EQ(weft_wg_wait(&once_wg), 0);
	CHECK_EQ(atomic_load(&once_runs), 1);
}

/* ---- scale ---- */

static atomic_long million_done;
static weft_wg_t million_wg;

static void million_fn(void *p)
{
	(void)p;
	if (atomic_fetch_add(&million_done, 1) % 1024 == 1023)
		weft_wg_done(&million_wg);
}

static void million_starter(void *p)
{
	long n = (long)(intptr_t)p;
	for (long i = 0; i < n; i++)
		while (weft_go(million_fn, NULL) != 0)
			weft_yield();
}

static void test_task_million(void)
{
	long n = SANITIZED ? 32768 / TASKS_SCALE : 1 << 20;
	weft_wg_init(&million_wg);
	weft_wg_add(&million_wg, n / 1024);
	CHECK_EQ(weft_go(million_starter, (void *)(intptr_t)(n / 2)), 0);
	million_starter((void *)(intptr_t)(n / 2)); /* and from this thread */
	CHECK_EQ(weft_wg_wait(&million_wg), 0);
	CHECK_EQ(atomic_load(&million_done), n);
}

struct parked {
	weft_chan_t *ch;
	weft_wg_t parked, done;
	atomic_long got_closed, got_value;
};

static void parked_fn(void *p)
{
	struct parked *x = p;
	long v;
	weft_wg_done(&x->parked);
	int rc = weft_chan_recv(x->ch, &v);
	if (rc == -EPIPE)
		atomic_fetch_add(&x->got_closed, 1);
	else if (rc == 0)
		atomic_fetch_add(&x->got_value, 1);
	weft_wg_done(&x->done);
}

static void test_task_many_parked(void)
{
	long n = SANITIZED ? 16000 / TASKS_SCALE : 10000, sent = n / 10;
	struct parked x = {0};
	CHECK_EQ(weft_chan_create(&x.ch, sizeof(long), 0), 0);
	weft_wg_init(&x.parked);
	weft_wg_init(&x.done);
	weft_wg_add(&x.parked, n);
	weft_wg_add(&x.done, n);
	for (long i = 0; i < n; i++)
		CHECK_EQ(weft_go(parked_fn, &x), 0);
	CHECK_EQ(weft_wg_wait(&x.parked), 0);
	/* a thread hands values to some of them, then close releases the rest */
	for (long i = 0; i < sent; i++)
		CHECK_EQ(weft_chan_send(x.ch, &i), 0);
	CHECK_EQ(weft_chan_close(x.ch), 0);
	CHECK_EQ(weft_wg_wait(&x.done), 0);
	CHECK_EQ(atomic_load(&x.got_value), sent);
	CHECK_EQ(atomic_load(&x.got_closed), n - sent);
	weft_chan_destroy(x.ch);
}

/* ---- held carriers: nothing starves behind a task that blocks outside
 * weft or spins (the monitor starts another carrier) ---- */

static int held_pipe[2];
static atomic_int held_flag;
static weft_wg_t held_wg;

static void blocker_fn(void *p)
{
	(void)p;
	char c;
	/* a system call that blocks until main writes: holds the carrier */
	CHECK_EQ(read(held_pipe[0], &c, 1), 1);
	weft_wg_done(&held_wg);
}

static void setter_fn(void *p)
{
	(void)p;
	atomic_store(&held_flag, 1);
	weft_wg_done(&held_wg);
}

static void spinner_fn(void *p)
{
	(void)p;
	/* the setter goes to this carrier's queue, behind us, and we spin
	 * without calling weft until it has run */
	CHECK_EQ(weft_go(setter_fn, NULL), 0);
	while (!atomic_load(&held_flag))
		;
	weft_wg_done(&held_wg);
}

static void test_task_held_carriers(void)
{
	CHECK_EQ(weft_runtime_set_procs(1), 0);
	CHECK_EQ(pipe(held_pipe), 0);
	weft_wg_init(&held_wg);
	weft_wg_add(&held_wg, 1);
	CHECK_EQ(weft_go(blocker_fn, NULL), 0);
	weft_sleep(5000000); /* it is in read() now, most likely */
	/* tasks started meanwhile all finish while it stays blocked */
	pingpong_rounds(0, 0, 1000);
	/* a task that spins on what a task queued behind it does */
	weft_wg_add(&held_wg, 2);
	CHECK_EQ(weft_go(spinner_fn, NULL), 0);
	weft_sleep(20000000);
	CHECK_EQ(write(held_pipe[1], "x", 1), 1);
	CHECK_EQ(weft_wg_wait(&held_wg), 0);
	CHECK_EQ(atomic_load(&held_flag), 1);
	close(held_pipe[0]);
	close(held_pipe[1]);
	CHECK_EQ(weft_runtime_set_procs(0), 0);
}

/* ---- weft_runtime_dump, and SIGQUIT when opted in ---- */

static weft_chan_t *dump_ch;
static weft_wg_t dump_wg;

static void dump_recv(void *p)
{
	long v;
	(void)p;
	CHECK_EQ(weft_chan_recv(dump_ch, &v), -EPIPE);
	weft_wg_done(&dump_wg);
}

static void dump_until(void *p)
{
	long v;
	(void)p;
	CHECK_EQ(weft_chan_recv_until(dump_ch, &v, weft_deadline(60000000000)), -EPIPE);
	weft_wg_done(&dump_wg);
}

static void dump_sleep(void *p)
{
	(void)p;
	weft_sleep(200000000);
	weft_wg_done(&dump_wg);
}

static void test_task_dump(void)
{
	CHECK_EQ(weft_chan_create(&dump_ch, sizeof(long), 0), 0);
	weft_wg_init(&dump_wg);
	weft_wg_add(&dump_wg, 3);
	weft_task_opts_t o1 = {.name = "dump-recv"}, o2 = {.name = "dump-until"},
			 o3 = {.name = "dump-sleep"};
	CHECK_EQ(weft_go_opts(dump_recv, NULL, &o1), 0);
	CHECK_EQ(weft_go_opts(dump_until, NULL, &o2), 0);
	CHECK_EQ(weft_go_opts(dump_sleep, NULL, &o3), 0);
	weft_sleep(50000000); /* they have parked */
	FILE *f = tmpfile();
	CHECK(f != NULL);
	weft_runtime_dump(fileno(f));
	char buf[8192] = {0};
	rewind(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	CHECK(strstr(buf, "weft runtime: ") != NULL);
	CHECK(strstr(buf, "carrier 0: ") != NULL);
	CHECK(strstr(buf, "\"dump-recv\": waiting in a weft call") != NULL);
	char *u = strstr(buf, "\"dump-until\": waiting in a weft call");
	CHECK(u != NULL && strstr(u, ", until +") != NULL);
	CHECK(strstr(buf, "\"dump-sleep\": waiting in weft_sleep") != NULL);
	CHECK_EQ(weft_chan_close(dump_ch), 0);
	CHECK_EQ(weft_wg_wait(&dump_wg), 0);
	weft_chan_destroy(dump_ch);
}

/* Run body in a child process (before this process starts the runtime:
 * no fork with running tasks), its stderr into buf; its wait status. */
static int in_child(void (*body)(void), char *buf, size_t size)
{
	int pipefd[2];
	CHECK_EQ(pipe(pipefd), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		body();
		_exit(0);
	}
	close(pipefd[1]);
	size_t n = 0;
	ssize_t k;
	while (n < size - 1 && (k = read(pipefd[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = 0;
	close(pipefd[0]);
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	return status;
}

/* SIGQUIT prints the dump to stderr and the process goes on */
static void sigquit_child(void)
{
	CHECK_EQ(weft_runtime_dump_on_sigquit(), 0);
	CHECK_EQ(weft_chan_create(&dump_ch, sizeof(long), 0), 0);
	weft_wg_init(&dump_wg);
	weft_wg_add(&dump_wg, 1);
	weft_task_opts_t o = {.name = "quit-me"};
	CHECK_EQ(weft_go_opts(dump_recv, NULL, &o), 0);
	weft_sleep(50000000);
	raise(SIGQUIT);
	weft_sleep(200000000);
	weft_chan_close(dump_ch);
	weft_wg_wait(&dump_wg);
	_exit(7); /* still alive after SIGQUIT */
}

static void test_task_sigquit_dump(void)
{
	char buf[8192];
	int status = in_child(sigquit_child, buf, sizeof buf);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	CHECK(strstr(buf, "\"quit-me\": waiting in a weft call") != NULL);
}

/* ---- a stack overflow ends the process with a message ---- */

static int deep(int n)
{
	volatile char buf[1024];
	buf[0] = (char)n;
	return n <= 0 ? buf[0] : deep(n - 1) + buf[0];
}

static void overflow_fn(void *p)
{
	(void)p;
	deep(1 << 20);
}

static void overflow_child(void)
{
	weft_task_opts_t o = {.name = "deep", .stack_size = 32 << 10};
	weft_go_opts(overflow_fn, NULL, &o);
	sleep(20); /* not past it: the overflow aborts */
}

static void test_task_stack_overflow(void)
{
	if (SANITIZED)
		return; /* the sanitizers handle SIGSEGV themselves */
	char buf[512];
	int status = in_child(overflow_child, buf, sizeof buf);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(buf, "weft: task ") != NULL);
	CHECK(strstr(buf, "(\"deep\") overflowed its stack of 32768 bytes") != NULL);
}

/* ---- a task that ends its carrier thread ---- */

/* ThreadSanitizer's pthread_exit refuses to run on a fiber (a CHECK in its
 * interceptor): under it the tasks end their carrier by canceling it,
 * which takes the same path through glibc */
/* TSAN_BUILD: die_noeh.h */

static atomic_int ec_cleanups;
static weft_wg_t ec_started;

static void ec_cleanup(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ec_cleanups, 1);
}

static void ec_die(void *arg)
{
	long how = (long)(intptr_t)arg;
	weft_wg_done(&ec_started);
	/* a handler of its own, pushed and acted on without a park between
	 * (a park could move the task to another carrier: task.h) */
	pthread_cleanup_push(ec_cleanup, NULL);
	if (how == 0 && !TSAN_BUILD)
		pthread_exit(NULL);
	if (how == 1 && !TSAN_BUILD)
		die_noeh_exit();
	if (how == 2) {
		pthread_cancel(pthread_self());
		pthread_testcancel();
	}
	die_noeh_cancel();
	pthread_cleanup_pop(0);
}

static weft_chan_t *ec_ch;
static weft_wg_t ec_done;

static void ec_parked(void *arg)
{
	(void)arg;
	long v;
	CHECK_EQ(weft_chan_recv(ec_ch, &v), 0);
	CHECK_EQ(v, 42);
	weft_wg_done(&ec_done);
}

static void ec_sleeper(void *arg)
{
	(void)arg;
	CHECK_EQ(weft_sleep(20000000), 0);
	weft_wg_done(&ec_done);
}

static void ec_later(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	weft_wg_done(&ec_done);
}

static void test_task_ends_carrier(void)
{
	enum { DEATHS = 40, LATER = 200 };
	CHECK_EQ(weft_runtime_set_procs(1), 0);
	CHECK_EQ(weft_chan_create(&ec_ch, sizeof(long), 0), 0);
	atomic_store(&ec_cleanups, 0);
	atomic_int later = 0;
	weft_wg_init(&ec_done);
	weft_wg_init(&ec_started);
	weft_wg_add(&ec_done, 2 + LATER);
	weft_wg_add(&ec_started, DEATHS);
	/* parked in a receive and in a timed sleep before the deaths */
	CHECK_EQ(weft_go(ec_parked, NULL), 0);
	CHECK_EQ(weft_go(ec_sleeper, NULL), 0);
	/* with one carrier, every one of these runs on it and ends it */
	for (long i = 0; i < DEATHS; i++) {
		weft_task_opts_t o = {.name = "dying"};
		CHECK_EQ(weft_go_opts(ec_die, (void *)(intptr_t)(i % 4), &o), 0);
	}
	for (int i = 0; i < LATER; i++)
		CHECK_EQ(weft_go(ec_later, &later), 0);
	CHECK_EQ(weft_wg_wait(&ec_started), 0);
	long v = 42;
	CHECK_EQ(weft_chan_send(ec_ch, &v), 0);
	CHECK_EQ(weft_wg_wait(&ec_done), 0);
	CHECK_EQ(atomic_load(&later), LATER);
	CHECK_EQ(atomic_load(&ec_cleanups), DEATHS);
	/* and the runtime runs on: a ping-pong on its one carrier */
	pingpong_rounds(0, 0, 1000);
	/* the dead leave the dump (the last may still be unwinding: the
	 * others may have run on a carrier the monitor added meanwhile) */
	for (;;) {
		FILE *f = tmpfile();
		CHECK(f != NULL);
		weft_runtime_dump(fileno(f));
		char buf[8192] = {0};
		rewind(f);
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		CHECK(strstr(buf, "carrier 0: ") != NULL);
		if (strstr(buf, "\"dying\"") == NULL)
			break;
		weft_sleep(1000000);
	}
	weft_chan_destroy(ec_ch);
	CHECK_EQ(weft_runtime_set_procs(0), 0);
}

int main(void)
{
	test_watchdog(SANITIZED ? 600 : 240);
	RUN(test_task_stack_overflow); /* first: they fork before the runtime starts */
	RUN(test_task_sigquit_dump);
	RUN(test_task_args);
	RUN(test_task_runs_once);
	RUN(test_task_spawn_from_tasks);
	RUN(test_task_go_from_threads);
	RUN(test_task_pingpong);
	RUN(test_task_mpmc_mixed);
	RUN(test_task_deadlines);
	RUN(test_task_ctx_cancel);
	RUN(test_task_semaphore);
	RUN(test_task_once);
	RUN(test_task_million);
	RUN(test_task_many_parked);
	RUN(test_task_held_carriers);
	RUN(test_task_dump);
	RUN(test_task_ends_carrier);
	return 0;
}
