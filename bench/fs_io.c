/* fs_io.c: arca-bench-fsio, the file benchmark's driver (bench/fs_run.sh).
 *
 *   arca-bench-fsio write FILE [--mib N]        sequential write of N MiB
 *                                               (1 MiB writes), then fsync
 *   arca-bench-fsio read FILE                   sequential read to the end
 *   arca-bench-fsio randread FILE [--seconds S] random 4 KiB preads
 *   arca-bench-fsio randwrite FILE [--seconds S] random 4 KiB pwrites, then
 *                                               fsync (inside the timing)
 *
 * One test per process, so that each pass starts without the driver's own
 * state (the page cache is the caller's to drop). Plain C with nothing but
 * libc's file calls, so that it runs unmodified under `arca run`, where the
 * shield serves those calls from a protected volume.
 *
 * The content is a fixed pseudo-random 1 MiB pattern repeated: every read
 * is compared with it (a driver that got wrong data from a volume fails,
 * exit 1, instead of reporting a speed), and random writes put back the
 * bytes that were there, so the file stays checkable. Prints one line:
 *   result test=T value=V unit=MB/s|IOPS bytes=B ops=N secs=S
 * MB is 10^6 bytes, as in `openssl speed`. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)
#define SMALL 4096

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: fixed seed, the same pattern in every process. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_pattern(uint8_t *p)
{
	for (size_t i = 0; i < CHUNK; i += 8) {
		uint64_t x = rng();
		memcpy(p + i, &x, 8);
	}
}

static int die(const char *what, const char *file)
{
	fprintf(stderr, "arca-bench-fsio: %s %s: %s\n", what, file, strerror(errno));
	return 1;
}

static int bad_data(const char *file, uint64_t off)
{
	fprintf(stderr, "arca-bench-fsio: %s: wrong data at byte %llu (not what the write pass wrote)\n", file,
		(unsigned long long)off);
	return 1;
}

static void result(const char *test, double value, const char *unit, uint64_t bytes, uint64_t ops, double secs)
{
	printf("result test=%s value=%.1f unit=%s bytes=%llu ops=%llu secs=%.3f\n", test, value, unit,
	       (unsigned long long)bytes, (unsigned long long)ops, secs);
}

static int seq_write(const char *file, const uint8_t *pat, uint64_t mib)
{
	uint64_t total = mib * CHUNK, off = 0;
	double t0, t;
	int fd;

	t0 = now_s();
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return die("cannot create", file);
	while (off < total) {
		ssize_t w = write(fd, pat + off % CHUNK, CHUNK - off % CHUNK);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return die("cannot write", file);
		off += (uint64_t)w;
	}
	if (fsync(fd) != 0)
		return die("cannot fsync", file);
	if (close(fd) != 0)
		return die("cannot close", file);
	t = now_s() - t0;
	result("seqwrite", (double)total / t / 1e6, "MB/s", total, total / CHUNK, t);
	return 0;
}

static int seq_read(const char *file, const uint8_t *pat)
{
	uint8_t *buf = malloc(CHUNK);
	uint64_t off = 0;
	double t0, t;
	int fd;

	if (buf == NULL)
		return die("out of memory for", file);
	t0 = now_s();
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die("cannot open", file);
	for (;;) {
		ssize_t r = read(fd, buf, CHUNK - off % CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return die("cannot read", file);
		if (r == 0)
			break;
		if (memcmp(buf, pat + off % CHUNK, (size_t)r) != 0)
			return bad_data(file, off);
		off += (uint64_t)r;
	}
	close(fd);
	t = now_s() - t0;
	if (off == 0) {
		fprintf(stderr, "arca-bench-fsio: %s is empty; run the write pass first\n", file);
		return 1;
	}
	result("seqread", (double)off / t / 1e6, "MB/s", off, off / CHUNK, t);
	free(buf);
	return 0;
}

static int random_io(const char *file, const uint8_t *pat, double secs, int writing)
{
	uint8_t buf[SMALL];
	uint64_t nblocks, ops = 0;
	struct stat st;
	double t0, t = 0;
	int fd;

	fd = open(file, (writing ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return die("cannot open", file);
	if (fstat(fd, &st) != 0)
		return die("cannot stat", file);
	nblocks = (uint64_t)st.st_size / SMALL;
	if (nblocks == 0) {
		fprintf(stderr, "arca-bench-fsio: %s is smaller than 4 KiB; run the write pass first\n", file);
		return 1;
	}
	rng_state = 0x2545f4914f6cdd1dull ^ (writing ? 0xffu : 0u);
	t0 = now_s();
	for (;;) {
		uint64_t off = (rng() % nblocks) * SMALL;
		const uint8_t *want = pat + off % CHUNK;
		ssize_t n;
		if (writing)
			n = pwrite(fd, want, SMALL, (off_t)off);
		else
			n = pread(fd, buf, SMALL, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != SMALL)
			return die(writing ? "cannot write 4 KiB to" : "cannot read 4 KiB from", file);
		if (!writing && memcmp(buf, want, SMALL) != 0)
			return bad_data(file, off);
		ops++;
		if ((ops & 63) == 0 && (t = now_s() - t0) >= secs)
			break;
	}
	if (writing && fsync(fd) != 0)
		return die("cannot fsync", file);
	if (close(fd) != 0)
		return die("cannot close", file);
	t = now_s() - t0;
	result(writing ? "randwrite" : "randread", (double)ops / t, "IOPS", ops * SMALL, ops, t);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: arca-bench-fsio write|read|randread|randwrite FILE [--mib N] [--seconds S]\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t mib = 256;
	double secs = 5;
	uint8_t *pat;
	int rc;

	if (argc < 3)
		return usage();
	for (int i = 3; i < argc; i++) {
		char *end;
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--mib") == 0) {
			mib = strtoull(argv[++i], &end, 10);
			if (*end != '\0' || mib == 0 || mib > (1u << 20))
				return usage();
		} else if (strcmp(argv[i], "--seconds") == 0) {
			secs = strtod(argv[++i], &end);
			if (*end != '\0' || !(secs > 0 && secs <= 3600))
				return usage();
		} else {
			return usage();
		}
	}
	pat = malloc(CHUNK);
	if (pat == NULL)
		return 1;
	fill_pattern(pat);
	if (strcmp(argv[1], "write") == 0)
		rc = seq_write(argv[2], pat, mib);
	else if (strcmp(argv[1], "read") == 0)
		rc = seq_read(argv[2], pat);
	else if (strcmp(argv[1], "randread") == 0)
		rc = random_io(argv[2], pat, secs, 0);
	else if (strcmp(argv[1], "randwrite") == 0)
		rc = random_io(argv[2], pat, secs, 1);
	else
		rc = usage();
	free(pat);
	return rc;
}
