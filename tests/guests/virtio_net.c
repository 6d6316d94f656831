/* kvmkit test guest: a small virtio-net driver (spec 1.2 section 5.1) that
 * sends and receives raw Ethernet frames: ARP and ICMP echo to a peer (the
 * host kernel on the other side of a TAP answers), and a hostile mode that
 * sends malformed frames and descriptors and then checks that good frames
 * still flow. Polling only (no interrupts). */
#include "virtio_net.h"

#define BIT(n) (1ull << (n))
#define NF_MAC 5
#define NF_MRG_RXBUF 15
#define NF_STATUS 16
#define NF_HOST_TSO4 11
#define RX_BUFS NET_RX_BUFS
#define FRAME_MAX NET_FRAME_MAX
#define HDR_LEN NET_HDR_LEN
#define NET_TIMEOUT_MS 5000

static struct nic nics[NET_MAX_NICS];
static int rx_bad_first; /* net_hostile: post malformed receive buffers before the good ones */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += be16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* "a.b.c.d" from the command line; the third octet gets `add` (one subnet per NIC) */
static int cmdline_ip(const char *key, uint8_t out[4], unsigned add)
{
	size_t len;
	const char *v = cmdline_get(key, &len);
	if (!v)
		return -1;
	unsigned part = 0, val = 0, digits = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? v[i] : '.';
		if (c >= '0' && c <= '9' && digits < 3) {
			val = val * 10 + (unsigned)(c - '0');
			digits++;
		} else if (c == '.' && digits && val < 256 && part < 4) {
			out[part++] = (uint8_t)val;
			val = digits = 0;
		} else {
			return -1;
		}
	}
	if (part != 4)
		return -1;
	out[2] = (uint8_t)(out[2] + add);
	return 0;
}

