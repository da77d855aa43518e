/* tests/fuzz/fuzz_select.c: select over several channels of every policy,
 * checked against chan_model.h.
 *
 * Input: 2-5 channels (any policy, capacity, element size), then ops:
 * fill or drain a channel, close one, or a select over 1-40 cases built
 * from the input (SEND or RECV on any of the channels, the same channel
 * in several cases, disabled cases, RECV into NULL, now and then a bad op
 * or a NULL SEND element). The model says which cases are ready; then
 *   select_try      must do one of them, or say -EAGAIN iff none is;
 *   select_until    (deadline passed) likewise, with -ETIMEDOUT;
 *   select          only when a case is ready (it must not wait), or with
 *                   no enabled case (-EINVAL: it would wait forever);
 *   select_ctx      with a canceled context: -ECANCELED, nothing done.
 * The case done is applied to the model: its err (0, -EPIPE, -ENOBUFS),
 * the element received, the channel's counts. */
#include "chan_model.h"

#define NCH 5
#define MAX_CASES 40 /* past 32 select allocates its arrays */

static weft_ctx_t *ctx_canceled;
static uint64_t g_seq;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {data, size};
	struct mch ch[NCH];
	if (!ctx_canceled) {
		CHECK_EQ(weft_ctx_with_cancel(&ctx_canceled, weft_ctx_background()), 0);
		weft_ctx_cancel(ctx_canceled);
	}
	unsigned nch = 2 + fz_below(&f, NCH - 1);
	for (unsigned i = 0; i < nch; i++)
		mc_create(&f, &ch[i]);

	static unsigned char bufs[MAX_CASES][MC_MAX_ELEM];
	weft_case_t cases[MAX_CASES];
	int which[MAX_CASES]; /* the model channel of each case, -1 disabled */
	uint64_t seqs[MAX_CASES];

	while (fz_more(&f)) {
		uint8_t op = fz_u8(&f);
		struct mch *m = &ch[(op >> 4) % nch];
		unsigned char buf[MC_MAX_ELEM];
		uint64_t seq = 0;
		switch (op & 7) {
		case 0: /* fill a few */
			for (unsigned k = fz_u8(&f) % 8; k > 0; k--) {
				fz_fill(buf, m->esize, ++g_seq);
				CHECK_EQ(weft_chan_try_send(m->ch, buf), mc_send(m, g_seq));
			}
			mc_check(m);
			continue;
		case 1: /* drain a few */
			for (unsigned k = fz_u8(&f) % 8; k > 0; k--) {
				int rc = weft_chan_try_recv(m->ch, buf);
				CHECK_EQ(rc, mc_recv(m, &seq));
				if (rc == 0)
					mc_check_elem(m, buf, seq);
			}
			mc_check(m);
			continue;
		case 2:
			if ((fz_u8(&f) & 3) == 0) {
				CHECK_EQ(weft_chan_close(m->ch), m->closed ? -EPIPE : 0);
				m->closed = true;
			}
			continue;
		default:
			break;
		}

		/* a select: build the cases */
		size_t n = fz_u8(&f) % (MAX_CASES + 1);
		bool bad = false, any_enabled = false;
		for (size_t i = 0; i < n; i++) {
			uint8_t c = fz_u8(&f);
			weft_case_t *k = &cases[i];
			memset(k, 0, sizeof *k);
			k->err = 12345;
			if (c % 8 == 7) { /* disabled: NULL channel, anything else */
				which[i] = -1;
				k->op = c & 0x80 ? 99 : WEFT_SEND;
				k->elem = NULL;
				continue;
			}
			which[i] = (int)((c >> 3) % nch);
			struct mch *cm = &ch[which[i]];
			k->chan = cm->ch;
			any_enabled = true;
			k->op = c & 1 ? WEFT_SEND : WEFT_RECV;
			k->elem = bufs[i];
			if (k->op == WEFT_SEND) {
				seqs[i] = ++g_seq;
				fz_fill(bufs[i], cm->esize, seqs[i]);
			} else if ((c & 0x80) && (c & 0x40)) {
				k->elem = NULL; /* RECV: drop the element */
			}
			if ((c & 0x7E) == 0x7C) { /* rarely: bad input */
				if (k->op == WEFT_SEND)
					k->elem = NULL; /* bad unless signal-only */
				else
					k->op = 0;
				bad |= k->op == 0 || cm->esize != 0;
			}
		}
		bool ready[MAX_CASES];
		bool any_ready = false;
		for (size_t i = 0; i < n; i++) {
			ready[i] = which[i] >= 0 &&
				   (cases[i].op == WEFT_SEND ? mc_send_ready(&ch[which[i]])
							      : mc_recv_ready(&ch[which[i]]));
			any_ready |= ready[i];
		}
		uint8_t how = fz_u8(&f) % 4;
		int rc;
		if (how == 0) {
			rc = weft_select_try(cases, n);
		} else if (how == 1) {
			rc = weft_select_until(cases, n, (fz_u8(&f) & 1) ? 0 : weft_now() - 1);
		} else if (how == 2) {
			if (!any_ready && any_enabled && !bad) /* it would wait */
				rc = weft_select_try(cases, n), how = 0;
			else
				rc = weft_select(cases, n);
		} else {
			rc = weft_select_ctx(cases, n, ctx_canceled);
		}
		if (bad) {
			CHECK_EQ(rc, -EINVAL);
			continue;
		}
		if (how == 3) {
			CHECK_EQ(rc, -ECANCELED);
			continue;
		}
		if (how == 2 && !any_enabled) {
			CHECK_EQ(rc, -EINVAL); /* Go would block forever */
			continue;
		}
		if (!any_ready) {
			CHECK_EQ(rc, how == 1 ? -ETIMEDOUT : -EAGAIN);
			continue;
		}
		/* one ready case was done */
		if (rc < 0 || (size_t)rc >= n) {
			fprintf(stderr, "select returned %d with a ready case\n", rc);
			CHECK(!"select missed a ready case");
		}
		CHECK(ready[rc]);
		struct mch *cm = &ch[which[rc]];
		weft_case_t *k = &cases[rc];
		if (k->op == WEFT_SEND) {
			int want = mc_send(cm, seqs[rc]);
			CHECK_EQ(k->err, want);
		} else {
			int want = mc_recv(cm, &seq);
			CHECK_EQ(k->err, want);
			if (want == 0 && k->elem)
				mc_check_elem(cm, k->elem, seq);
		}
		for (unsigned i = 0; i < nch; i++)
			mc_check(&ch[i]);
	}
	for (unsigned i = 0; i < nch; i++)
		mc_destroy(&ch[i]);
	return 0;
}
