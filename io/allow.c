/* SPDX-License-Identifier: MIT */
#include "allow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool strebm_allow_prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full))
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((a[full] & mask) != (b[full] & mask))
			return false;
	}
	return true;
}

int strebm_allow_parse(const char *tok, struct strebm_allow_entry *e, bool *all)
{
	char text[INET6_ADDRSTRLEN + 8], *slash;
	size_t n = strlen(tok);
	long bits = -1;

	if (!strcmp(tok, "*")) {
		*all = true;
		return 0;
	}
	if (n == 0 || n >= sizeof(text))
		return -EINVAL;
	memcpy(text, tok, n + 1);
	memset(e, 0, sizeof(*e));
	if (text[n - 1] == '.') {
		/* IPv4 prefix "a.b." : complete it with zeros and take whole octets */
		unsigned dots = 0;
		size_t i;
		for (i = 0; i < n; i++)
			dots += text[i] == '.';
		if (dots > 3)
			return -EINVAL;
		text[n - 1] = 0;
		for (i = dots; i < 4; i++)
			strcat(text, ".0");
		if (inet_pton(AF_INET, text, e->addr) != 1)
			return -EINVAL;
		e->family = AF_INET;
		e->bits = 8 * dots;
		return 0;
	}
	slash = strchr(text, '/');
	if (slash) {
		char *end;
		*slash = 0;
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || bits < 0)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, text, e->addr) == 1) {
		e->family = AF_INET;
		if (bits > 32)
			return -EINVAL;
		e->bits = bits < 0 ? 32 : (unsigned)bits;
	} else if (inet_pton(AF_INET6, text, e->addr) == 1) {
		e->family = AF_INET6;
		if (bits > 128)
			return -EINVAL;
		e->bits = bits < 0 ? 128 : (unsigned)bits;
	} else {
		return -EINVAL;
	}
	return 0;
}

int strebm_allow_check(const char *list, char *err, size_t errlen)
{
	const char *p = list ? list : "";

	while (*p) {
		char item[INET6_ADDRSTRLEN + 8];
		struct strebm_allow_entry e;
		bool all = false;
		size_t n = strcspn(p, ", \t");

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(item) || (memcpy(item, p, n), item[n] = 0,
					  strebm_allow_parse(item, &e, &all) < 0)) {
			if (err && errlen)
				snprintf(err, errlen, "'%.*s' is not an address, address/bits, "
					 "IPv4 prefix ending in '.', or '*'", (int)(n > 64 ? 64 : n), p);
			return -EINVAL;
		}
		p += n;
	}
	return 0;
}
