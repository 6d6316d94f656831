/* blkbench: O_DIRECT block I/O benchmark, the same program in the default
 * Linux guest (/usr/bin/blkbench, on /dev/vda) and on the host (on the image
 * file itself), so that bench/blk_bench.py compares like with like.
 *
 *   blkbench PATH OP BS COUNT QD [SEED]
 *     OP    read | write | randread | randwrite
 *     BS    request size in bytes (a multiple of 512)
 *     COUNT requests to complete
 *     QD    requests kept in flight (Linux AIO: io_submit/io_getevents)
 *
 * Sequential requests go to consecutive BS-sized slots from offset 0, wrapping
 * at the end of the device; random ones to a slot picked by an LCG seeded with
 * SEED (default 1).  Writes write whatever the buffers hold.  Output, one line
 * each, for the host to time and parse:
 *   BLKBENCH start op=<op> bs=<n> qd=<n> count=<n> size=<bytes>
 *   BLKBENCH end op=<op> bs=<n> qd=<n> requests=<n> bytes=<n> errors=<n> usec=<n>
 *            lat_avg_us=<n> lat_p50_us=<n> lat_p99_us=<n> cpu_us=<n>
 * (the end line is one line; cpu_us is this process's user+system time over
 * the loop).  Linux AIO rather than io_uring or threads: the guest kernel has
 * CONFIG_AIO but not io_uring, AIO on an O_DIRECT file is truly asynchronous,
 * and one thread keeps the guest side cheap under instruction emulation.
 * No libaio (the guest has no library): the system calls directly.
 * Exit status 0 on success, 1 on I/O errors, 2 on bad usage. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long io_setup_(unsigned n, aio_context_t *ctx) { return syscall(SYS_io_setup, n, ctx); }
static long io_destroy_(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
static long io_submit_(aio_context_t ctx, long n, struct iocb **v) { return syscall(SYS_io_submit, ctx, n, v); }
static long io_getevents_(aio_context_t ctx, long min, long max, struct io_event *ev)
{
	return syscall(SYS_io_getevents, ctx, min, max, ev, NULL);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int usage(void)
{
	fprintf(stderr, "usage: blkbench PATH read|write|randread|randwrite BS COUNT QD [SEED]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 6 || argc > 7)
		return usage();
	const char *path = argv[1], *op = argv[2];
	int write = !strcmp(op, "write") || !strcmp(op, "randwrite");
	int rnd = !strcmp(op, "randread") || !strcmp(op, "randwrite");
	if (!write && !rnd && strcmp(op, "read"))
		return usage();
	uint64_t bs = strtoull(argv[3], NULL, 0), count = strtoull(argv[4], NULL, 0);
	unsigned qd = (unsigned)strtoul(argv[5], NULL, 0);
	uint64_t x = argc > 6 ? strtoull(argv[6], NULL, 0) : 1;
	if (!bs || bs % 512 || !count || !qd || qd > 1024)
		return usage();

	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		perror(path);
		return 2;
	}
	uint64_t size = 0;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			perror("BLKGETSIZE64");
			return 2;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	uint64_t slots = size / bs;
	if (!slots) {
		fprintf(stderr, "blkbench: %s is smaller than one request\n", path);
		return 2;
	}
	uint8_t *buf;
	if (posix_memalign((void **)&buf, 4096, bs * qd)) {
		fprintf(stderr, "blkbench: out of memory\n");
		return 2;
	}
	memset(buf, 0x5a, bs * qd);
	uint64_t *lat = malloc(count * sizeof *lat);
	struct iocb *cbs = calloc(qd, sizeof *cbs);
	struct io_event *ev = calloc(qd, sizeof *ev);
	uint64_t *t_sub = calloc(qd, sizeof *t_sub);
	struct iocb **vec = calloc(qd, sizeof *vec);
	if (!lat || !cbs || !ev || !t_sub || !vec) {
		fprintf(stderr, "blkbench: out of memory\n");
		return 2;
	}
	aio_context_t ctx = 0;
	if (io_setup_(qd, &ctx) < 0) {
		perror("io_setup");
		return 2;
	}
	x = x * 0x9e3779b97f4a7c15ull + 1;
	uint64_t pos = 0;

	printf("BLKBENCH start op=%s bs=%llu qd=%u count=%llu size=%llu\n", op, (unsigned long long)bs, qd,
	       (unsigned long long)count, (unsigned long long)size);
	fflush(stdout);
	uint64_t cpu0 = cpu_us(), t0 = now_ns();
	uint64_t submitted = 0, completed = 0, errors = 0;
	unsigned nfree = qd;
	unsigned *free_slots = calloc(qd, sizeof *free_slots);
	for (unsigned i = 0; i < qd; i++)
		free_slots[i] = i;
	while (completed < count) {
		long n = 0;
		while (nfree && submitted + (uint64_t)n < count) {
			unsigned s = free_slots[--nfree];
			uint64_t slot;
			if (rnd) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				slot = (x >> 33) % slots;
			} else {
				slot = pos++;
				if (pos == slots)
					pos = 0;
			}
			struct iocb *cb = &cbs[s];
			memset(cb, 0, sizeof *cb);
			cb->aio_data = s;
			cb->aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
			cb->aio_fildes = (uint32_t)fd;
			cb->aio_buf = (uint64_t)(uintptr_t)(buf + (uint64_t)s * bs);
			cb->aio_nbytes = bs;
			cb->aio_offset = (int64_t)(slot * bs);
			vec[n++] = cb;
		}
		if (n) {
			uint64_t t = now_ns();
			for (long i = 0; i < n; i++)
				t_sub[vec[i]->aio_data] = t;
			long r = io_submit_(ctx, n, vec);
			if (r != n) {
				perror("io_submit");
				return 1;
			}
			submitted += (uint64_t)n;
		}
		long got = io_getevents_(ctx, 1, qd, ev);
		if (got < 0) {
			perror("io_getevents");
			return 1;
		}
		uint64_t t = now_ns();
		for (long i = 0; i < got; i++) {
			unsigned s = (unsigned)ev[i].data;
			if (ev[i].res != (int64_t)bs)
				errors++;
			lat[completed++] = t - t_sub[s];
			free_slots[nfree++] = s;
		}
	}
	uint64_t usec = (now_ns() - t0) / 1000, cpu = cpu_us() - cpu0;
	uint64_t sum = 0;
	for (uint64_t i = 0; i < completed; i++)
		sum += lat[i];
	qsort(lat, completed, sizeof *lat, cmp_u64);
	printf("BLKBENCH end op=%s bs=%llu qd=%u requests=%llu bytes=%llu errors=%llu usec=%llu "
	       "lat_avg_us=%llu lat_p50_us=%llu lat_p99_us=%llu cpu_us=%llu\n",
	       op, (unsigned long long)bs, qd, (unsigned long long)completed, (unsigned long long)(completed * bs),
	       (unsigned long long)errors, (unsigned long long)usec, (unsigned long long)(sum / completed / 1000),
	       (unsigned long long)(lat[completed / 2] / 1000), (unsigned long long)(lat[completed * 99 / 100] / 1000),
	       (unsigned long long)cpu);
	fflush(stdout);
	io_destroy_(ctx);
	close(fd);
	return errors ? 1 : 0;
}
