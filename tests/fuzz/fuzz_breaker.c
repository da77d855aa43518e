/* tests/fuzz/fuzz_breaker.c: the circuit breaker against a tiny model of
 * gobreaker v2 (plus weft's manual modes), on a clock the input advances.
 *
 * Settings (gobreaker's only): max_requests {0 (1), 1, 2, 3, 5}, interval
 * {none, 50, 1000}, timeout {0 (60 s), 100, 1000, INT64_MAX}, ready_to_trip
 * (NULL: consecutive_failures > 5; or total_failures >= k; or two
 * consecutive failures among three requests), is_successful (NULL: rc == 0;
 * or rc >= 0), is_excluded (NULL; or rc == 99), on_state_change (a log, or
 * NULL), and the clock starting at 0, 1e9, near INT64_MIN or near
 * INT64_MAX. No bucket_period, rates or backoff: the model stays
 * gobreaker's, small and exact:
 *   currentState: closed with an expiry (interval) that is past -> new
 *     generation; open (not forced) whose expiry is past -> half-open
 *   allow: open -> -EBUSY; half-open with requests - exclusions >=
 *     max_requests -> -EAGAIN; else requests++ and a ticket of this
 *     generation (disabled: a ticket that counts nothing)
 *   done: a ticket of another generation is ignored; excluded -> total
 *     exclusions only; closed: count, trip on failure if ready_to_trip;
 *     half-open: failure -> open, consecutive successes >= max_requests ->
 *     closed
 *   new generation: counts cleared; closed: expiry now + interval; open:
 *     now + timeout (forced open: never)
 *   manual modes as weft_breaker.h says (force_open, force_closed,
 *     disable, reset; they apply no due transition first)
 * Which calls apply due transitions is weft's and the model's alike: allow
 * (not when disabled), done (not when disabled), state, stats; not counts
 * and not the manual calls. Checked: every return, the state, the counts,
 * stats (generation, since, time_in_state, open_until, open_timeout,
 * backoff_level, opened, rejections), and on_state_change: each
 * transition once, in order, with the breaker's name (the callback also
 * reads counts, which must be the model's at that point). */
#include <errno.h>
#include <stdlib.h>

#include <weft/breaker.h>

#include "fuzz.h"

#define NTICKETS 8

enum { CLOSED = WEFT_BREAKER_CLOSED, HALF = WEFT_BREAKER_HALF_OPEN, OPEN = WEFT_BREAKER_OPEN };

static struct fz *g_f;
static int64_t clk; /* the fake clock */
static weft_breaker_t *br;

/* ---- the model ---- */

static struct {
	/* settings as the breaker normalises them */
	uint32_t max_req;
	int64_t interval, timeout;
	int trip_kind; /* 0 default, 1 total_failures >= k, 2 two of three */
	uint32_t trip_k;
	bool succ_nonneg, excl99, cb;
	char name[16];
	/* state */
	int state, mode;
	uint64_t gen;
	weft_breaker_counts_t c;
	weft_breaker_counts_t c_trip; /* what ready_to_trip is given */
	int64_t expiry;
	bool has_expiry;
	int64_t since;
	uint32_t level;
	uint64_t opened, rej_open, rej_half;
	/* transitions not yet delivered */
	int ev[64][2];
	int nev, ev_seen;
} M;

static int64_t sat_add(int64_t a, int64_t d)
{
	if (d > 0 && a > INT64_MAX - d)
		return INT64_MAX;
	return a + d;
}

static void m_newgen(void)
{
	M.gen++;
	memset(&M.c, 0, sizeof M.c);
	M.has_expiry = false;
	if (M.state == CLOSED && M.interval > 0) {
		M.expiry = sat_add(clk, M.interval);
		M.has_expiry = true;
	} else if (M.state == OPEN) {
		M.expiry = M.mode == WEFT_BREAKER_FORCED_OPEN ? INT64_MAX : sat_add(clk, M.timeout);
		M.has_expiry = true;
	}
}

static void m_set_state(int to)
{
	int from = M.state;
	if (from == to)
		return;
	M.state = to;
	M.since = clk;
	if (to == OPEN) {
		M.opened++;
		if (M.mode != WEFT_BREAKER_FORCED_OPEN)
			M.level++;
	} else if (to == CLOSED) {
		M.level = 0;
	}
	m_newgen();
	if (M.cb) {
		CHECK(M.nev < 64);
		M.ev[M.nev][0] = from;
		M.ev[M.nev][1] = to;
		M.nev++;
	}
}

