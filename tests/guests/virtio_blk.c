/* kvmkit test guest: virtio-blk (spec 1.2 section 5.2) checks, hostile
 * requests, and the blk benchmark. */
#include "virtio.h"

/* feature bits */
#define BF_SIZE_MAX 1
#define BF_SEG_MAX 2
#define BF_GEOMETRY 4
#define BF_RO 5
#define BF_BLK_SIZE 6
#define BF_FLUSH 9
#define BF_TOPOLOGY 10
#define BF_DISCARD 13
#define BF_WRITE_ZEROES 14
#define BIT(n) (1ull << (n))
#define BLK_WANT                                                                                             \
	(BIT(BF_SIZE_MAX) | BIT(BF_SEG_MAX) | BIT(BF_GEOMETRY) | BIT(BF_RO) | BIT(BF_BLK_SIZE) | BIT(BF_FLUSH) | \
	 BIT(BF_TOPOLOGY) | BIT(BF_DISCARD) | BIT(BF_WRITE_ZEROES))

/* request types and status */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define CHUNK_SECT 128 /* sectors per request in rw/read/flush */
#define REQ_TIMEOUT_MS 10000

/* errors from blk_io (negative; statuses are >= 0) */
#define E_TIMEOUT -1
#define E_NOIRQ -3
#define E_NEEDS_RESET -4
#define E_BADLEN -5
#define E_NOROOM -6

static struct vdev bd;
static int blk_state; /* 0 not tried, 1 ready, -1 no device, -2 init failed */
static char blk_why[80];
static struct {
	uint64_t cap;
	uint32_t blk_size, seg_max, size_max;
	uint32_t max_discard, max_discard_seg, discard_align, max_wz, max_wz_seg;
	uint8_t wz_unmap, writeback;
	uint16_t num_queues;
} bc;
static uint8_t *hdrs;           /* VQ_MAX request headers, 16 bytes, by head */
static volatile uint8_t *stats; /* VQ_MAX status bytes, by head */
static uint8_t *buf_a, *buf_b;  /* CHUNK_SECT sectors each */
static uint8_t *small;          /* 512 bytes: GET_ID, discard segments */
static unsigned blk_flushes;
static int blk_msix;

static const char *errstr(int r)
{
	switch (r) {
	case E_TIMEOUT: return "timeout";
	case E_NOIRQ: return "no-msix-interrupt";
	case E_NEEDS_RESET: return "device-needs-reset";
	case E_BADLEN: return "bad-used-len";
	case E_NOROOM: return "queue-full";
	}
	return "status";
}

static uint64_t blk_start(void) { return cmdline_num("blk_start", 0); }
static uint64_t blk_count(void) { return cmdline_num("blk_count", 64); }
static uint32_t blk_seed(void) { return (uint32_t)cmdline_num("blk_seed", 1); }

/* -------------------------------------------------------------- pattern --- */
/* byte i of sector s = (s*31 + i*7 + seed) & 0xff, built 8 bytes at a time */
static uint64_t tmpl[64];
static const uint64_t LO7 = 0x7f7f7f7f7f7f7f7full, HI1 = 0x8080808080808080ull;

static inline uint64_t add_bytes(uint64_t x, uint64_t y) { return ((x & LO7) + (y & LO7)) ^ ((x ^ y) & HI1); }

static uint64_t pat_word(uint64_t sector, uint32_t seed, unsigned w)
{
	if (!tmpl[1])
		for (unsigned k = 0; k < 64; k++) {
			uint64_t v = 0;
			for (unsigned b = 0; b < 8; b++)
				v |= (uint64_t)(((k * 8 + b) * 7) & 0xff) << (8 * b);
			tmpl[k] = v;
		}
	uint64_t base = ((sector * 31 + seed) & 0xff) * 0x0101010101010101ull;
	return add_bytes(tmpl[w], base);
}

static void pat_fill(uint8_t *buf, uint64_t sector, uint32_t n, uint32_t seed)
{
	uint64_t *p = (uint64_t *)buf;
	for (uint32_t s = 0; s < n; s++)
		for (unsigned w = 0; w < 64; w++)
			*p++ = pat_word(sector + s, seed, w);
}

/* returns -1 if the buffer holds the pattern, else the byte offset of the first difference */
static int64_t pat_check(const uint8_t *buf, uint64_t sector, uint32_t n, uint32_t seed)
{
	const uint64_t *p = (const uint64_t *)buf;
	for (uint32_t s = 0; s < n; s++)
		for (unsigned w = 0; w < 64; w++, p++) {
			uint64_t want = pat_word(sector + s, seed, w);
			if (*p != want) {
				unsigned b = 0;
				while (b < 7 && !(((*p ^ want) >> (8 * b)) & 0xff))
					b++;
				return (int64_t)(s * 512u + w * 8 + b);
			}
		}
	return -1;
}

static void fill64(void *buf, uint64_t n, uint64_t v)
{
	uint64_t *p = buf;
	for (uint64_t i = 0; i < n / 8; i++)
		p[i] = v;
}