static const char *mac_str(const uint8_t *m)
{
	static char b[4][18];
	static int k;
	char *s = b[k++ & 3];
	kt_snprintf(s, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return s;
}

/* --------------------------------------------------------------- rings --- */
/* The receive queue is driven directly: descriptor i always holds buffer i,
 * so a used id names its buffer, and re-posting is one avail entry. */
static void rx_post(struct nic *n, uint16_t i)
{
	struct vq *q = &n->v.q[0];
	q->desc[i].addr = (uint64_t)n->rx[i];
	q->desc[i].len = n->rxbuf_len;
	q->desc[i].flags = VD_WRITE;
	q->desc[i].next = 0;
	q->avail[2 + q->avail_idx % q->size] = i;
	q->avail_idx++;
}

static void rx_kick(struct nic *n)
{
	struct vq *q = &n->v.q[0];
	barrier();
	q->avail[1] = q->avail_idx;
	mb();
	mmio_w16(q->notify, q->index);
}

/* Next used receive entry, or -1 when none yet. */
static int rx_used(struct nic *n, uint32_t *len)
{
	struct vq *q = &n->v.q[0];
	uint16_t idx = *(volatile uint16_t *)(q->used + 2);
	if (idx == n->rx_last_used)
		return -1;
	barrier();
	volatile uint8_t *e = q->used + 4 + 8u * (n->rx_last_used % q->size);
	uint32_t id = *(volatile uint32_t *)e;
	*len = *(volatile uint32_t *)(e + 4);
	n->rx_last_used++;
	return (int)id;
}

/* Receives one frame (reassembling mergeable buffers) into n->frame; its
 * length, 0 on timeout, -1 on a malformed completion. */
int net_recv(struct nic *n, uint64_t ms)
{
	uint64_t dl = tsc_deadline_ms(ms);
	uint32_t len;
	int id;
	while ((id = rx_used(n, &len)) < 0)
		if (tsc_expired(dl))
			return 0;
	struct vq *q = &n->v.q[0];
	if (id >= q->size || id >= RX_BUFS || len < HDR_LEN || len > n->rxbuf_len) {
		n->rx_bad++;
		if (id < q->size && id < RX_BUFS)
			rx_post(n, (uint16_t)id);
		rx_kick(n);
		return -1;
	}
	uint16_t nbuf = (uint16_t)(n->rx[id][10] | n->rx[id][11] << 8);
	int mrg = (n->v.accepted >> NF_MRG_RXBUF) & 1;
	if (nbuf < 1 || (!mrg && nbuf != 1) || nbuf > 64) {
		n->rx_bad++;
		rx_post(n, (uint16_t)id);
		rx_kick(n);
		return -1;
	}
	uint32_t total = len - HDR_LEN;
	if (total <= FRAME_MAX)
		memcpy(n->frame, n->rx[id] + HDR_LEN, total);
	rx_post(n, (uint16_t)id);
	for (uint16_t k = 1; k < nbuf; k++) {
		while ((id = rx_used(n, &len)) < 0)
			if (tsc_expired(dl))
				return 0;
		if (id >= RX_BUFS || len > n->rxbuf_len) {
			n->rx_bad++;
			return -1;
		}
		if (total + len <= FRAME_MAX)
			memcpy(n->frame + total, n->rx[id], len);
		total += len;
		rx_post(n, (uint16_t)id);
	}
	rx_kick(n);
	if (total > FRAME_MAX) {
		n->rx_bad++;
		return -1;
	}
	n->rx_frames++;
	return (int)total;
}

/* Sends n->tx[HDR_LEN .. HDR_LEN+len) with a zero header; 0 or an error. */
int net_send(struct nic *n, uint32_t len, int split)
{
	struct vq *q = &n->v.q[1];
	memset(n->tx, 0, HDR_LEN);
	vq_poll(q);
	struct vbuf b[2] = {{(uint64_t)n->tx, HDR_LEN, 0}, {(uint64_t)n->tx + HDR_LEN, len, 0}};
	struct vbuf one = {(uint64_t)n->tx, HDR_LEN + len, 0};
	int h = split ? vq_add(q, b, 2, n->v.indirect) : vq_add(q, &one, 1, n->v.indirect);
	if (h < 0)
		return -6;
	vq_kick(&n->v, q);
	uint32_t ulen;
	return vq_wait(&n->v, q, (uint16_t)h, &ulen, NET_TIMEOUT_MS);
}

/* ---------------------------------------------------------------- init --- */
struct nic *nic_get(int k)
{
	struct nic *n = &nics[k];
	if (n->state)
		return n;
	int e = vdev_find(&n->v, VIRTIO_ID_NET, k);
	if (e == -1) {
		n->state = -1;
		return n;
	}
	uint64_t want = BIT(NF_MAC) | BIT(NF_STATUS);
	if (cmdline_num("net_mrg", 1))
		want |= BIT(NF_MRG_RXBUF);
	if (e < 0 || vdev_init(&n->v, want, 2, (int)cmdline_num("vq_size", 0), 0)) {
		n->state = -2;
		return n;
	}
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)vdev_cfg_r(&n->v, (unsigned)i, 1);
	n->rxbuf_len = (uint32_t)cmdline_num("net_rxbuf", 2048);
	if (n->rxbuf_len < 64 || n->rxbuf_len > 4096)
		n->rxbuf_len = 2048;
	if (!((n->v.accepted >> NF_MRG_RXBUF) & 1) && n->rxbuf_len < HDR_LEN + 1518)
		n->rxbuf_len = HDR_LEN + 1518; /* one buffer must hold a whole frame */
	for (int i = 0; i < RX_BUFS; i++)
		if (!n->rx[i])
			n->rx[i] = dma_alloc(4096, 64);
	if (!n->tx)
		n->tx = dma_alloc(2 * 65536 + 4096, 4096);
	if (!n->frame)
		n->frame = dma_alloc(FRAME_MAX + 64, 64);
	if (!n->rx[RX_BUFS - 1] || !n->tx || !n->frame) {
		kt_snprintf(n->v.err, sizeof(n->v.err), "no-dma-memory");
		n->state = -2;
		return n;
	}
	n->rx_last_used = 0;
	struct vq *rq = &n->v.q[0];
	if (rx_bad_first && rq->size > RX_BUFS + 3) {
		static const struct {
			uint64_t addr;
			uint32_t len;
			uint16_t flags;
		} rc[] = {{0xfff0000000ull, 2048, VD_WRITE}, {0, 8, VD_WRITE}, {0, 2048, 0}};
		for (uint16_t c = 0; c < 3; c++) {
			uint16_t d = (uint16_t)(RX_BUFS + c); /* descriptors we never use for good buffers */
			rq->desc[d].addr = rc[c].addr ? rc[c].addr : (uint64_t)n->tx + 65536;
			rq->desc[d].len = rc[c].len;
			rq->desc[d].flags = rc[c].flags;
			rq->desc[d].next = 0;
			rq->avail[2 + rq->avail_idx % rq->size] = d;
			rq->avail_idx++;
		}
	}
	for (uint16_t i = 0; i < RX_BUFS && i < rq->size; i++)
		rx_post(n, i);
	rx_kick(n);
	cmdline_ip("net_ip", n->ip, (unsigned)k);
	cmdline_ip("net_peer", n->peer, (unsigned)k);
	n->have_peer_mac = 0;
	n->state = 1;
	return n;
}