static void m_current(void)
{
	if (M.state == CLOSED && M.has_expiry && M.expiry < clk)
		m_newgen();
	else if (M.state == OPEN && M.mode != WEFT_BREAKER_FORCED_OPEN && M.expiry < clk)
		m_set_state(HALF);
}

static bool m_trips(void)
{
	if (M.mode != WEFT_BREAKER_NORMAL)
		return false;
	M.c_trip = M.c;
	switch (M.trip_kind) {
	case 1:
		return M.c.total_failures >= M.trip_k;
	case 2:
		return M.c.consecutive_failures >= 2 && M.c.requests >= 3;
	default:
		return M.c.consecutive_failures > 5;
	}
}

/* allow: 0 with the ticket's generation (0: counts nothing), or an error */
static int m_allow(uint64_t *gen)
{
	*gen = 0;
	if (M.mode == WEFT_BREAKER_DISABLED)
		return 0;
	m_current();
	if (M.state == OPEN) {
		M.rej_open++;
		return -EBUSY;
	}
	uint32_t valid = M.c.requests < M.c.total_exclusions ? 0
							     : M.c.requests - M.c.total_exclusions;
	if (M.state == HALF && valid >= M.max_req) {
		M.rej_half++;
		return -EAGAIN;
	}
	M.c.requests++;
	*gen = M.gen;
	return 0;
}

static void m_done(uint64_t gen, int rc)
{
	if (M.mode == WEFT_BREAKER_DISABLED)
		return;
	m_current();
	if (gen != M.gen)
		return;
	if (M.excl99 && rc == 99) {
		M.c.total_exclusions++;
		return;
	}
	bool ok = M.succ_nonneg ? rc >= 0 : rc == 0;
	if (ok) {
		M.c.total_successes++;
		M.c.consecutive_successes++;
		M.c.consecutive_failures = 0;
	} else {
		M.c.total_failures++;
		M.c.consecutive_failures++;
		M.c.consecutive_successes = 0;
	}
	if (M.state == CLOSED) {
		if (!ok && m_trips())
			m_set_state(OPEN);
	} else if (M.state == HALF) {
		if (!ok)
			m_set_state(OPEN);
		else if (M.c.consecutive_successes >= M.max_req)
			m_set_state(CLOSED);
	}
}

static void m_set_mode(int mode, int state)
{
	int was = M.mode;
	M.mode = mode;
	if (state == CLOSED && mode == WEFT_BREAKER_NORMAL) {
		M.level = 0;
		if (M.state == CLOSED)
			m_newgen();
		else
			m_set_state(CLOSED);
	} else if (M.state != state) {
		m_set_state(state);
	} else if (was != mode) {
		m_newgen();
	}
}

/* ---- the breaker's callbacks ---- */

static int user_cookie;

static int64_t fake_clock(void *user)
{
	CHECK(user == &user_cookie);
	return clk;
}

static bool trip_fn(const weft_breaker_counts_t *c, void *user)
{
	CHECK(user == &user_cookie);
	/* the counts it is given are the model's (after this result) */
	CHECK(memcmp(c, &M.c_trip, sizeof *c) == 0);
	return M.trip_kind == 1 ? c->total_failures >= M.trip_k
				: c->consecutive_failures >= 2 && c->requests >= 3;
}

static bool succ_fn(int rc, void *user)
{
	CHECK(user == &user_cookie);
	return rc >= 0;
}

static bool excl_fn(int rc, void *user)
{
	CHECK(user == &user_cookie);
	return rc == 99;
}

static void on_change(const char *name, int from, int to, void *user)
{
	CHECK(user == &user_cookie);
	CHECK(strcmp(name, M.name) == 0);
	if (M.ev_seen >= M.nev) {
		fprintf(stderr, "unexpected transition %d -> %d\n", from, to);
		CHECK(!"on_state_change without a transition");
	}
	CHECK_EQ(from, M.ev[M.ev_seen][0]);
	CHECK_EQ(to, M.ev[M.ev_seen][1]);
	M.ev_seen++;
	/* it may call the breaker: counts as they stand now */
	weft_breaker_counts_t c;
	CHECK_EQ(weft_breaker_counts(br, &c), 0);
	if (M.ev_seen == M.nev) /* the last one: the model is where the call ended */
		CHECK(memcmp(&c, &M.c, sizeof c) == 0);
}

/* every transition the model made was delivered, once, by now */
static void check_events(void)
{
	CHECK_EQ(M.ev_seen, M.nev);
	M.nev = M.ev_seen = 0;
}

