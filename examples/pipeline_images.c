/* pipeline_images: the seed's image pipeline: 1 URL reader, 10
 * downloaders, 5 resizers, 1 uploader, the I/O simulated with sleeps.
 *
 *	urls := readURLs()                       // 1 goroutine
 *	images := fanIn(download x 10)(urls)      // 10 downloaders
 *	small := fanIn(fanOut(resize, 5)(images)) // 5 resizers, each its own output
 *	upload(small)                            // 1 uploader
 *
 * 200 URLs; a download sleeps 5-15 ms, a resize computes for ~0.3 ms, an
 * upload sleeps 0.5 ms. Done one after the other that is about 2.2 s; with
 * 10 downloaders in parallel the line runs at the uploader's pace. The
 * sleeps are weft_sleep, which parks a task (the workers are tasks, the
 * default); blocking I/O would want weft_pipeline_set_tasks(p, 0).
 * Every image must reach the uploader exactly once; the program checks
 * that, then prints the per-stage metrics.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

#define URLS 200

struct image {
	int id;
	int width, height;
	unsigned checksum;
};

static int read_urls(weft_emit_t *out, void *user)
{
	(void)user;
	for (int id = 0; id < URLS; id++) {
		int rc = weft_emit(out, &id); /* "https://example.com/img/<id>.jpg" */
		if (rc)
			return rc;
	}
	return 0;
}

static int download(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	int id = *(const int *)in;
	weft_sleep((5 + id % 11) * 1000000LL); /* the network */
	struct image im = {id, 4000, 3000, (unsigned)id * 2654435761u};
	return weft_emit(out, &im);
}

static int resize(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	struct image im = *(const struct image *)in;
	int64_t until = weft_now() + 300000; /* the CPU: ~0.3 ms */
	while (weft_now() < until)
		im.checksum = im.checksum * 31 + 7;
	im.width /= 10;
	im.height /= 10;
	im.checksum = (unsigned)im.id * 2654435761u; /* (deterministic) */
	return weft_emit(out, &im);
}

struct uploads {
	unsigned char seen[URLS];
	int count, bad;
};

static int upload(const void *in, void *user)
{
	struct uploads *u = user;
	const struct image *im = in;
	weft_sleep(500000); /* the network */
	if (im->id < 0 || im->id >= URLS || u->seen[im->id]++ || im->width != 400 ||
	    im->checksum != (unsigned)im->id * 2654435761u)
		u->bad++;
	u->count++;
	return 0;
}

int main(void)
{
	weft_pipeline_t *p;
	weft_chan_t *urls, *images, *resized[5], *small;
	struct uploads up;
	memset(&up, 0, sizeof up);
	if (weft_pipeline_create(&p, NULL))
		return 1;
	weft_stage_opts_t r = {.name = "reader", .out_elem_size = sizeof(int), .out_capacity = 16};
	weft_stage_opts_t d = {.name = "download", .workers = 10,
			       .out_elem_size = sizeof(struct image), .out_capacity = 16};
	weft_stage_opts_t z = {.name = "resize", .out_capacity = 4};
	weft_stage_opts_t m = {.name = "merge", .out_capacity = 16};
	weft_stage_opts_t u = {.name = "upload"};
	int64_t t0 = weft_now();
	if (weft_pipeline_source(p, &urls, read_urls, NULL, &r) ||
	    weft_pipeline_stage(p, urls, &images, download, NULL, &d) ||
	    weft_pipeline_fan_out(p, images, resized, 5, resize, NULL, &z) ||
	    weft_pipeline_fan_in(p, resized, 5, &small, &m) ||
	    weft_pipeline_sink(p, small, upload, &up, &u))
		return 1;
	int rc = weft_pipeline_wait(p);
	double ms = (double)(weft_now() - t0) / 1e6;
	printf("uploaded %d images, each once: %s, in %.0f ms (one after the other: ~2200 ms)\n",
	       up.count, up.bad == 0 && up.count == URLS ? "yes" : "NO", ms);
	weft_stage_stats_t st[5];
	long k = weft_pipeline_stats(p, st, 5);
	for (long i = 0; i < k; i++)
		printf("  %-8s workers %2u  in %3llu  out %3llu  failures %llu  busy %6.1f ms\n",
		       st[i].name, st[i].min_workers, (unsigned long long)st[i].in,
		       (unsigned long long)st[i].out, (unsigned long long)st[i].failures,
		       (double)st[i].busy_ns / 1e6);
	printf("wait: %d; every stage closed its output and every worker was joined\n", rc);
	weft_pipeline_destroy(p);
	return rc == 0 && up.bad == 0 && up.count == URLS ? 0 : 1;
}