static int all_zero(const uint8_t *buf, uint64_t n)
{
	const uint64_t *p = (const uint64_t *)buf;
	for (uint64_t i = 0; i < n / 8; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ------------------------------------------------------------- requests --- */
static struct vq *bq(void) { return &bd.q[0]; }

/* largest data payload per request that size_max / seg_max allow */
static uint32_t max_seg_len(void) { return bc.size_max ? (bc.size_max & ~511u) : 0; }
static int max_segs(void)
{
	int m = VQ_IND_MAX - 2;
	if (bc.seg_max && bc.seg_max < (uint32_t)m)
		m = (int)bc.seg_max;
	if (!bd.indirect && bq()->size - 2 < m)
		m = bq()->size - 2;
	return m < 1 ? 1 : m;
}
static uint32_t max_req_bytes(void)
{
	uint64_t l = max_seg_len();
	if (!l)
		return 1u << 30;
	return (uint32_t)(l * (uint64_t)max_segs() < (1u << 30) ? l * (uint64_t)max_segs() : (1u << 30));
}

/* Posts one request (not kicked).  dir_in: the data is device-writable. */
static int blk_post(uint32_t type, uint64_t sector, void *data, uint32_t len, int dir_in)
{
	struct vq *q = bq();
	struct vbuf b[VQ_IND_MAX];
	int n = 0;
	uint16_t slot = q->free_head;
	if (!q->nfree)
		return E_NOROOM;
	uint8_t *h = hdrs + slot * 16u;
	uint32_t t32 = type, zero = 0;
	memcpy(h, &t32, 4);
	memcpy(h + 4, &zero, 4);
	memcpy(h + 8, &sector, 8);
	stats[slot] = 0xff;
	b[n++] = (struct vbuf){(uint64_t)h, 16, 0};
	uint32_t seg = max_seg_len();
	for (uint32_t off = 0; off < len;) {
		uint32_t l = len - off;
		if (seg && l > seg)
			l = seg;
		if (n >= VQ_IND_MAX - 1)
			return E_NOROOM;
		b[n++] = (struct vbuf){(uint64_t)data + off, l, dir_in};
		off += l;
	}
	b[n++] = (struct vbuf){(uint64_t)&stats[slot], 1, 1};
	int head = vq_add(q, b, n, bd.indirect);
	if (head < 0)
		return E_NOROOM;
	return head;
}

/* Waits for a posted request; returns its status (>= 0) or an error.
 * expect_len: the used length a successful request must report (-1: any). */
static int blk_finish(int head, int64_t expect_len, uint32_t *lenp)
{
	uint32_t len = 0;
	int r = vq_wait(&bd, bq(), (uint16_t)head, &len, REQ_TIMEOUT_MS);
	if (lenp)
		*lenp = len;
	if (r)
		return r;
	int st = stats[head];
	if (st == S_OK && expect_len >= 0 && len != (uint64_t)expect_len) {
		kt_line("blk used-len-mismatch head=%d len=%u expected=%ld", head, len, expect_len);
		return E_BADLEN;
	}
	return st;
}

static int blk_io(uint32_t type, uint64_t sector, void *data, uint32_t len, int dir_in)
{
	int h = blk_post(type, sector, data, len, dir_in);
	if (h < 0)
		return h;
	vq_kick(&bd, bq());
	return blk_finish(h, type == T_GET_ID ? -1 : (int64_t)(dir_in ? len : 0) + 1, 0);
}

/* Reads or writes [sector, sector+n) in chunks from/to buf (n <= CHUNK_SECT). */
static int blk_rw_chunk(int write, uint64_t sector, uint32_t n, void *buf)
{
	uint32_t per = max_req_bytes() / 512;
	if (!per)
		per = 1;
	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < per ? n - done : per;
		int r = blk_io(write ? T_OUT : T_IN, sector + done, (uint8_t *)buf + done * 512u, k * 512u, !write);
		if (r)
			return r;
		done += k;
	}
	return 0;
}

/* ---------------------------------------------------------------- open --- */
static int blk_init_dev(void)
{
	int qsize = (int)cmdline_num("vq_size", 0);
	return vdev_init(&bd, BLK_WANT, 1, qsize, blk_msix);
}

static void read_config(void)
{
	uint64_t a = bd.accepted;
	bc.cap = vdev_cfg_r64(&bd, 0);
	bc.size_max = (a & BIT(BF_SIZE_MAX)) ? vdev_cfg_r(&bd, 8, 4) : 0;
	bc.seg_max = (a & BIT(BF_SEG_MAX)) ? vdev_cfg_r(&bd, 12, 4) : 0;
	bc.blk_size = (a & BIT(BF_BLK_SIZE)) ? vdev_cfg_r(&bd, 20, 4) : 512;
	bc.writeback = (uint8_t)vdev_cfg_r(&bd, 32, 1);
	bc.num_queues = 1;
	if (a & BIT(BF_DISCARD)) {
		bc.max_discard = vdev_cfg_r(&bd, 36, 4);
		bc.max_discard_seg = vdev_cfg_r(&bd, 40, 4);
		bc.discard_align = vdev_cfg_r(&bd, 44, 4);
	}
	if (a & BIT(BF_WRITE_ZEROES)) {
		bc.max_wz = vdev_cfg_r(&bd, 48, 4);
		bc.max_wz_seg = vdev_cfg_r(&bd, 52, 4);
		bc.wz_unmap = (uint8_t)vdev_cfg_r(&bd, 56, 1);
	}
	if (bc.size_max && bc.size_max < 512)
		bc.size_max = 512;
}

/* Finds and initializes the selected device once; on failure prints the
 * check's SKIP/FAIL line and returns -1. */
static int blk_open(const char *check)
{
	if (blk_state == 0) {
		int n = (int)cmdline_num("blk_dev", 0);
		blk_msix = cmdline_is("blk_irq", "msix");
		int e = vdev_find(&bd, VIRTIO_ID_BLK, n);
		if (e == -1) {
			blk_state = -1;
			kt_snprintf(blk_why, sizeof(blk_why), "no-device blk_dev=%d", n);
		} else if (e < 0 || blk_init_dev()) {
			blk_state = -2;
			kt_snprintf(blk_why, sizeof(blk_why), "init %s", bd.err);
		} else {
			hdrs = dma_alloc(VQ_MAX * 16, 16);
			stats = dma_alloc(VQ_MAX, 16);
			buf_a = dma_alloc(CHUNK_SECT * 512, 4096);
			buf_b = dma_alloc(CHUNK_SECT * 512, 4096);
			small = dma_alloc(512, 512);
			if (!hdrs || !stats || !buf_a || !buf_b || !small) {
				blk_state = -2;
				kt_snprintf(blk_why, sizeof(blk_why), "no-dma-memory");
			} else {
				blk_state = 1;
				read_config();
				kt_line("blk capacity=%lu blk_size=%u features=0x%lx", bc.cap, bc.blk_size, bd.offered);
				vdev_describe(&bd, "blk");
				kt_line("blk seg_max=%u size_max=%u ro=%d flush=%d writeback=%u max_discard=%u "
					"max_discard_seg=%u discard_align=%u max_write_zeroes=%u write_zeroes_may_unmap=%u",
					bc.seg_max, bc.size_max, (int)((bd.accepted >> BF_RO) & 1),
					(int)((bd.accepted >> BF_FLUSH) & 1), bc.writeback, bc.max_discard,
					bc.max_discard_seg, bc.discard_align, bc.max_wz, bc.wz_unmap);
			}
		}
	}
	if (blk_state == 1)
		return 0;
	if (blk_state == -1)
		kt_skip(check, "%s", blk_why);
	else
		kt_fail(check, "%s", blk_why);
	return -1;
}

static int good_read(void);
static void fail_io(const char *check, const char *what, int r);

static int range_ok(const char *check, uint64_t start, uint64_t count)
{
	if (start > bc.cap || count > bc.cap - start) {
		kt_fail(check, "out-of-range start=%lu count=%lu capacity=%lu", start, count, bc.cap);
		return 0;
	}
	return 1;
}

void check_blk(void)
{
	if (blk_open("blk"))
		return;
	if (!bc.cap) {
		kt_fail("blk", "zero-capacity");
		return;
	}
	if (bd.msix) { /* one read must raise the queue's MSI-X interrupt */
		unsigned before = vio_irqs_queue;
		int r = good_read();
		kt_line("blk msix read=%s irqs=%u", r ? errstr(r) : "ok", vio_irqs_queue - before);
		if (r) {
			fail_io("blk", "msix-read", r);
			return;
		}
	}
	kt_pass("blk");
}

/* --------------------------------------------------------------- rw etc --- */
/* Writes the pattern to [start, start+count); returns 0 or the failing result. */
static int write_pattern(uint64_t start, uint64_t count, uint32_t seed, uint32_t *crc)
{
	uint32_t c = 0;
	for (uint64_t s = start; s < start + count; s += CHUNK_SECT) {
		uint32_t n = (uint32_t)(start + count - s < CHUNK_SECT ? start + count - s : CHUNK_SECT);
		pat_fill(buf_a, s, n, seed);
		c = crc32_update(c, buf_a, n * 512ull);
		int r = blk_rw_chunk(1, s, n, buf_a);
		if (r)
			return r;
	}
	if (crc)
		*crc = c;
	return 0;
}

/* Reads [start, start+count) and compares with the pattern: 0, a result, or 1000 + mismatch */
static int verify_pattern(uint64_t start, uint64_t count, uint32_t seed, uint64_t *bad_sector, int64_t *bad_off)
{
	for (uint64_t s = start; s < start + count; s += CHUNK_SECT) {
		uint32_t n = (uint32_t)(start + count - s < CHUNK_SECT ? start + count - s : CHUNK_SECT);
		fill64(buf_b, n * 512ull, 0xdeadbeefdeadbeefull);
		int r = blk_rw_chunk(0, s, n, buf_b);
		if (r)
			return r;
		int64_t off = pat_check(buf_b, s, n, seed);
		if (off >= 0) {
			*bad_sector = s + (uint64_t)off / 512;
			*bad_off = off % 512;
			return 1000;
		}
	}
	return 0;
}

static int do_flush(void)
{
	int r = blk_io(T_FLUSH, 0, 0, 0, 0);
	if (r == 0)
		blk_flushes++;
	return r;
}

static void fail_io(const char *check, const char *what, int r)
{
	if (r >= 0)
		kt_fail(check, "%s status=%d", what, r);
	else
		kt_fail(check, "%s %s", what, errstr(r));
}

void check_blk_rw(void)
{
	if (blk_open("blk_rw"))
		return;
	uint64_t start = blk_start(), count = blk_count();
	uint32_t seed = blk_seed(), crc = 0;
	if (!range_ok("blk_rw", start, count))
		return;
	int r = write_pattern(start, count, seed, &crc);
	if (r) {
		fail_io("blk_rw", "write", r);
		return;
	}
	if ((bd.accepted & BIT(BF_FLUSH)) && (r = do_flush())) {
		fail_io("blk_rw", "flush", r);
		return;
	}
	kt_line("blk write sectors=%lu crc32=%08x", count, crc);
	uint64_t bs = 0;
	int64_t bo = 0;
	r = verify_pattern(start, count, seed, &bs, &bo);
	if (r == 1000)
		kt_fail("blk_rw", "mismatch sector=%lu offset=%ld", bs, bo);
	else if (r)
		fail_io("blk_rw", "read", r);
	else
		kt_pass("blk_rw");
}

void check_blk_read(void)
{
	if (blk_open("blk_read"))
		return;
	uint64_t start = blk_start(), count = blk_count();
	if (!range_ok("blk_read", start, count))
		return;
	uint32_t crc = 0;
	for (uint64_t s = start; s < start + count; s += CHUNK_SECT) {
		uint32_t n = (uint32_t)(start + count - s < CHUNK_SECT ? start + count - s : CHUNK_SECT);
		int r = blk_rw_chunk(0, s, n, buf_b);
		if (r) {
			fail_io("blk_read", "read", r);
			return;
		}
		crc = crc32_update(crc, buf_b, n * 512ull);
	}
	kt_line("blk read start=%lu count=%lu crc32=%08x", start, count, crc);
	kt_pass("blk_read");
}

void check_blk_flush(void)
{
	if (blk_open("blk_flush"))
		return;
	if (!(bd.accepted & BIT(BF_FLUSH))) {
		kt_skip("blk_flush", "no-flush-feature");
		return;
	}
	uint64_t start = blk_start(), count = blk_count();
	if (cmdline_num("blk_flush_write", 1)) {
		if (!range_ok("blk_flush", start, count))
			return;
		uint32_t crc = 0;
		int r = write_pattern(start, count, blk_seed(), &crc);
		if (r) {
			fail_io("blk_flush", "write", r);
			return;
		}
		kt_line("blk write sectors=%lu crc32=%08x", count, crc);
	}
	int r = do_flush();
	if (r == 0)
		kt_line("blk flushed seq=%u", blk_flushes);
	kt_line("blk flush status=%d", r);
	if (r)
		fail_io("blk_flush", "flush", r);
	else
		kt_pass("blk_flush");
}

void check_blk_getid(void)
{
	if (blk_open("blk_getid"))
		return;
	memset(small, 0, 32);
	int h = blk_post(T_GET_ID, 0, small, 20, 1);
	uint32_t len = 0;
	int r = h;
	if (h >= 0) {
		vq_kick(&bd, bq());
		r = blk_finish(h, -1, &len);
	}
	if (r) {
		fail_io("blk_getid", "get-id", r);
		return;
	}
	char id[21];
	int n = 0;
	for (; n < 20 && small[n]; n++)
		id[n] = small[n] == ' ' ? '_' : (char)small[n];
	id[n] = 0;
	kt_line("blk getid status=0 len=%u serial=%s", len, id);
	if (len < 1 || len > 21)
		kt_fail("blk_getid", "bad-used-len len=%u", len);
	else
		kt_pass("blk_getid");
}

/* DISCARD or WRITE_ZEROES over [start, start+n); sector start+n must keep the pattern */
static void discard_or_zero(const char *check, uint32_t type)
{
	int is_wz = type == T_WRITE_ZEROES;
	if (blk_open(check))
		return;
	if (!(bd.accepted & BIT(is_wz ? BF_WRITE_ZEROES : BF_DISCARD))) {
		kt_skip(check, "not-offered");
		return;
	}
	uint64_t start = blk_start(), n = blk_count();
	uint32_t max = is_wz ? bc.max_wz : bc.max_discard, seed = blk_seed() + 77;
	if (max && n > max)
		n = max;
	if (!range_ok(check, start, n + 1))
		return;
	int r = write_pattern(start, n + 1, seed, 0);
	if (r) {
		fail_io(check, "write", r);
		return;
	}
	int unmap = is_wz && bc.wz_unmap && cmdline_num("blk_zeroes_unmap", 0);
	uint32_t ns = (uint32_t)n, flags = unmap ? 1 : 0;
	memcpy(small, &start, 8);
	memcpy(small + 8, &ns, 4);
	memcpy(small + 12, &flags, 4);
	r = blk_io(type, 0, small, 16, 0);
	kt_line("blk %s start=%lu count=%lu unmap=%d status=%d", is_wz ? "zeroes" : "discard", start, n, unmap, r);
	if (r) {
		fail_io(check, is_wz ? "write-zeroes" : "discard", r);
		return;
	}
	int zeroed = 1;
	for (uint64_t s = start; s < start + n; s += CHUNK_SECT) {
		uint32_t k = (uint32_t)(start + n - s < CHUNK_SECT ? start + n - s : CHUNK_SECT);
		fill64(buf_b, k * 512ull, 0xdeadbeefdeadbeefull);
		if ((r = blk_rw_chunk(0, s, k, buf_b))) {
			fail_io(check, "read", r);
			return;
		}
		zeroed &= all_zero(buf_b, k * 512ull);
	}
	uint64_t bs;
	int64_t bo;
	int after = verify_pattern(start + n, 1, seed, &bs, &bo);
	kt_line("blk %s zeroed=%d next-sector=%s", is_wz ? "zeroes" : "discard", zeroed,
		after == 0 ? "intact" : after == 1000 ? "changed" : "read-error");
	if (after)
		kt_fail(check, "sector-after-range-%s", after == 1000 ? "changed" : "unreadable");
	else if (is_wz && !zeroed)
		kt_fail(check, "not-zero");
	else
		kt_pass(check);
}

void check_blk_discard(void) { discard_or_zero("blk_discard", T_DISCARD); }
void check_blk_zeroes(void) { discard_or_zero("blk_zeroes", T_WRITE_ZEROES); }

/* Many requests posted before one notify; all must complete with the right data. */
void check_blk_inflight(void)
{
	if (blk_open("blk_inflight"))
		return;
	static uint8_t *big;
	const uint32_t per = 8; /* sectors per request */
	struct vq *q = bq();
	uint32_t n = (uint32_t)cmdline_num("blk_qd", 32);
	uint32_t room = bd.indirect ? q->nfree : q->nfree / 3;
	if (n > room)
		n = room;
	if (n > VQ_MAX)
		n = VQ_MAX;
	if (!big)
		big = dma_alloc(VQ_MAX * per * 512ull, 4096);
	uint64_t start = blk_start();
	if (!big || n < 1) {
		kt_fail("blk_inflight", "no-room n=%u", n);
		return;
	}
	if (!range_ok("blk_inflight", start, (uint64_t)n * per))
		return;
	uint32_t seed = blk_seed() + 5;
	int heads[VQ_MAX];
	unsigned ooo = 0;
	for (int phase = 0; phase < 2; phase++) {
		int write = phase == 0;
		if (write)
			pat_fill(big, start, n * per, seed);
		else
			fill64(big, n * per * 512ull, 0);
		for (uint32_t i = 0; i < n; i++) {
			heads[i] = blk_post(write ? T_OUT : T_IN, start + i * per, big + i * per * 512ull, per * 512, !write);
			if (heads[i] < 0) {
				kt_fail("blk_inflight", "post %s i=%u", errstr(heads[i]), i);
				return;
			}
		}
		uint16_t used0 = q->last_used;
		vq_kick(&bd, q);
		for (uint32_t i = 0; i < n; i++) {
			int r = blk_finish(heads[i], write ? 1 : per * 512 + 1, 0);
			if (r) {
				kt_fail("blk_inflight", "%s i=%u %s=%d", write ? "write" : "read", i, errstr(r), r);
				return;
			}
		}
		for (uint32_t i = 0; i < n; i++) {
			volatile uint8_t *e = q->used + 4 + 8u * ((uint16_t)(used0 + i) % q->size);
			if (*(volatile uint32_t *)e != (uint32_t)heads[i])
				ooo++;
		}
	}
	int64_t off = pat_check(big, start, n * per, seed);
	kt_line("blk inflight n=%u sectors=%u out_of_order=%u kicks=%u bogus=%u", n, per, ooo, q->kicks, q->bogus);
	if (off >= 0)
		kt_fail("blk_inflight", "mismatch sector=%lu offset=%ld", start + (uint64_t)off / 512, off % 512);
	else if (q->bogus)
		kt_fail("blk_inflight", "bogus-used-ids=%u", q->bogus);
	else
		kt_pass("blk_inflight");
}

void check_blk_readonly(void)
{
	if (blk_open("blk_readonly"))
		return;
	if (!(bd.offered & BIT(BF_RO))) {
		kt_skip("blk_readonly", "not-read-only");
		return;
	}
	uint64_t start = blk_start();
	if (!range_ok("blk_readonly", start, 8))
		return;
	int r = blk_rw_chunk(0, start, 8, buf_b);
	if (r) {
		fail_io("blk_readonly", "read", r);
		return;
	}
	uint32_t before = crc32_update(0, buf_b, 4096);
	pat_fill(buf_a, start, 8, blk_seed() + 99);
	int w = blk_io(T_OUT, start, buf_a, 4096, 0);
	r = blk_rw_chunk(0, start, 8, buf_b);
	uint32_t after = crc32_update(0, buf_b, 4096);
	kt_line("blk readonly write-status=%d unchanged=%d", w, !r && before == after);
	if (w != S_IOERR)
		kt_fail("blk_readonly", "write-status=%d expected=1", w);
	else if (r || before != after)
		kt_fail("blk_readonly", "data-changed");
	else
		kt_pass("blk_readonly");
}

/* -------------------------------------------------------------- hostile --- */
static uint8_t *hscratch;   /* 256 KiB data area for hostile chains */
static uint64_t hostile_ind; /* indirect table for (size+2) entries */

/* takes n descriptors off the free list (never returned); idx[] gets them */
static int vq_take(struct vq *q, int n, uint16_t *idx)
{
	if (q->nfree < n)
		return -1;
	uint16_t d = q->free_head;
	for (int i = 0; i < n; i++) {
		idx[i] = d;
		d = q->next[d];
	}
	q->free_head = d;
	q->nfree = (uint16_t)(q->nfree - n);
	return 0;
}

static void set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	q->desc[i].addr = addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

static void set_hdr(uint16_t slot, uint32_t type, uint64_t sector)
{
	uint8_t *h = hdrs + slot * 16u;
	uint32_t zero = 0;
	memcpy(h, &type, 4);
	memcpy(h + 4, &zero, 4);
	memcpy(h + 8, &sector, 8);
	stats[slot] = 0xff;
}

enum { H_COMPLETED, H_IGNORED, H_NEEDS_RESET, H_BOGUS };

/* waits for head (or, if head < 0, for anything) to complete */
static int hostile_wait(int head, unsigned bogus0, uint64_t ms, uint32_t *len)
{
	struct vq *q = bq();
	uint64_t dl = tsc_deadline_ms(ms), step = tsc_khz, next = rdtsc() + step;
	if (bd.msix)
		sti();
	int r = H_IGNORED;
	for (;;) {
		vq_poll(q);
		if (head >= 0 && q->done[head]) {
			*len = q->done_len[head];
			r = H_COMPLETED;
			break;
		}
		if (q->bogus != bogus0) {
			r = H_BOGUS;
			break;
		}
		uint64_t now = rdtsc();
		if ((int64_t)(now - next) >= 0) {
			next = now + step;
			if (vdev_status(&bd) & VS_NEEDS_RESET) {
				r = H_NEEDS_RESET;
				break;
			}
		}
		if ((int64_t)(now - dl) >= 0)
			break;
	}
	cli();
	return r;
}

static int good_read(void) { return blk_rw_chunk(0, blk_start(), 8, buf_b); }

enum {
	HC_ADDR_BEYOND_RAM,
	HC_ADDR_OVERFLOW,
	HC_HEADER_WRITABLE,
	HC_NO_STATUS,
	HC_LOOP,
	HC_LONG_LOOP,
	HC_HEAD_OUT_OF_RANGE,
	HC_INDIRECT_OUT_OF_RANGE,
	HC_INDIRECT_BAD_LEN,
	HC_INDIRECT_LONG,
	HC_BEYOND_CAPACITY,
	HC_UNALIGNED_LEN,
	HC_UNKNOWN_TYPE,
	HC_COUNT
};
static const char *const hc_name[HC_COUNT] = {
	"addr-beyond-ram", "addr-overflow",	    "header-writable",	   "no-status",
	"loop",		   "long-loop",		    "head-out-of-range",   "indirect-out-of-range",
	"indirect-bad-len", "indirect-long",	    "beyond-capacity",	   "unaligned-len",
	"unknown-type",
};

/* Posts the hostile request of case c; returns the head to wait for, -1 for
 * "no valid head", -2 if the case does not apply (e.g. no INDIRECT_DESC). */
static int hostile_post(int c)
{
	struct vq *q = bq();
	uint16_t d[4];
	uint64_t data = (uint64_t)hscratch;
	uint64_t st = blk_start();
	switch (c) {
	case HC_ADDR_BEYOND_RAM:
	case HC_ADDR_OVERFLOW:
	case HC_HEADER_WRITABLE:
	case HC_LOOP:
	case HC_UNALIGNED_LEN:
	case HC_BEYOND_CAPACITY:
	case HC_UNKNOWN_TYPE:
		if (vq_take(q, 3, d))
			return -3;
		set_hdr(d[0], c == HC_UNKNOWN_TYPE ? 0x7f5a : T_IN, c == HC_BEYOND_CAPACITY ? bc.cap : st);
		set_desc(q, d[0], (uint64_t)(hdrs + d[0] * 16u), 16, VD_NEXT | (c == HC_HEADER_WRITABLE ? VD_WRITE : 0),
			 d[1]);
		if (c == HC_ADDR_BEYOND_RAM)
			data = 0xfff0000000ull;
		else if (c == HC_ADDR_OVERFLOW)
			data = 0xfffffffffffff000ull;
		set_desc(q, d[1], data, c == HC_UNALIGNED_LEN ? 1000 : c == HC_ADDR_OVERFLOW ? 0x2000 : 4096,
			 VD_NEXT | VD_WRITE, d[2]);
		/* loop: status -> data -> status ..., all device-writable, so only
		 * the loop itself is wrong */
		set_desc(q, d[2], (uint64_t)&stats[d[0]], 1, VD_WRITE | (c == HC_LOOP ? VD_NEXT : 0),
			 c == HC_LOOP ? d[1] : 0);
		vq_publish_raw(q, d[0]);
		return d[0];
	case HC_NO_STATUS: /* only the header: nothing device-writable */
		if (vq_take(q, 1, d))
			return -3;
		set_hdr(d[0], T_IN, st);
		set_desc(q, d[0], (uint64_t)(hdrs + d[0] * 16u), 16, 0, 0);
		vq_publish_raw(q, d[0]);
		return d[0];
	case HC_LONG_LOOP: { /* a chain through all but 3 descriptors, back to its first data descriptor */
		uint16_t idx[VQ_MAX];
		int n = q->size - 3;
		if (n < 2 || vq_take(q, n, idx))
			return -3;
		set_hdr(idx[0], T_IN, st);
		set_desc(q, idx[0], (uint64_t)(hdrs + idx[0] * 16u), 16, VD_NEXT, idx[1]);
		for (int i = 1; i < n; i++)
			set_desc(q, idx[i], data + 512ull * (unsigned)i, 512, VD_NEXT | VD_WRITE,
				 i + 1 < n ? idx[i + 1] : idx[1]);
		vq_publish_raw(q, idx[0]);
		return idx[0];
	}
	case HC_HEAD_OUT_OF_RANGE:
		vq_publish_raw(q, (uint16_t)(q->size + 3));
		return -1;
	case HC_INDIRECT_OUT_OF_RANGE:
	case HC_INDIRECT_BAD_LEN:
	case HC_INDIRECT_LONG: {
		if (!bd.indirect)
			return -2;
		if (vq_take(q, 1, d))
			return -3;
		volatile struct vq_desc *t = (volatile struct vq_desc *)hostile_ind;
		unsigned n = c == HC_INDIRECT_LONG ? q->size + 2u : 3u;
		set_hdr(d[0], T_IN, st);
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = i == 0 ? (uint64_t)(hdrs + d[0] * 16u)
				  : i + 1 == n ? (uint64_t)&stats[d[0]] : data + 512ull * (i - 1);
			t[i].len = i == 0 ? 16 : i + 1 == n ? 1 : 512;
			t[i].flags = (uint16_t)((i + 1 < n ? VD_NEXT : 0) | (i ? VD_WRITE : 0));
			t[i].next = (uint16_t)(i + 1);
		}
		uint64_t ta = hostile_ind;
		uint32_t tl = n * 16;
		if (c == HC_INDIRECT_OUT_OF_RANGE)
			ta = 0xfff0000000ull;
		else if (c == HC_INDIRECT_BAD_LEN)
			tl = 20;
		set_desc(q, d[0], ta, tl, VD_INDIRECT, 0);
		vq_publish_raw(q, d[0]);
		return d[0];
	}
	}
	return -2;
}