static void check_counts(const weft_breaker_counts_t *c)
{
	if (memcmp(c, &M.c, sizeof *c) != 0) {
		fprintf(stderr,
			"counts: req %u/%u succ %u/%u fail %u/%u excl %u/%u csucc %u/%u cfail %u/%u\n",
			c->requests, M.c.requests, c->total_successes, M.c.total_successes,
			c->total_failures, M.c.total_failures, c->total_exclusions,
			M.c.total_exclusions, c->consecutive_successes, M.c.consecutive_successes,
			c->consecutive_failures, M.c.consecutive_failures);
		CHECK(!"counts differ from the model");
	}
}

static void check_stats(void)
{
	weft_breaker_stats_t s;
	m_current();
	CHECK_EQ(weft_breaker_stats(br, &s), 0);
	check_events();
	CHECK_EQ(s.state, M.state);
	CHECK_EQ(s.mode, M.mode);
	CHECK_EQ(s.generation, M.gen);
	CHECK_EQ(s.since, M.since);
	uint64_t in = clk > M.since ? (uint64_t)clk - (uint64_t)M.since : 0;
	CHECK_EQ(s.time_in_state, in > INT64_MAX ? INT64_MAX : (int64_t)in);
	CHECK_EQ(s.open_until, M.state == OPEN ? M.expiry : 0);
	CHECK_EQ(s.open_timeout, M.timeout);
	CHECK_EQ(s.backoff_level, M.level);
	CHECK_EQ(s.opened, M.opened);
	CHECK_EQ(s.rejected_open, M.rej_open);
	CHECK_EQ(s.rejected_half_open, M.rej_half);
	CHECK_EQ(s.rejected, M.rej_open + M.rej_half);
	CHECK_EQ(s.slow_calls, 0);
	CHECK_EQ(s.window_results, 0);
	check_counts(&s.counts);
}

/* ---- tickets and calls ---- */

static struct {
	weft_breaker_ticket_t t;
	uint64_t gen; /* the model's */
	bool used;
} tickets[NTICKETS];

static int result_code(void)
{
	static const int codes[] = {0, 0, 0, -5, 1, 99, -1};
	return FZ_PICK(g_f, codes);
}

static void advance(void)
{
	uint8_t k = fz_u8(g_f);
	int64_t d;
	switch (k % 8) {
	case 0:
		d = 0;
		break;
	case 1:
		d = 1;
		break;
	case 2:
		d = M.timeout;
		break;
	case 3:
		d = M.timeout == INT64_MAX ? INT64_MAX : M.timeout + 1;
		break;
	case 4:
		d = M.interval;
		break;
	case 5:
		d = M.interval + 1;
		break;
	case 6:
		d = fz_u16(g_f);
		break;
	default:
		d = (int64_t)(fz_u64(g_f) >> 1);
		break;
	}
	clk = sat_add(clk, d > 0 ? d : 0); /* monotonic, saturating */
}

struct exec_arg {
	int rc;
	bool ran;
	uint64_t gen;
};

static int exec_fn(void *arg)
{
	struct exec_arg *a = arg;
	a->ran = true;
	if (fz_u8(g_f) & 1)
		advance(); /* a slow call: time passes while it runs */
	if (fz_u8(g_f) & 1) { /* fn may call the breaker */
		m_current();
		CHECK_EQ(weft_breaker_state(br), M.state);
		check_events();
	}
	a->rc = result_code();
	m_done(a->gen, a->rc); /* the model's done, before the real one runs */
	return a->rc;
}

