/* bench/baseline/wg_mutex.c: see wg_mutex.h. */
#include "wg_mutex.h"

#include <errno.h>

int mwg_init(mwg_t *wg)
{
	int rc;

	if (!wg)
		return -EINVAL;
	if ((rc = pthread_mutex_init(&wg->mu, NULL)) != 0)
		return -rc;
	if ((rc = pthread_cond_init(&wg->cv, NULL)) != 0) {
		pthread_mutex_destroy(&wg->mu);
		return -rc;
	}
	wg->count = 0;
	wg->round = 0;
	wg->waiters = 0;
	return 0;
}

void mwg_destroy(mwg_t *wg)
{
	if (!wg)
		return;
	pthread_cond_destroy(&wg->cv);
	pthread_mutex_destroy(&wg->mu);
}

int mwg_add(mwg_t *wg, int64_t delta)
{
	int64_t n;

	if (!wg)
		return -EINVAL;
	pthread_mutex_lock(&wg->mu);
	n = wg->count + delta;
	if (n < 0 || n > INT32_MAX) {
		pthread_mutex_unlock(&wg->mu);
		return -EINVAL;
	}
	wg->count = n;
	if (n == 0 && delta != 0) {
		wg->round++;
		/* wake only when someone waits */
		if (wg->waiters)
			pthread_cond_broadcast(&wg->cv);
	}
	pthread_mutex_unlock(&wg->mu);
	return 0;
}

int mwg_done(mwg_t *wg)
{
	return mwg_add(wg, -1);
}

int mwg_wait(mwg_t *wg)
{
	uint64_t round;

	if (!wg)
		return -EINVAL;
	pthread_mutex_lock(&wg->mu);
	round = wg->round;
	if (wg->count > 0) {
		wg->waiters++;
		while (wg->round == round)
			pthread_cond_wait(&wg->cv, &wg->mu);
		wg->waiters--;
	}
	pthread_mutex_unlock(&wg->mu);
	return 0;
}
