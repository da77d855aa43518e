/* tests/common/tmpdir.h: directory helpers of the pipeline and overflow
 * tests: entries of a directory (/proc/self/task counts the process's
 * threads; a spill directory must stay empty) and a fresh temporary
 * directory under $TMPDIR (or /tmp). */
#ifndef WEFT_TEST_TMPDIR_H
#define WEFT_TEST_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Entries of dir, "." and ".." not counted. */
static inline int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Threads of this process now. */
static inline int count_threads(void)
{
	return dir_entries("/proc/self/task");
}

/* Make $TMPDIR/<prefix>-XXXXXX (or under /tmp) into buf. */
static inline void make_temp_dir(char *buf, size_t size, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, size, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	CHECK(mkdtemp(buf) != NULL);
}

#endif
