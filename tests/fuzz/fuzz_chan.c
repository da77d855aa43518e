/* tests/fuzz/fuzz_chan.c: channels of every policy, capacity and element
 * size against the sequential model of chan_model.h.
 *
 * Input: up to 4 channels are created from the first bytes (policy,
 * capacity, element size, the spill's limit and block size), then each
 * op byte picks a call and a channel: try_send / try_recv (NULL elements
 * too), the blocking send / recv and send_many / recv_many when the model
 * says they complete at once, the _until calls with a deadline already
 * passed, the _ctx calls with a context already canceled or expired (or
 * the background one when they complete at once), bursts of sends (to
 * fill rings and spill blocks), close, and destroy-and-recreate. After
 * every op the model checks len, cap, stats and DROP_OLDEST's evictions. */
#include "chan_model.h"

#define NCH 4

static weft_ctx_t *ctx_canceled, *ctx_expired;

static void setup_ctxs(void)
{
	if (ctx_canceled)
		return;
	CHECK_EQ(weft_ctx_with_cancel(&ctx_canceled, weft_ctx_background()), 0);
	weft_ctx_cancel(ctx_canceled);
	CHECK_EQ(weft_ctx_with_deadline(&ctx_expired, weft_ctx_background(), 1), 0);
}

static uint64_t g_seq;

/* a deadline already passed */
static int64_t past(struct fz *f)
{
	switch (fz_u8(f) % 3) {
	case 0:
		return 0;
	case 1:
		return INT64_MIN;
	default:
		return weft_now() - 1;
	}
}

static void op_send(struct fz *f, struct mch *m, int how)
{
	unsigned char buf[MC_MAX_ELEM];
	uint64_t seq = ++g_seq;
	fz_fill(buf, m->esize, seq);
	/* a NULL element: -EINVAL when there are bytes to copy */
	bool null_elem = (fz_u8(f) & 15) == 0;
	const void *e = null_elem ? NULL : buf;
	if (null_elem && m->esize) {
		int rc = how == 0 ? weft_chan_try_send(m->ch, e) : weft_chan_send_until(m->ch, e, 0);
		CHECK_EQ(rc, -EINVAL);
		return;
	}
	bool ready = mc_send_ready(m);
	int rc, want;
	switch (how) {
	case 0: /* try */
		rc = weft_chan_try_send(m->ch, e);
		want = mc_send(m, seq);
		break;
	case 1: /* blocking, or with a passed deadline when it would wait */
		if (ready) {
			rc = weft_chan_send(m->ch, e);
			want = mc_send(m, seq);
		} else {
			rc = weft_chan_send_until(m->ch, e, past(f));
			want = -ETIMEDOUT;
		}
		break;
	case 2: /* a passed deadline: as try, but -ETIMEDOUT */
		rc = weft_chan_send_until(m->ch, e, past(f));
		want = mc_send(m, seq);
		if (want == -EAGAIN)
			want = -ETIMEDOUT;
		break;
	default: { /* contexts: done ones fail first; background blocks */
		uint8_t k = fz_u8(f) % 4;
		if (k == 0) {
			rc = weft_chan_send_ctx(m->ch, e, ctx_canceled);
			want = -ECANCELED;
		} else if (k == 1) {
			rc = weft_chan_send_ctx(m->ch, e, ctx_expired);
			want = -ETIMEDOUT;
		} else if (k == 2) {
			rc = weft_chan_send_ctx(m->ch, e, NULL);
			want = -EINVAL;
		} else if (ready) {
			rc = weft_chan_send_ctx(m->ch, e, weft_ctx_background());
			want = mc_send(m, seq);
		} else {
			rc = weft_chan_try_send(m->ch, e);
			want = mc_send(m, seq);
		}
		break;
	}
	}
	CHECK_EQ(rc, want);
}

static void op_recv(struct fz *f, struct mch *m, int how)
{
	unsigned char buf[MC_MAX_ELEM];
	bool null_elem = (fz_u8(f) & 15) == 0;
	void *e = null_elem ? NULL : buf;
	if (null_elem && m->esize) {
		int rc = how == 0 ? weft_chan_try_recv(m->ch, e) : weft_chan_recv_until(m->ch, e, 0);
		CHECK_EQ(rc, -EINVAL);
		return;
	}
	bool ready = mc_recv_ready(m);
	uint64_t seq = 0;
	int rc, want;
	switch (how) {
	case 0:
		rc = weft_chan_try_recv(m->ch, e);
		want = mc_recv(m, &seq);
		break;
	case 1:
		if (ready) {
			rc = weft_chan_recv(m->ch, e);
			want = mc_recv(m, &seq);
		} else {
			rc = weft_chan_recv_until(m->ch, e, past(f));
			want = -ETIMEDOUT;
		}
		break;
	case 2:
		rc = weft_chan_recv_until(m->ch, e, past(f));
		want = mc_recv(m, &seq);
		if (want == -EAGAIN)
			want = -ETIMEDOUT;
		break;
	default: {
		uint8_t k = fz_u8(f) % 4;
		if (k == 0) {
			rc = weft_chan_recv_ctx(m->ch, e, ctx_canceled);
			want = -ECANCELED;
		} else if (k == 1) {
			rc = weft_chan_recv_ctx(m->ch, e, ctx_expired);
			want = -ETIMEDOUT;
		} else if (k == 2) {
			rc = weft_chan_recv_ctx(m->ch, e, NULL);
			want = -EINVAL;
		} else if (ready) {
			rc = weft_chan_recv_ctx(m->ch, e, weft_ctx_background());
			want = mc_recv(m, &seq);
		} else {
			rc = weft_chan_try_recv(m->ch, e);
			want = mc_recv(m, &seq);
		}
		break;
	}
	}
	CHECK_EQ(rc, want);
	if (rc == 0 && e)
		mc_check_elem(m, buf, seq);
}

