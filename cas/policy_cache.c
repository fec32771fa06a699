/* policy_cache.c: see policy_cache.h. A handful of slots searched
 * linearly: a CAS serves few sessions at a rate where this matters, and
 * a miss only costs one parse. */
#include "policy_cache.h"

#include <string.h>

#include "arca/crypto.h"

const struct arca_policy *cas_policy_cache_get(struct cas_policy_cache *c, const char *name, const uint8_t hash[32])
{
	for (size_t i = 0; i < CAS_POLICY_CACHE_SLOTS; i++) {
		if (c->slot[i].p && strcmp(c->slot[i].name, name) == 0 && arca_ct_eq(c->slot[i].hash, hash, 32)) {
			c->slot[i].used = ++c->tick;
			return c->slot[i].p;
		}
	}
	return NULL;
}

void cas_policy_cache_put(struct cas_policy_cache *c, const char *name, const uint8_t hash[32], struct arca_policy *p)
{
	size_t victim = 0;

	if (strlen(name) > ARCA_NAME_MAX) {
		arca_policy_free(p);
		return;
	}
	/* An older version of the same session goes first, so that no stale
	 * copy of its given secrets lingers; else an empty slot; else the
	 * least recently used. */
	for (size_t i = 0; i < CAS_POLICY_CACHE_SLOTS; i++) {
		if (c->slot[i].p && strcmp(c->slot[i].name, name) == 0) {
			victim = i;
			goto found;
		}
	}
	for (size_t i = 0; i < CAS_POLICY_CACHE_SLOTS; i++) {
		if (!c->slot[i].p) {
			victim = i;
			break;
		}
		if (c->slot[i].used < c->slot[victim].used)
			victim = i;
	}
found:
	if (c->slot[victim].p)
		arca_policy_free(c->slot[victim].p);
	memset(c->slot[victim].name, 0, sizeof c->slot[victim].name);
	memcpy(c->slot[victim].name, name, strlen(name));
	memcpy(c->slot[victim].hash, hash, 32);
	c->slot[victim].p = p;
	c->slot[victim].used = ++c->tick;
}

void cas_policy_cache_free(struct cas_policy_cache *c)
{
	for (size_t i = 0; i < CAS_POLICY_CACHE_SLOTS; i++) {
		if (c->slot[i].p)
			arca_policy_free(c->slot[i].p);
		c->slot[i].p = NULL;
	}
}