static int nic_count(void) { return (int)cmdline_num("net_nics", 1); }

void check_net(void)
{
	int nn = nic_count();
	for (int k = 0; k < nn && k < NET_MAX_NICS; k++) {
		struct nic *n = nic_get(k);
		if (n->state == -1) {
			kt_skip("net", "no-device net_dev=%d", k);
			return;
		}
		if (n->state < 0) {
			kt_fail("net", "init %s", n->v.err);
			return;
		}
		vdev_describe(&n->v, "net");
		uint16_t status = (uint16_t)vdev_cfg_r(&n->v, 6, 2);
		kt_line("net nic=%d mac=%s status=0x%x mrg=%d rxbuf=%u", k, mac_str(n->mac), status,
			(int)((n->v.accepted >> NF_MRG_RXBUF) & 1), n->rxbuf_len);
		if (!(status & 1)) {
			kt_fail("net", "link-down nic=%d", k);
			return;
		}
		if ((n->mac[0] & 1) || !(n->mac[0] | n->mac[1] | n->mac[2] | n->mac[3] | n->mac[4] | n->mac[5])) {
			kt_fail("net", "bad-mac nic=%d", k);
			return;
		}
	}
	kt_pass("net");
}

/* ------------------------------------------------------------ ARP/ICMP --- */
static uint32_t eth_header(struct nic *n, const uint8_t *dst, uint16_t type)
{
	uint8_t *f = n->tx + HDR_LEN;
	memcpy(f, dst, 6);
	memcpy(f + 6, n->mac, 6);
	put_be16(f + 12, type);
	return 14;
}

static void arp_build(struct nic *n, uint16_t op, const uint8_t *tha, const uint8_t *tpa, const uint8_t *dst)
{
	uint8_t *f = n->tx + HDR_LEN;
	eth_header(n, dst, 0x0806);
	uint8_t *a = f + 14;
	put_be16(a, 1);
	put_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, n->mac, 6);
	memcpy(a + 14, n->ip, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, tpa, 4);
}

/* Answers an ARP request for our address in n->frame; 1 if it was one. */
static int arp_answer(struct nic *n, int len)
{
	uint8_t *f = n->frame;
	if (len < 42 || be16(f + 12) != 0x0806 || be16(f + 20) != 1 || memcmp(f + 38, n->ip, 4))
		return 0;
	uint8_t sha[6], spa[4];
	memcpy(sha, f + 22, 6);
	memcpy(spa, f + 28, 4);
	arp_build(n, 2, sha, spa, sha);
	net_send(n, 42, 0);
	return 1;
}