/* reset with requests in flight: afterwards the device must not touch memory */
static int hostile_reset_inflight(void)
{
	struct vq *q = bq();
	const uint32_t per = 32; /* 16 KiB reads */
	int posted = 0;
	for (int i = 0; i < 16; i++) {
		int h = blk_post(T_IN, blk_start() + (uint64_t)i * per, hscratch + (uint64_t)i * per * 512, per * 512, 1);
		if (h < 0)
			break;
		posted++;
	}
	vq_kick(&bd, q);
	int rr = vdev_reset(&bd);
	/* poison what the device could still write: used ring, data, status bytes */
	uint32_t ulen = (4 + 8u * q->size + 2 + 7) & ~7u;
	fill64((void *)q->used, ulen, 0xa5a5a5a5a5a5a5a5ull);
	fill64(hscratch, 16 * per * 512ull, 0x5a5a5a5a5a5a5a5aull);
	for (int i = 0; i < VQ_MAX; i++)
		stats[i] = 0x77;
	mdelay(cmdline_num("blk_hostile_wait", 300));
	unsigned late = 0;
	for (uint32_t i = 0; i < ulen / 8; i++)
		late += ((volatile uint64_t *)q->used)[i] != 0xa5a5a5a5a5a5a5a5ull;
	for (uint64_t i = 0; i < 16 * per * 512ull / 8; i++)
		late += ((uint64_t *)hscratch)[i] != 0x5a5a5a5a5a5a5a5aull;
	for (int i = 0; i < VQ_MAX; i++)
		late += stats[i] != 0x77;
	int ok = !rr && !late;
	int gi = blk_init_dev();
	int g = gi ? -100 : good_read();
	kt_line("blk_hostile reset-inflight posted=%d reset=%s late-writes=%u result=reset good=%s", posted,
		rr ? "timeout" : "ok", late, gi ? "reinit-failed" : g == 0 ? "ok-after-reset" : errstr(g));
	return ok && !gi && g == 0;
}