static void create(void)
{
	static const uint32_t maxr[] = {0, 1, 2, 3, 5};
	static const int64_t intervals[] = {0, -5, 50, 1000};
	static const int64_t timeouts[] = {0, -1, 100, 1000, INT64_MAX};
	static const int64_t starts[] = {0, 1000000000, INT64_MIN + 7, INT64_MAX - 5000};
	memset(&M, 0, sizeof M);
	weft_breaker_settings_t s = {0};
	s.max_requests = FZ_PICK(g_f, maxr);
	s.interval = FZ_PICK(g_f, intervals);
	s.timeout = FZ_PICK(g_f, timeouts);
	uint8_t fl = fz_u8(g_f);
	M.trip_kind = fl % 3;
	M.trip_k = 1 + (fl >> 2) % 4;
	M.succ_nonneg = fl & 0x10;
	M.excl99 = fl & 0x20;
	M.cb = !(fl & 0x40);
	if (M.trip_kind)
		s.ready_to_trip = trip_fn;
	if (M.succ_nonneg)
		s.is_successful = succ_fn;
	if (M.excl99)
		s.is_excluded = excl_fn;
	if (M.cb)
		s.on_state_change = on_change;
	s.user = &user_cookie;
	s.clock = fake_clock;
	if (fl & 0x80)
		snprintf(M.name, sizeof M.name, "br-%u", fz_u8(g_f));
	s.name = M.name[0] ? M.name : NULL;
	clk = FZ_PICK(g_f, starts);

	M.max_req = s.max_requests ? s.max_requests : 1;
	M.interval = s.interval > 0 ? s.interval : 0;
	M.timeout = s.timeout > 0 ? s.timeout : 60LL * 1000000000LL;
	M.state = CLOSED;
	M.mode = WEFT_BREAKER_NORMAL;
	M.since = clk;
	m_newgen(); /* generation 1 */
	CHECK_EQ(weft_breaker_create(&br, &s), 0);
	CHECK(strcmp(weft_breaker_name(br), M.name) == 0);
	memset(tickets, 0, sizeof tickets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	g_f = &f;
	create();
	while (fz_more(&f)) {
		uint8_t op = fz_u8(&f);
		switch (op % 12) {
		case 0:
		case 1: { /* allow, keeping the ticket */
			struct exec_arg a = {0};
			weft_breaker_ticket_t t;
			int want = m_allow(&a.gen);
			CHECK_EQ(weft_breaker_allow(br, &t), want);
			check_events();
			int i = (op >> 4) % NTICKETS;
			if (want == 0 && !tickets[i].used) {
				tickets[i].t = t;
				tickets[i].gen = a.gen;
				tickets[i].used = true;
			}
			break;
		}
		case 2:
		case 3: { /* done, each ticket once (stale ones are ignored) */
			int i = (op >> 4) % NTICKETS;
			if (!tickets[i].used)
				break;
			int rc = result_code();
			m_done(tickets[i].gen, rc);
			CHECK_EQ(weft_breaker_done(br, &tickets[i].t, rc), 0);
			check_events();
			tickets[i].used = false;
			break;
		}
		case 4:
		case 5: { /* execute: allow, fn (time may pass), done */
			struct exec_arg a = {0};
			int rcv = 12345;
			int want = m_allow(&a.gen);
			int rc = weft_breaker_execute(br, exec_fn, &a, op & 0x80 ? NULL : &rcv);
			check_events();
			CHECK_EQ(rc, want);
			CHECK_EQ(a.ran, want == 0);
			if (want == 0 && !(op & 0x80))
				CHECK_EQ(rcv, a.rc);
			break;
		}
		case 6:
		case 7:
			advance();
			break;
		case 8:
			m_current();
			CHECK_EQ(weft_breaker_state(br), M.state);
			check_events();
			break;
		case 9: {
			weft_breaker_counts_t c;
			CHECK_EQ(weft_breaker_counts(br, &c), 0);
			check_counts(&c);
			break;
		}
		case 10: { /* manual modes */
			static const int modes[][2] = {
				{WEFT_BREAKER_FORCED_OPEN, OPEN},
				{WEFT_BREAKER_FORCED_CLOSED, CLOSED},
				{WEFT_BREAKER_DISABLED, CLOSED},
				{WEFT_BREAKER_NORMAL, CLOSED},
			};
			int k = (op >> 4) % 4;
			m_set_mode(modes[k][0], modes[k][1]);
			int rc = k == 0 ? weft_breaker_force_open(br)
				 : k == 1 ? weft_breaker_force_closed(br)
				 : k == 2 ? weft_breaker_disable(br) : weft_breaker_reset(br);
			CHECK_EQ(rc, 0);
			check_events();
			break;
		}
		default:
			if ((op >> 4) == 0) { /* bad handles */
				weft_breaker_ticket_t t;
				CHECK_EQ(weft_breaker_allow(NULL, &t), -EINVAL);
				CHECK_EQ(weft_breaker_allow(br, NULL), -EINVAL);
				CHECK_EQ(weft_breaker_done(br, NULL, 0), -EINVAL);
				CHECK_EQ(weft_breaker_execute(br, NULL, NULL, NULL), -EINVAL);
				CHECK_EQ(weft_breaker_state(NULL), -EINVAL);
				CHECK_EQ(weft_breaker_counts(br, NULL), -EINVAL);
				CHECK_EQ(weft_breaker_stats(NULL, NULL), -EINVAL);
				CHECK(strcmp(weft_breaker_name(NULL), "") == 0);
				CHECK(strcmp(weft_breaker_state_name(op), "unknown") == 0 || op <= 2);
			}
			check_stats();
			break;
		}
	}
	check_stats();
	weft_breaker_destroy(br);
	br = NULL;
	return 0;
}