static int arp_resolve(struct nic *n)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero[6] = {0};
	int max_tries = (int)cmdline_num("net_arp_tries", 5);
	for (int tries = 0; tries < max_tries && !n->have_peer_mac; tries++) {
		arp_build(n, 1, zero, n->peer, bcast);
		if (net_send(n, 42, 1))
			return -1;
		uint64_t dl = tsc_deadline_ms(1000);
		while (!tsc_expired(dl)) {
			int len = net_recv(n, 200);
			if (len <= 0)
				continue;
			uint8_t *f = n->frame;
			if (arp_answer(n, len))
				continue;
			if (len >= 42 && be16(f + 12) == 0x0806 && be16(f + 20) == 2 && !memcmp(f + 28, n->peer, 4)) {
				memcpy(n->peer_mac, f + 22, 6);
				n->have_peer_mac = 1;
				break;
			}
			n->rx_other++;
		}
	}
	return n->have_peer_mac ? 0 : -1;
}

static uint8_t pat_byte(uint16_t seq, uint32_t i) { return (uint8_t)(i * 7 + seq * 13 + 1); }

/* One echo request of `payload` bytes; 0 when the matching reply came back intact. */
static int ping_once(struct nic *n, uint16_t seq, uint32_t payload, const char **why)
{
	uint8_t *f = n->tx + HDR_LEN;
	eth_header(n, n->peer_mac, 0x0800);
	uint8_t *ip = f + 14;
	uint32_t ip_len = 20 + 8 + payload;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put_be16(ip + 2, (uint16_t)ip_len);
	put_be16(ip + 4, seq);
	ip[8] = 64;
	ip[9] = 1; /* ICMP */
	memcpy(ip + 12, n->ip, 4);
	memcpy(ip + 16, n->peer, 4);
	put_be16(ip + 10, ip_csum(ip, 20));
	uint8_t *ic = ip + 20;
	ic[0] = 8;
	ic[1] = 0;
	put_be16(ic + 2, 0);
	put_be16(ic + 4, 0x4b54); /* "KT" */
	put_be16(ic + 6, seq);
	for (uint32_t i = 0; i < payload; i++)
		ic[8 + i] = pat_byte(seq, i);
	put_be16(ic + 2, ip_csum(ic, 8 + payload));
	if (net_send(n, 14 + ip_len, seq & 1)) {
		*why = "tx-timeout";
		return -1;
	}
	uint64_t dl = tsc_deadline_ms(2000);
	while (!tsc_expired(dl)) {
		int len = net_recv(n, 200);
		if (len <= 0)
			continue;
		uint8_t *r = n->frame;
		if (arp_answer(n, len))
			continue;
		if (len < 14 + 28 || be16(r + 12) != 0x0800 || r[14 + 9] != 1 || r[14 + 20] != 0 ||
		    be16(r + 14 + 24) != 0x4b54 || be16(r + 14 + 26) != seq) {
			n->rx_other++;
			continue;
		}
		uint8_t *rip = r + 14;
		uint32_t rlen = be16(rip + 2);
		if (memcmp(r, n->mac, 6) || memcmp(rip + 12, n->peer, 4) || memcmp(rip + 16, n->ip, 4)) {
			*why = "wrong-addresses";
			return -1;
		}
		if (rlen != ip_len || (uint32_t)len < 14 + rlen) {
			*why = "wrong-length";
			return -1;
		}
		if (ip_csum(rip, 20) != 0 || ip_csum(rip + 20, rlen - 20) != 0) {
			*why = "bad-checksum";
			return -1;
		}
		for (uint32_t i = 0; i < payload; i++)
			if (rip[28 + i] != pat_byte(seq, i)) {
				*why = "payload-mismatch";
				return -1;
			}
		return 0;
	}
	*why = "no-reply";
	return -1;
}

