/* policy_cache.h: parsed session policies kept per worker, keyed by
 * session name and policy hash.
 *
 * Parsing the YAML was a tenth of an attestation's CPU; the store still
 * decides which version is current (the caller reads and opens the session
 * record first and looks up by the hash it found), so an update takes
 * effect on the next attestation. A policy holds secret values given by
 * an owner: entries are freed with arca_policy_free, which wipes them. Not
 * thread-safe: one cache per worker. */
#ifndef CAS_POLICY_CACHE_H
#define CAS_POLICY_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "arca/policy.h"

#define CAS_POLICY_CACHE_SLOTS 8

struct cas_policy_cache {
	struct {
		char name[ARCA_NAME_MAX + 1];
		uint8_t hash[32];
		struct arca_policy *p; /* NULL: empty slot */
		unsigned long long used;
	} slot[CAS_POLICY_CACHE_SLOTS];
	unsigned long long tick;
};

/* The cached policy of (name, hash), or NULL. It stays valid until the
 * next cas_policy_cache_put or _free on this cache. */
const struct arca_policy *cas_policy_cache_get(struct cas_policy_cache *c, const char *name, const uint8_t hash[32]);
/* Takes p; evicts the least recently used entry. */
void cas_policy_cache_put(struct cas_policy_cache *c, const char *name, const uint8_t hash[32], struct arca_policy *p);
void cas_policy_cache_free(struct cas_policy_cache *c);

#endif
