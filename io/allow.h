/* SPDX-License-Identifier: MIT */
/*
 * strebm allow: the osc.allow list (sender addresses and prefixes), parsed
 * the same way by the configuration check and the OSC server. No liblo.
 *
 * An item is an IPv4 or IPv6 address, an address/bits prefix, an IPv4
 * prefix of whole octets ending in '.' ("192.168.1."), or '*' (anyone).
 * Items are separated by commas and/or blanks.
 */
#ifndef STREBM_ALLOW_H
#define STREBM_ALLOW_H

#include <stdbool.h>
#include <stddef.h>

struct strebm_allow_entry {
	int family;                /* AF_INET, AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

/** Parse one item. '*' sets *all and leaves e alone. @return 0 or -EINVAL. */
int strebm_allow_parse(const char *item, struct strebm_allow_entry *e, bool *all);

/**
 * Check a whole list. @return 0, or -EINVAL with err naming the first bad
 * item ("'x' is not an address, ...").
 */
int strebm_allow_check(const char *list, char *err, size_t errlen);

/** Whether the first @bits bits of a and b agree. */
bool strebm_allow_prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits);

#endif