/* ARP, then pings of several sizes (a 1472-byte payload fills a 1500 MTU). */
static int ping_check(struct nic *n, int k, unsigned count, const char *who)
{
	if (arp_resolve(n)) {
		kt_line("%s nic=%d arp=timeout other=%u bad=%u", who, k, n->rx_other, n->rx_bad);
		return -1;
	}
	kt_line("%s nic=%d arp peer=%u.%u.%u.%u mac=%s", who, k, n->peer[0], n->peer[1], n->peer[2], n->peer[3],
		mac_str(n->peer_mac));
	static const uint32_t sizes[] = {56, 1472, 0, 1000, 200};
	unsigned ok = 0;
	const char *why = "";
	for (unsigned i = 0; i < count; i++) {
		static uint16_t seq;
		if (ping_once(n, ++seq, sizes[i % 5], &why) == 0)
			ok++;
	}
	kt_line("%s nic=%d ping sent=%u received=%u other=%u bad=%u%s%s", who, k, count, ok, n->rx_other, n->rx_bad,
		ok == count ? "" : " last-error=", ok == count ? "" : why);
	return ok == count ? 0 : -1;
}

void check_net_ping(void)
{
	int nn = nic_count();
	unsigned count = (unsigned)cmdline_num("net_count", 5);
	for (int k = 0; k < nn && k < NET_MAX_NICS; k++) {
		struct nic *n = nic_get(k);
		if (n->state == -1) {
			kt_skip("net_ping", "no-device net_dev=%d", k);
			return;
		}
		if (n->state < 0) {
			kt_fail("net_ping", "init %s", n->v.err);
			return;
		}
		if (!n->ip[0] || !n->peer[0]) {
			kt_fail("net_ping", "no-address (net_ip= and net_peer= are needed)");
			return;
		}
		if (ping_check(n, k, count, "net")) {
			kt_fail("net_ping", "nic=%d", k);
			return;
		}
	}
	kt_pass("net_ping");
}

/* ------------------------------------------------------------- hostile --- */
/* Each case posts one bad transmit (or receive) chain, waits, and reports
 * what the device did; then a good ping must work. The device must never
 * need a reset except for the broken-ring case, after which we re-initialize. */
static const char *hostile_result(struct nic *n, struct vq *q, int head, uint32_t *len)
{
	uint64_t dl = tsc_deadline_ms(cmdline_num("net_hostile_wait", 300));
	while (!tsc_expired(dl)) {
		vq_poll(q);
		if (vdev_status(&n->v) & VS_NEEDS_RESET)
			return "device-needs-reset";
		if (head >= 0 && head < q->size && q->done[head]) {
			*len = q->done_len[head];
			return "completed";
		}
	}
	return "ignored";
}

static int reinit(struct nic *n, int k)
{
	n->state = 0;
	nic_get(k);
	return n->state == 1 ? 0 : -1;
}

