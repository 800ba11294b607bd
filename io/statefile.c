/* SPDX-License-Identifier: MIT */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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
 * strebmd state the process may write. A symbolic link is followed (*real
 * gets the target, to be freed; a link to a state not made yet is fine);
 * anything else -- a recording, a text, a file it cannot read, a read-only
 * state, a directory, a device -- is refused, so that a wrong state_file or
 * /strebm/save path loses nothing. *mode gets the existing file's permission
 * bits (0: none there). @return 0, or -EEXIST with the reason in err. */
static int check_target(const char *path, char **real, mode_t *mode, char *err, size_t errlen)
{
	struct stat st;
	char head[8];
	int fd;
	ssize_t got;

	*real = NULL;
	*mode = 0;
	if (lstat(path, &st) < 0)
		return 0; /* absent (or unreachable: the write says why) */
	if (S_ISLNK(st.st_mode)) {
		char link[PATH_MAX], *copy, *dir;
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0) {
			snprintf(err, errlen, "%s: a symbolic link that cannot be read; not replaced",
				 path);
			return -EEXIST;
		}
		link[n] = '\0';
		copy = strdup(path);
		if (!copy)
			return fail(-ENOMEM, err, errlen, "cannot write", path);
		dir = dirname(copy);
		if (link[0] == '/')
			*real = strdup(link);
		else if ((*real = malloc(strlen(dir) + strlen(link) + 2)))
			sprintf(*real, "%s/%s", dir, link);
		free(copy);
		if (!*real)
			return fail(-ENOMEM, err, errlen, "cannot write", path);
		if (lstat(*real, &st) < 0) {
			if (errno == ENOENT)
				return 0; /* a link to a state not written yet */
			free(*real);
			*real = NULL;
			snprintf(err, errlen, "%s: its link target cannot be reached; not replaced", path);
			return -EEXIST;
		}
		if (S_ISLNK(st.st_mode)) { /* a chain: the last target, by realpath */
			char *r = realpath(*real, NULL);
			free(*real);
			*real = r;
			if (!r || stat(r, &st) < 0) {
				free(*real);
				*real = NULL;
				snprintf(err, errlen, "%s: a chain of symbolic links to nothing (or a loop); "
					 "not replaced", path);
				return -EEXIST;
			}
		}
	}
	if (!S_ISREG(st.st_mode)) {
		free(*real);
		*real = NULL;
		snprintf(err, errlen, "%s: exists and is not a regular file; not replaced", path);
		return -EEXIST;
	}
	*mode = st.st_mode & 0777;
	if (st.st_size == 0)
		return 0;
	fd = open(*real ? *real : path, O_RDONLY | O_CLOEXEC);
	got = fd < 0 ? -1 : read(fd, head, sizeof(head));
	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof(head) || memcmp(head, STREBM_STATE_MAGIC, sizeof(head))) {
		snprintf(err, errlen, "%s: exists and %s; not replaced (remove it or choose another "
			 "path)", path, fd < 0 ? "cannot be read to check that it is a strebmd state"
			 : "is not a strebmd state");
		free(*real);
		*real = NULL;
		return -EEXIST;
	}
	if (access(*real ? *real : path, W_OK) < 0) {
		snprintf(err, errlen, "%s: a read-only state; not replaced", path);
		free(*real);
		*real = NULL;
		return -EEXIST;
	}
	return 0;
}

int strebm_statefile_probe(const char *path, char *err, size_t errlen)
{
	char *tmp, *real;
	size_t n;
	int fd, r;
	mode_t mode;

	if (!path || !*path)
		return fail(-EINVAL, err, errlen, "cannot write", path ? path : "(null)");
	r = check_target(path, &real, &mode, err, errlen);
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
	mode_t mode;

	if (!path || !*path || (!buf && len))
		return fail(-EINVAL, err, errlen, "cannot write", path ? path : "(null)");
	/* the rename would replace whatever is there: only ever an empty regular
	 * file or a state (through a symbolic link: its target) */
	r = check_target(path, &real, &mode, err, errlen);
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
	/* a replaced state keeps its permissions; a new one is 0644 */
	if (fchmod(fd, mode ? mode : 0644) < 0 || fsync(fd) < 0) {
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
