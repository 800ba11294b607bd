/* SPDX-License-Identifier: MIT */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(int r, char *err, size_t errlen, const char *what, const char *path)
{
	if (err && errlen)
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-r));
	return r;
}

static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else {
		if (fsync(fd) < 0 && errno != EINVAL)
			r = -errno;
		close(fd);
	}
	free(copy);
	return r;
}

/* What a save may replace at path: nothing, an empty regular file, or a
 * strebmd state. A symbolic link is followed (*real gets the target, to be
 * freed); anything else -- a recording, a text, a directory, a device -- is
 * refused, so that a wrong state_file or /strebm/save path loses nothing.
 * @return 0, or -EEXIST with the reason in err. */
static int check_target(const char *path, char **real, char *err, size_t errlen)
{
	struct stat st;
	char head[8];
	int fd;
	ssize_t got;

	*real = NULL;
	if (lstat(path, &st) < 0)
		return 0; /* absent (or unreadable: the write says why) */
	if (S_ISLNK(st.st_mode)) {
		*real = realpath(path, NULL);
		if (!*real || stat(*real, &st) < 0) {
			free(*real);
			*real = NULL;
			snprintf(err, errlen, "%s: a symbolic link to nothing; not replaced", path);
			return -EEXIST;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		free(*real);
		*real = NULL;
		snprintf(err, errlen, "%s: exists and is not a regular file; not replaced", path);
		return -EEXIST;
	}
	if (st.st_size == 0)
		return 0;
	fd = open(*real ? *real : path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* unreadable: the rename decides */
	got = read(fd, head, sizeof(head));
	close(fd);
	if (got != (ssize_t)sizeof(head) || memcmp(head, STREBM_STATE_MAGIC, sizeof(head))) {
		free(*real);
		*real = NULL;
		snprintf(err, errlen, "%s: exists and is not a strebmd state; not replaced "
			 "(remove it or choose another path)", path);
		return -EEXIST;
	}
	return 0;
}

int strebm_statefile_probe(const char *path, char *err, size_t errlen)
{
	char *tmp, *real;
	size_t n;
	int fd, r;

	if (!path || !*path)
		return fail(-EINVAL, err, errlen, "cannot write", path ? path : "(null)");
	r = check_target(path, &real, err, errlen);
	if (r < 0)
		return r;
	if (real)
		path = real;
	n = strlen(path) + 16;
	tmp = malloc(n);
	if (!tmp) {
		r = fail(-ENOMEM, err, errlen, "cannot write", path);
		free(real);
		return r;
	}
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		r = fail(r, err, errlen, "cannot create a file beside", path);
		free(real);
		return r;
	}
	close(fd);
	unlink(tmp);
	free(tmp);
	free(real);
	return 0;
}

int strebm_statefile_write(const char *path, const void *buf, size_t len, char *err,
			   size_t errlen)
{
	const unsigned char *p = buf;
	char *tmp, *real;
	size_t done = 0, n;
	int fd, r;

	if (!path || !*path || (!buf && len))
		return fail(-EINVAL, err, errlen, "cannot write", path ? path : "(null)");
	/* the rename would replace whatever is there: only ever an empty regular
	 * file or a state (through a symbolic link: its target) */
	r = check_target(path, &real, err, errlen);
	if (r < 0)
		return r;
	if (real)
		path = real;
	n = strlen(path) + 16;
	tmp = malloc(n);
	if (!tmp) {
		r = fail(-ENOMEM, err, errlen, "cannot write", path);
		free(real);
		return r;
	}
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		r = fail(r, err, errlen, "cannot create a file beside", path);
		free(real);
		return r;
	}
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail_tmp;
		}
		done += (size_t)w;
	}
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto fail_tmp;
	}
	if (close(fd) < 0) {
		r = -errno;
		fd = -1;
		goto fail_tmp;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail_tmp;
	}
	free(tmp);
	r = sync_dir(path);
	if (r < 0)
		fail(r, err, errlen, "cannot sync the directory of", path);
	free(real);
	return r;
fail_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	r = fail(r, err, errlen, "cannot write", path);
	free(real);
	return r;
}

int strebm_statefile_read(const char *path, void *buf, size_t cap, size_t *len, char *err,
			  size_t errlen)
{
	unsigned char *p = buf;
	struct stat st;
	size_t done = 0;
	int fd, r;

	if (!path || !*path || (!buf && cap) || !len)
		return fail(-EINVAL, err, errlen, "cannot read", path ? path : "(null)");
	/* O_NONBLOCK: a FIFO must not block the control thread */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail(-errno, err, errlen, "cannot open", path);
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > cap) {
		close(fd);
		snprintf(err, errlen, "%s: too large for a state of this model (%llu bytes, at most "
			 "%zu)", path, (unsigned long long)st.st_size, cap);
		return -EFBIG;
	}
	for (;;) {
		ssize_t n = read(fd, p + done, cap - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		done += (size_t)n;
		if (done == cap) {
			/* the file grew past the buffer since fstat */
			unsigned char extra;
			if (read(fd, &extra, 1) > 0) {
				r = -EFBIG;
				goto out;
			}
			break;
		}
	}
	*len = done;
	r = 0;
out:
	close(fd);
	return r < 0 ? fail(r, err, errlen, "cannot read", path) : 0;
}

int strebm_statefile_save_engine(const char *path, const struct strebm_engine *e, char *err,
				 size_t errlen)
{
	size_t n = strebm_engine_state_size(e);
	void *buf;
	int r;

	if (!n)
		return fail(-EINVAL, err, errlen, "cannot save the state to", path ? path : "(null)");
	buf = malloc(n);
	if (!buf)
		return fail(-ENOMEM, err, errlen, "cannot save the state to", path);
	r = strebm_engine_save_state(e, buf, n);
	if (r < 0)
		r = fail(r, err, errlen, "cannot save the state to", path);
	else
		r = strebm_statefile_write(path, buf, n, err, errlen);
	free(buf);
	return r;
}

int strebm_statefile_load_engine(const char *path, struct strebm_engine *e, char *err,
				 size_t errlen)
{
	size_t n = strebm_engine_state_size(e), len = 0;
	void *buf;
	int r;

	if (!n)
		return fail(-EINVAL, err, errlen, "cannot load the state from", path ? path : "(null)");
	buf = malloc(n);
	if (!buf)
		return fail(-ENOMEM, err, errlen, "cannot load the state from", path);
	r = strebm_statefile_read(path, buf, n, &len, err, errlen);
	if (r == -EFBIG || (r == 0 && len != n)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: not a state of this engine (%s than %zu bytes)",
				 path, r == -EFBIG ? "larger" : "smaller", n);
		r = -EINVAL;
	} else if (r == 0) {
		r = strebm_engine_load_state(e, buf, len);
		if (r < 0 && err && errlen)
			snprintf(err, errlen,
				 "%s: not a state of this engine (other channels, sources, window "
				 "or hop; another version; or corrupt)", path);
	}
	free(buf);
	return r;
}