void check_net_hostile(void)
{
	const int k = 0;
	struct nic *n = nic_get(k);
	if (n->state == -1) {
		kt_skip("net_hostile", "no-device");
		return;
	}
	if (n->state < 0 || !n->ip[0]) {
		kt_fail("net_hostile", "init %s", n->state < 0 ? n->v.err : "no-address");
		return;
	}
	struct vq *tq = &n->v.q[1];
	uint8_t *junk = n->tx + 65536; /* scratch, inside our DMA area */
	memset(junk, 0xa5, 4096);
	memset(junk, 0, HDR_LEN);
	int bad = 0;
	struct hcase {
		const char *name;
		struct vbuf b[3];
		int n;
		uint8_t gso;
		uint8_t flags;
	} cases[] = {
		{"short-header", {{(uint64_t)junk, 6, 0}}, 1, 0, 0},
		{"header-only", {{(uint64_t)junk, HDR_LEN, 0}}, 1, 0, 0},
		{"zero-length", {{(uint64_t)junk, 0, 0}}, 1, 0, 0},
		{"addr-beyond-ram", {{(uint64_t)junk, HDR_LEN, 0}, {0xfff0000000ull, 1500, 0}}, 2, 0, 0},
		{"addr-overflow", {{(uint64_t)junk, HDR_LEN, 0}, {0xfffffffffffff000ull, 0x2000, 0}}, 2, 0, 0},
		{"device-writable", {{(uint64_t)junk, HDR_LEN, 0}, {(uint64_t)junk + 64, 100, 1}}, 2, 0, 0},
		{"gso-not-negotiated", {{(uint64_t)junk, HDR_LEN + 100, 0}}, 1, 1 /* TCPV4 */, 1},
		{"csum-not-negotiated", {{(uint64_t)junk, HDR_LEN + 100, 0}}, 1, 0, 1},
		{"oversized", {{(uint64_t)junk, HDR_LEN, 0}, {(uint64_t)n->tx, 65536, 0}, {(uint64_t)n->tx, 8192, 0}}, 3, 0, 0},
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		junk[0] = cases[c].flags;
		junk[1] = cases[c].gso;
		put_be16(junk + 4, 0); /* gso_size (le): 0 */
		if (cases[c].gso)
			junk[4] = 100;
		vq_poll(tq);
		int h = vq_add(tq, cases[c].b, cases[c].n, 0);
		vq_kick(&n->v, tq);
		uint32_t len = 0;
		const char *r = hostile_result(n, tq, h, &len);
		int is_bad = r[0] == 'd'; /* only a broken ring may need a reset */
		kt_line("net_hostile %s result=%s len=%u%s", cases[c].name, r, len, is_bad ? " BAD" : "");
		bad += is_bad;
		if (is_bad && reinit(n, k)) {
			kt_fail("net_hostile", "reinit %s", n->v.err);
			return;
		}
	}
	/* a long chain: every free descriptor, 1 byte each, as one frame */
	{
		static struct vbuf many[VQ_MAX];
		int cnt = tq->nfree;
		for (int i = 0; i < cnt; i++)
			many[i] = (struct vbuf){(uint64_t)junk + (uint64_t)i % 64, 1, 0};
		int h = vq_add(tq, many, cnt, 0);
		vq_kick(&n->v, tq);
		uint32_t len = 0;
		const char *r = hostile_result(n, tq, h, &len);
		int is_bad = r[0] == 'd';
		kt_line("net_hostile long-chain descs=%d result=%s len=%u%s", cnt, r, len, is_bad ? " BAD" : "");
		bad += is_bad;
	}
	/* a flood of garbage frames (random bytes after a zero header), 200 of them */
	{
		uint32_t x = 12345;
		unsigned sent = 0;
		for (int i = 0; i < 200; i++) {
			uint32_t flen = 14 + (x % 1500);
			for (uint32_t j = 0; j < flen; j++) {
				x = x * 1103515245u + 12345u;
				n->tx[HDR_LEN + j] = (uint8_t)(x >> 16);
			}
			if (!net_send(n, flen, i & 1))
				sent++;
		}
		kt_line("net_hostile garbage-flood sent=%u", sent);
	}
	/* the ring itself broken: avail.idx far ahead (device must ask for a reset) */
	{
		struct vq *q = &n->v.q[1];
		q->avail[1] = (uint16_t)(q->avail_idx + q->size + 7);
		mb();
		mmio_w16(q->notify, q->index);
		uint32_t len = 0;
		const char *r = hostile_result(n, q, -1, &len);
		kt_line("net_hostile avail-idx-jump result=%s", r);
		/* and bad receive buffers (outside RAM, too short, driver-readable) ahead of the good ones */
		rx_bad_first = 1;
		int e = reinit(n, k);
		rx_bad_first = 0;
		kt_line("net_hostile rx-bad-buffers posted=3");
		if (e) {
			kt_fail("net_hostile", "reinit %s", n->v.err);
			return;
		}
	}
	if (vdev_status(&n->v) & VS_NEEDS_RESET) {
		kt_fail("net_hostile", "needs-reset-after-reinit");
		return;
	}
	n->rx_bad = 0;
	int good = ping_check(n, k, 3, "net_hostile");
	kt_line("net_hostile good-ping=%s bad-cases=%d", good ? "failed" : "ok", bad);
	if (good || bad)
		kt_fail("net_hostile", "bad-cases=%d good-ping=%s", bad, good ? "failed" : "ok");
	else
		kt_pass("net_hostile");
}

/* User-mode network (libslirp) exchanges: DHCP, TCP, UDP benchmarks. */
#include "net_user.inc"