void check_blk_hostile(void)
{
	if (blk_open("blk_hostile"))
		return;
	if (!hscratch) {
		hscratch = dma_alloc(256 * 1024, 4096);
		hostile_ind = (uint64_t)dma_alloc((VQ_MAX + 2) * 16, 16);
	}
	if (!hscratch || !hostile_ind) {
		kt_fail("blk_hostile", "no-dma-memory");
		return;
	}
	uint64_t wait_ms = cmdline_num("blk_hostile_wait", 300);
	int strict = (int)cmdline_num("blk_hostile_strict", 0);
	int bad = 0;
	for (int c = 0; c < HC_COUNT; c++) {
		/* start every case from a fresh device; offer to use INDIRECT_DESC */
		bd.indirect = 1;
		if (blk_init_dev()) {
			kt_fail("blk_hostile", "reinit %s", bd.err);
			blk_state = -2;
			kt_snprintf(blk_why, sizeof(blk_why), "init %s", bd.err);
			return;
		}
		struct vq *q = bq();
		unsigned bogus0 = q->bogus;
		int head = hostile_post(c);
		if (head == -2 || head == -3) {
			kt_line("blk_hostile %s result=skipped reason=%s", hc_name[c],
				head == -2 ? "no-indirect-desc" : "queue-too-small");
			continue;
		}
		/* addr-overflow wraps to address 0: that page must not change */
		uint64_t zero_page = 0;
		__asm__("" : "+r"(zero_page)); /* not a null pointer to the compiler */
		uint32_t low_crc = crc32_update(0, (const uint8_t *)zero_page, 0x2000);
		vq_kick(&bd, q);
		uint32_t len = 0;
		int res = hostile_wait(head, bogus0, wait_ms, &len);
		char what[64];
		int ok = 1;
		if (res == H_COMPLETED) {
			int st = stats[head];
			kt_snprintf(what, sizeof(what), "completed status=%d len=%u", st, len);
			/* an error status, or nothing written.  Success is tolerated where a
			 * device can plausibly carry the request out: a valid but over-long
			 * indirect chain, and DMA to addresses where no RAM is (QEMU drops
			 * such writes like unassigned memory) unless blk_hostile_strict=1. */
			if (st == 0 && len != 0 && c != HC_INDIRECT_LONG &&
			    (strict || (c != HC_ADDR_BEYOND_RAM && c != HC_ADDR_OVERFLOW)))
				ok = 0;
			if (c == HC_UNKNOWN_TYPE && st != S_UNSUPP)
				ok = 0;
			if (c == HC_BEYOND_CAPACITY && st != S_IOERR)
				ok = 0;
		} else if (res == H_NEEDS_RESET) {
			kt_snprintf(what, sizeof(what), "device-needs-reset");
		} else if (res == H_BOGUS) {
			kt_snprintf(what, sizeof(what), "bogus-used-id");
			ok = 0;
		} else {
			kt_snprintf(what, sizeof(what), "ignored");
		}
		/* requests the device must answer */
		if ((c == HC_UNKNOWN_TYPE || c == HC_BEYOND_CAPACITY) && res != H_COMPLETED)
			ok = 0;
		const char *good;
		int g;
		if (res == H_NEEDS_RESET) {
			g = blk_init_dev() ? -100 : good_read();
			good = g == 0 ? "ok-after-reset" : g == -100 ? "reinit-failed" : errstr(g);
		} else {
			g = good_read();
			good = g == 0 ? "ok" : errstr(g);
			if (g == E_NEEDS_RESET) { /* flagged late: acceptable, but recover */
				g = blk_init_dev() ? -100 : good_read();
				good = g == 0 ? "late-needs-reset-ok" : "fail-after-reset";
			}
		}
		if (g)
			ok = 0;
		int wrapped = crc32_update(0, (const uint8_t *)zero_page, 0x2000) != low_crc;
		if (wrapped && strict) /* QEMU 7.2 wraps the DMA around to address 0 */
			ok = 0;
		kt_line("blk_hostile %s result=%s good=%s%s%s", hc_name[c], what, good, wrapped ? " wrote-low-memory" : "",
			ok ? "" : " BAD");
		bad += !ok;
	}
	bad += !hostile_reset_inflight();
	kt_line("blk_hostile config-irqs=%u", vio_irqs_config);
	bd.indirect = cmdline_has("vq_feat", "indirect");
	if (blk_init_dev()) {
		kt_fail("blk_hostile", "reinit %s", bd.err);
		blk_state = -2;
		kt_snprintf(blk_why, sizeof(blk_why), "init %s", bd.err);
		return;
	}
	if (bad)
		kt_fail("blk_hostile", "bad-cases=%d", bad);
	else
		kt_pass("blk_hostile");
}

