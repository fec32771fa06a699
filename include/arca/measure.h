/* measure.h: the measurement of a running process, taken from outside.
 *
 * Measurement = SHA-256 over the sorted list of (path, SHA-256 of file) of
 * every file mapped executable in the process (design.md): for each object,
 * sorted by path bytes, the hash input is path || NUL || sha256 (32 bytes).
 * Each file is opened by path and its device and inode are checked against
 * the mapping's, so a file swapped behind the path is refused. A process
 * with an executable mapping not backed by a file (other than [vdso] and
 * [vsyscall]), or a writable and executable mapping, or whose executable
 * (/proc/PID/exe) is not among the objects, cannot be measured.
 *
 * struct arca_measurement and its objects belong to the caller
 * (arca_measurement_free). struct arca_hash_cache (optional, not
 * thread-safe) remembers file hashes keyed by (device, inode, size, mtime,
 * ctime) so that a LAS does not rehash libc for every request. */
#ifndef ARCA_MEASURE_H
#define ARCA_MEASURE_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "arca/err.h"

struct arca_measure_obj {
	char *path;
	uint8_t sha256[32];
};

struct arca_measurement {
	uint8_t digest[32];
	struct arca_measure_obj *objs;
	size_t nobjs;
};

struct arca_hash_cache;
struct arca_hash_cache *arca_hash_cache_new(size_t max_entries);
void arca_hash_cache_free(struct arca_hash_cache *c);

int arca_measure_pid(pid_t pid, struct arca_hash_cache *cache, struct arca_measurement *out,
		     struct arca_errbuf *e) ARCA_MUST_CHECK;
void arca_measurement_free(struct arca_measurement *m);

/* Computes digest from objs (sorts objs in place). */
int arca_measurement_digest(struct arca_measurement *m) ARCA_MUST_CHECK;

#endif