/* send_many / recv_many: n == 0 is -EINVAL; otherwise only when the first
 * element goes without waiting; then as many as go without waiting. */
static void op_many(struct fz *f, struct mch *m, bool send)
{
	size_t n = fz_u8(f) % 40;
	unsigned char *buf = malloc((n ? n : 1) * (m->esize ? m->esize : 1));
	CHECK(buf != NULL);
	void *e = m->esize || (fz_u8(f) & 1) ? buf : NULL;
	long rc;
	if (n == 0) {
		rc = send ? weft_chan_send_many(m->ch, e, 0) : weft_chan_recv_many(m->ch, e, 0);
		CHECK_EQ(rc, -EINVAL);
		free(buf);
		return;
	}
	if (send) {
		uint64_t first = g_seq + 1;
		for (size_t i = 0; i < n; i++)
			fz_fill(buf + i * m->esize, m->esize, ++g_seq);
		/* the first would wait: an unbuffered channel needs a partner */
		if (!mc_send_ready(m) || (m->cap == 0 && !m->closed)) {
			free(buf);
			return;
		}
		rc = weft_chan_send_many(m->ch, e, n);
		int r0 = mc_send(m, first);
		if (r0) {
			CHECK_EQ(rc, r0);
		} else {
			size_t k = 1;
			/* then as many as fit without waiting: a DROP_NEWEST
			 * refusal after the first ends the batch uncounted */
			while (k < n) {
				if (m->policy == WEFT_OVERFLOW_DROP_NEWEST && m->n == m->cap)
					break;
				if (mc_send(m, first + k) != 0)
					break;
				k++;
			}
			CHECK_EQ(rc, (long)k);
		}
	} else {
		if (!mc_recv_ready(m)) {
			free(buf);
			return;
		}
		rc = weft_chan_recv_many(m->ch, e, n);
		uint64_t seq;
		int r0 = mc_recv(m, &seq);
		if (r0) {
			CHECK_EQ(rc, r0);
		} else {
			size_t k = 0;
			for (;;) {
				if (e)
					mc_check_elem(m, buf + k * m->esize, seq);
				k++;
				if (k == n || mc_recv(m, &seq) != 0)
					break;
			}
			CHECK_EQ(rc, (long)k);
		}
	}
	free(buf);
}

static void op_burst(struct fz *f, struct mch *m)
{
	unsigned k = fz_u8(f);
	unsigned char buf[MC_MAX_ELEM];
	bool recv = k & 1;
	k = k >> 1;
	for (unsigned i = 0; i < k; i++) {
		if (recv) {
			uint64_t seq = 0;
			int rc = weft_chan_try_recv(m->ch, buf);
			CHECK_EQ(rc, mc_recv(m, &seq));
			if (rc == 0)
				mc_check_elem(m, buf, seq);
		} else {
			uint64_t seq = ++g_seq;
			fz_fill(buf, m->esize, seq);
			CHECK_EQ(weft_chan_try_send(m->ch, buf), mc_send(m, seq));
		}
		if (m->nev_model >= MC_MAX_EVICT / 2)
			mc_check(m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	struct mch ch[NCH];
	setup_ctxs();
	unsigned nch = 1 + fz_below(&f, NCH);
	for (unsigned i = 0; i < nch; i++)
		mc_create(&f, &ch[i]);
	while (fz_more(&f)) {
		uint8_t op = fz_u8(&f);
		struct mch *m = &ch[(op >> 4) % nch];
		switch (op & 15) {
		case 0:
		case 1:
		case 2:
		case 3:
			op_send(&f, m, op & 3);
			break;
		case 4:
		case 5:
		case 6:
		case 7:
			op_recv(&f, m, op & 3);
			break;
		case 8:
			op_many(&f, m, true);
			break;
		case 9:
			op_many(&f, m, false);
			break;
		case 10:
		case 11:
			op_burst(&f, m);
			break;
		case 12: /* close: once 0, then -EPIPE */
			CHECK_EQ(weft_chan_close(m->ch), m->closed ? -EPIPE : 0);
			m->closed = true;
			break;
		case 13: /* NULL channels: -EINVAL, never a crash or a wait */
			CHECK_EQ(weft_chan_try_send(NULL, NULL), -EINVAL);
			CHECK_EQ(weft_chan_recv(NULL, NULL), -EINVAL);
			CHECK_EQ(weft_chan_close(NULL), -EINVAL);
			CHECK_EQ(weft_chan_len(NULL), 0);
			CHECK_EQ(weft_chan_cap(NULL), 0);
			CHECK_EQ(weft_chan_stats(m->ch, NULL), -EINVAL);
			break;
		case 14: /* destroy with whatever is buffered; a new one */
			mc_destroy(m);
			mc_create(&f, m);
			break;
		default: /* drain all that is there */
			while (m->n) {
				unsigned char buf[MC_MAX_ELEM];
				uint64_t seq = 0;
				CHECK_EQ(weft_chan_try_recv(m->ch, buf), mc_recv(m, &seq));
				mc_check_elem(m, buf, seq);
			}
			CHECK_EQ(weft_chan_try_recv(m->ch, NULL), m->esize ? -EINVAL
							       : m->closed ? -EPIPE : -EAGAIN);
			break;
		}
		mc_check(m);
	}
	for (unsigned i = 0; i < nch; i++)
		mc_destroy(&ch[i]);
	return 0;
}