/* ---------------------------------------------------------------- bench --- */
static uint64_t pnum(const char **p, const char *end)
{
	uint64_t v = 0;
	for (; *p < end && **p >= '0' && **p <= '9'; (*p)++)
		v = v * 10 + (uint64_t)(**p - '0');
	return v;
}

/* bench=blk:<read|write|randread|randwrite>:<count>:<sectors>[:<qd>] (spec after "blk:") */
void run_blk_bench(const char *spec, size_t len)
{
	const char *p = spec, *end = spec + len, *op = p;
	while (p < end && *p != ':')
		p++;
	size_t oplen = (size_t)(p - op);
	int write = -1, rnd = 0;
	if (oplen == 4 && !strncmp(op, "read", 4)) write = 0;
	else if (oplen == 5 && !strncmp(op, "write", 5)) write = 1;
	else if (oplen == 8 && !strncmp(op, "randread", 8)) write = 0, rnd = 1;
	else if (oplen == 9 && !strncmp(op, "randwrite", 9)) write = 1, rnd = 1;
	uint64_t count = 0, sectors = 0, qd = 1;
	if (p < end && *p == ':') {
		p++;
		count = pnum(&p, end);
	}
	if (p < end && *p == ':') {
		p++;
		sectors = pnum(&p, end);
	}
	if (p < end && *p == ':') {
		p++;
		qd = pnum(&p, end);
	}
	if (write < 0 || !sectors || !qd || sectors > 2048) {
		kt_fail("bench", "bad-spec");
		return;
	}
	if (blk_open("bench"))
		return;
	struct vq *q = bq();
	uint32_t bytes = (uint32_t)sectors * 512;
	if (bytes > max_req_bytes()) {
		kt_fail("bench", "request-too-large max=%u", max_req_bytes());
		return;
	}
	int nseg = 2 + (int)(max_seg_len() ? (bytes + max_seg_len() - 1) / max_seg_len() : 1);
	uint64_t room = bd.indirect ? q->size : q->size / (unsigned)nseg;
	if (qd > room)
		qd = room;
	uint64_t start = blk_start();
	if (start + sectors > bc.cap) {
		kt_fail("bench", "out-of-range capacity=%lu", bc.cap);
		return;
	}
	uint64_t span = (bc.cap - start) / sectors; /* request-sized slots on the disk */
	static uint8_t *bbuf;
	static uint64_t bbuf_len;
	if (bbuf_len < qd * bytes) {
		bbuf = dma_alloc(qd * bytes, 4096);
		bbuf_len = bbuf ? qd * bytes : 0;
	}
	if (!bbuf) {
		kt_fail("bench", "no-dma-memory need=%lu", qd * bytes);
		return;
	}
	/* write the buffers once, before the clock starts: a real guest's buffers
	 * hold data it wrote, so the host has backed them with memory; untouched,
	 * the host would still map its zero page there, and a write request from
	 * them would cost the VMM's host kernel more than any real one does */
	fill64(bbuf, qd * bytes, 0x6b6b6b6b6b6b6b6bull ^ blk_seed());
	int slot_head[VQ_MAX];
	for (uint64_t i = 0; i < qd; i++)
		slot_head[i] = -1;
	uint64_t x = blk_seed() * 0x9e3779b97f4a7c15ull + 1, pos = 0;
	kt_line("bench mode=blk op=%.*s count=%lu sectors=%lu qd=%lu", (int)oplen, op, count, sectors, qd);
	kt_line("bench start");
	uint64_t submitted = 0, completed = 0, errors = 0;
	int msix = bd.msix;
	/* blk_wait=hlt: sleep in HLT until the completion interrupt instead of
	 * spinning, so the vCPU thread leaves the host CPU to the VMM's I/O path
	 * (spinning under instruction emulation competes with it for the CPU) */
	int hlt_wait = msix && cmdline_is("blk_wait", "hlt");
	int timeout = 0;
	while (completed < count) {
		int posted = 0;
		for (uint64_t i = 0; i < qd && submitted < count; i++) {
			if (slot_head[i] >= 0)
				continue;
			uint64_t blkno;
			if (rnd) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				blkno = (x >> 33) % span;
			} else {
				blkno = pos++;
				if (pos >= span)
					pos = 0;
			}
			int h = blk_post(write ? T_OUT : T_IN, start + blkno * sectors, bbuf + i * bytes, bytes, !write);
			if (h < 0)
				break;
			slot_head[i] = h;
			submitted++;
			posted = 1;
		}
		if (posted)
			vq_kick(&bd, q);
		uint64_t dl = tsc_deadline_ms(30000);
		int progress = 0;
		if (msix && !hlt_wait)
			sti();
		while (!progress) {
			vq_poll(q);
			for (uint64_t i = 0; i < qd; i++) {
				int h = slot_head[i];
				if (h >= 0 && q->done[h]) {
					if (stats[h] != 0)
						errors++;
					q->done[h] = 0;
					slot_head[i] = -1;
					completed++;
					progress = 1;
				}
			}
			if (!progress && tsc_expired(dl))
				break;
			/* interrupts stay off from the check to the HLT: STI's one-instruction
			 * shadow makes "sti; hlt" atomic, so a completion that arrived after
			 * vq_poll wakes the HLT instead of being missed */
			if (!progress && hlt_wait)
				__asm__ volatile("sti; hlt; cli" ::: "memory");
		}
		cli();
		if (msix && bd.event_idx)
			q->avail[2 + q->size] = q->last_used;
		if (!progress) {
			timeout = 1;
			break;
		}
	}
	kt_line("bench end");
	kt_line("bench bytes=%lu requests=%lu errors=%lu kicks=%u", completed * bytes, completed, errors, q->kicks);
	if (timeout)
		kt_fail("bench", "timeout completed=%lu", completed);
	else if (errors)
		kt_fail("bench", "io-errors=%lu", errors);
	else
		kt_pass("bench");
}
