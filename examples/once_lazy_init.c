/* once_lazy_init: lazy initialisation with Once, as in Go's
 *
 *	var (
 *		db     *DB
 *		dbErr  error
 *		dbOnce sync.Once
 *	)
 *
 *	func getDB() (*DB, error) {
 *		dbOnce.Do(func() { db, dbErr = connect() })
 *		return db, dbErr
 *	}
 *
 * weft_once_try is Go's sync.OnceValue: the init function runs exactly
 * once, however many threads call at the same moment; callers that arrive
 * while it runs sleep until it has returned, and every caller, now and
 * later, gets the int it returned. A failed init is not retried: every
 * caller sees the same error (as with sync.Once in Go).
 *
 * 16 threads call get_db() at once, first against a database that
 * connects, then against one that refuses; each prints how many times the
 * init ran and what the callers got.
 */
#include <weft.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCALLERS 16

/* A fake database connection. */
struct db {
	char dsn[32];
	int open;
};

/* The lazily initialised state: the once, the result, and a counter that
 * proves the init ran only once. Static storage, like Go's package vars. */
struct lazy_db {
	weft_once_t once;
	struct db *db;  /* written by the init, read after weft_once_try */
	int fail;       /* make the init fail (a refused connection) */
	atomic_int init_runs;
};

/* The init: "connect" (slowly, so the other callers really arrive while it
 * runs) and return 0, or a negative errno. Runs exactly once. */
static int connect_db(void *arg)
{
	struct lazy_db *l = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 }; /* 20 ms */

	atomic_fetch_add(&l->init_runs, 1);
	nanosleep(&ts, NULL);
	if (l->fail)
		return -ECONNREFUSED;
	l->db = calloc(1, sizeof(*l->db));
	if (!l->db)
		return -ENOMEM;
	strcpy(l->db->dsn, "fake://db");
	l->db->open = 1;
	return 0;
}

/* getDB(): every caller gets the same db (or the same error). Returning
 * from weft_once_try orders the init's writes before the caller's reads,
 * so l->db needs no atomic. */
static int get_db(struct lazy_db *l, struct db **out)
{
	int rc = weft_once_try(&l->once, connect_db, l);

	*out = rc == 0 ? l->db : NULL;
	return rc;
}

/* One caller thread: wait at the barrier so all 16 call at once. */
struct caller {
	pthread_t tid;
	struct lazy_db *l;
	pthread_barrier_t *start;
	struct db *got;
	int rc;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	pthread_barrier_wait(c->start);
	c->rc = get_db(c->l, &c->got);
	return NULL;
}

/* Run NCALLERS concurrent get_db() calls on l; print and check what they
 * saw. Returns 0 when everybody agreed and the init ran once. */
static int run(const char *name, struct lazy_db *l)
{
	struct caller c[NCALLERS];
	pthread_barrier_t start;
	int i, same = 0, ok;

	pthread_barrier_init(&start, NULL, NCALLERS);
	for (i = 0; i < NCALLERS; i++) {
		c[i] = (struct caller){ .l = l, .start = &start };
		if (pthread_create(&c[i].tid, NULL, caller_main, &c[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (i = 0; i < NCALLERS; i++)
		pthread_join(c[i].tid, NULL);
	pthread_barrier_destroy(&start);

	/* Every caller must have seen exactly what the first one saw. */
	for (i = 0; i < NCALLERS; i++)
		if (c[i].rc == c[0].rc && c[i].got == c[0].got)
			same++;

	if (c[0].rc == 0)
		printf("%s: init ran %d time(s); %d callers got db@%p rc=%d\n", name,
		       atomic_load(&l->init_runs), same, (void *)c[0].got, c[0].rc);
	else
		printf("%s: init ran %d time(s); %d callers got rc=%d (%s)\n", name,
		       atomic_load(&l->init_runs), same, c[0].rc, strerror(-c[0].rc));

	ok = atomic_load(&l->init_runs) == 1 && same == NCALLERS;

	/* Later calls do not run the init again: they cost one load. */
	{
		struct db *again;
		int rc = get_db(l, &again);

		ok = ok && rc == c[0].rc && again == c[0].got &&
		     atomic_load(&l->init_runs) == 1;
	}
	return ok ? 0 : 1;
}

int main(void)
{
	static struct lazy_db good = { .once = WEFT_ONCE_INIT };
	static struct lazy_db bad = { .once = WEFT_ONCE_INIT, .fail = 1 };
	int fails = 0;

	fails += run("connects", &good);
	fails += run("refused", &bad);
	free(good.db);
	return fails ? 1 : 0;
}
