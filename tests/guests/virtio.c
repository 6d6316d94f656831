/* kvmkit test guest: virtio 1.x PCI transport (spec 1.2 section 4.1), split
 * virtqueues (2.7), device initialization (3.1.1), and the small virtio-rng
 * and virtio-console checks. */
#include "virtio.h"

/* common configuration structure (4.1.4.3) */
#define CC_DFSEL 0
#define CC_DF 4
#define CC_GFSEL 8
#define CC_GF 12
#define CC_MSIX 16
#define CC_NUMQ 18
#define CC_STATUS 20
#define CC_GEN 21
#define CC_QSEL 22
#define CC_QSIZE 24
#define CC_QMSIX 26
#define CC_QENABLE 28
#define CC_QNOFF 30
#define CC_QDESC 32
#define CC_QDRIVER 40
#define CC_QDEVICE 48
#define CC_LEN 56
#define NO_VECTOR 0xffff

volatile unsigned vio_irqs_queue, vio_irqs_config;

static void vio_isr_queue(struct isr_frame *f)
{
	(void)f;
	vio_irqs_queue++;
	lapic_eoi();
}

static void vio_isr_config(struct isr_frame *f)
{
	(void)f;
	vio_irqs_config++;
	lapic_eoi();
}

static uint8_t cc_r8(struct vdev *v, unsigned o) { return mmio_r8(v->common + o); }
static uint16_t cc_r16(struct vdev *v, unsigned o) { return mmio_r16(v->common + o); }
static uint32_t cc_r32(struct vdev *v, unsigned o) { return mmio_r32(v->common + o); }
static void cc_w8(struct vdev *v, unsigned o, uint8_t x) { mmio_w8(v->common + o, x); }
static void cc_w16(struct vdev *v, unsigned o, uint16_t x) { mmio_w16(v->common + o, x); }
static void cc_w32(struct vdev *v, unsigned o, uint32_t x) { mmio_w32(v->common + o, x); }
static void cc_w64(struct vdev *v, unsigned o, uint64_t x)
{
	cc_w32(v, o, (uint32_t)x);
	cc_w32(v, o + 4, (uint32_t)(x >> 32));
}

uint8_t vdev_status(struct vdev *v) { return cc_r8(v, CC_STATUS); }

uint32_t vdev_cfg_r(struct vdev *v, unsigned off, int width)
{
	if (!v->dcfg || off + (unsigned)width > v->dcfg_len)
		return 0;
	if (width == 1)
		return mmio_r8(v->dcfg + off);
	if (width == 2)
		return mmio_r16(v->dcfg + off);
	return mmio_r32(v->dcfg + off);
}

/* 64-bit fields: two 32-bit reads, retried while config_generation changes */
uint64_t vdev_cfg_r64(struct vdev *v, unsigned off)
{
	uint64_t x = 0;
	for (int i = 0; i < 10; i++) {
		uint8_t g = cc_r8(v, CC_GEN);
		x = vdev_cfg_r(v, off, 4) | (uint64_t)vdev_cfg_r(v, off + 4, 4) << 32;
		if (cc_r8(v, CC_GEN) == g)
			break;
	}
	return x;
}

/* ------------------------------------------------------------ discovery --- */
int vdev_find(struct vdev *v, int type, int nth)
{
	memset(v, 0, sizeof(*v));
	pci_scan();
	int seen = 0;
	for (int k = 0; k < pci_ndev; k++) {
		struct pci_dev *d = &pci_devs[k];
		if (d->vendor != 0x1af4 || d->hdr != 0)
			continue;
		int t = -1;
		if (d->device >= 0x1040 && d->device <= 0x107f)
			t = d->device - 0x1040;
		else if (d->device >= 0x1000 && d->device <= 0x103f)
			t = d->subsys; /* transitional device */
		if (t != type || seen++ != nth)
			continue;
		v->pci = d;
		v->type = type;
		break;
	}
	if (!v->pci)
		return -1;
	struct pci_dev *d = v->pci;
	int got[6] = {0};
	for (unsigned c = pci_find_cap(d, 0x09, 0); c; c = pci_find_cap(d, 0x09, c)) {
		uint8_t clen = (uint8_t)pci_read(d, c + 2, 1);
		uint8_t ct = (uint8_t)pci_read(d, c + 3, 1);
		uint8_t bar = (uint8_t)pci_read(d, c + 4, 1);
		uint32_t off = pci_read(d, c + 8, 4), len = pci_read(d, c + 12, 4);
		if (ct < 1 || ct > 4 || got[ct] || clen < 16 || bar > 5 || !(d->bar_flags[bar] & BAR_MEM))
			continue; /* first usable one of each type (4.1.4) */
		uint64_t a = pci_bar_map(d, bar, off, len);
		if (!a)
			continue;
		switch (ct) {
		case 1:
			if (len < CC_LEN)
				continue;
			v->common = a;
			break;
		case 2:
			if (clen < 20)
				continue;
			v->notify_base = a;
			v->notify_len = len;
			v->notify_mult = pci_read(d, c + 16, 4);
			break;
		case 3:
			v->isr = a;
			break;
		case 4:
			v->dcfg = a;
			v->dcfg_len = len;
			break;
		}
		got[ct] = 1;
	}
	if (!v->common || !v->notify_base) {
		kt_snprintf(v->err, sizeof(v->err), "no-%s-cap", !v->common ? "common-cfg" : "notify");
		return -2;
	}
	uint16_t cmd = (uint16_t)pci_read(d, 0x04, 2);
	pci_write(d, 0x04, 2, cmd | 0x2 | 0x4); /* memory space, bus master */
	return 0;
}

/* ---------------------------------------------------------------- init --- */
int vdev_reset(struct vdev *v)
{
	cc_w8(v, CC_STATUS, 0);
	uint64_t dl = tsc_deadline_ms(2000);
	while (cc_r8(v, CC_STATUS) != 0)
		if (tsc_expired(dl))
			return -1;
	return 0;
}

static void zero64(void *p, uint64_t n)
{
	uint64_t *q = p;
	for (uint64_t i = 0; i < n / 8; i++)
		q[i] = 0;
}

static int fail_init(struct vdev *v, const char *why)
{
	kt_snprintf(v->err, sizeof(v->err), "%s", why);
	cc_w8(v, CC_STATUS, cc_r8(v, CC_STATUS) | VS_FAILED);
	return -1;
}

static int vq_setup(struct vdev *v, int i, int qsize)
{
	struct vq *q = &v->q[i];
	cc_w16(v, CC_QSEL, (uint16_t)i);
	uint16_t max = cc_r16(v, CC_QSIZE);
	if (!max)
		return fail_init(v, "queue-unavailable");
	if (cc_r16(v, CC_QENABLE))
		return fail_init(v, "queue-enabled-after-reset");
	unsigned want = qsize > 0 && qsize < VQ_MAX ? (unsigned)qsize : VQ_MAX;
	if (want > max)
		want = max;
	unsigned sz = 1;
	while (sz * 2 <= want)
		sz *= 2;
	if (!q->mem) {
		q->mem = (uint64_t)dma_alloc(8192, 4096);
		q->ind = (uint64_t)dma_alloc(VQ_MAX * VQ_IND_MAX * 16, 16);
		if (!q->mem || !q->ind)
			return fail_init(v, "no-dma-memory");
	}
	zero64((void *)q->mem, 8192);
	q->size = (uint16_t)sz;
	q->index = (uint16_t)i;
	q->desc = (volatile struct vq_desc *)q->mem;
	q->avail = (volatile uint16_t *)(q->mem + 4096);
	q->used = (volatile uint8_t *)(q->mem + 5120);
	q->avail_idx = q->kicked_idx = q->last_used = 0;
	q->bogus = q->kicks = q->kicks_skipped = 0;
	for (unsigned k = 0; k < VQ_MAX; k++) {
		q->next[k] = (uint16_t)(k + 1 < sz ? k + 1 : 0);
		q->chain[k] = 0;
		q->busy[k] = q->done[k] = 0;
	}
	q->free_head = 0;
	q->nfree = (uint16_t)sz;
	cc_w16(v, CC_QSIZE, (uint16_t)sz);
	if (cc_r16(v, CC_QSIZE) != sz)
		return fail_init(v, "queue-size-readback");
	cc_w64(v, CC_QDESC, (uint64_t)q->desc);
	cc_w64(v, CC_QDRIVER, (uint64_t)q->avail);
	cc_w64(v, CC_QDEVICE, (uint64_t)q->used);
	if (cc_r32(v, CC_QDESC) != (uint32_t)(uint64_t)q->desc)
		return fail_init(v, "queue-desc-readback");
	if (v->msix) {
		cc_w16(v, CC_QMSIX, 1);
		if (cc_r16(v, CC_QMSIX) != 1)
			return fail_init(v, "queue-msix-vector-rejected");
	}
	/* polling: ask for no interrupts; MSI-X: interrupt after the next entry */
	q->avail[0] = v->msix ? 0 : 1;
	q->avail[2 + sz] = v->msix ? 0 : 0x8000;
	uint32_t noff = cc_r16(v, CC_QNOFF);
	uint64_t o = (uint64_t)noff * v->notify_mult;
	if (o + 2 > v->notify_len)
		return fail_init(v, "notify-offset-out-of-range");
	q->notify = v->notify_base + o;
	cc_w16(v, CC_QENABLE, 1);
	return 0;
}

int vdev_init(struct vdev *v, uint64_t want, int nq, int qsize, int msix)
{
	v->err[0] = 0;
	if (vdev_reset(v))
		return fail_init(v, "reset-timeout");
	cc_w8(v, CC_STATUS, VS_ACK);
	cc_w8(v, CC_STATUS, VS_ACK | VS_DRIVER);
	cc_w32(v, CC_DFSEL, 0);
	uint64_t f = cc_r32(v, CC_DF);
	cc_w32(v, CC_DFSEL, 1);
	f |= (uint64_t)cc_r32(v, CC_DF) << 32;
	v->offered = f;
	if (!(f & (1ull << VF_VERSION_1)))
		return fail_init(v, "no-VERSION_1");
	want |= 1ull << VF_VERSION_1 | 1ull << VF_ACCESS_PLATFORM;
	if (cmdline_has("vq_feat", "indirect") || v->indirect)
		want |= 1ull << VF_INDIRECT_DESC;
	if (cmdline_has("vq_feat", "event_idx"))
		want |= 1ull << VF_EVENT_IDX;
	uint64_t acc = f & want;
	v->accepted = acc;
	v->indirect = (acc >> VF_INDIRECT_DESC) & 1;
	v->event_idx = (acc >> VF_EVENT_IDX) & 1;
	cc_w32(v, CC_GFSEL, 0);
	cc_w32(v, CC_GF, (uint32_t)acc);
	cc_w32(v, CC_GFSEL, 1);
	cc_w32(v, CC_GF, (uint32_t)(acc >> 32));
	cc_w8(v, CC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK);
	if (!(cc_r8(v, CC_STATUS) & VS_FEATURES_OK))
		return fail_init(v, "features-not-ok");
	v->num_queues = cc_r16(v, CC_NUMQ);
	if (nq > VDEV_MAXQ || nq > v->num_queues)
		return fail_init(v, "too-few-queues");
	v->nq = nq;
	v->msix = 0;
	if (msix) {
		pic_disable();
		lapic_init();
		set_irq_handler(VIO_VEC_QUEUE, vio_isr_queue);
		set_irq_handler(VIO_VEC_CONFIG, vio_isr_config);
		if (pci_msix_setup(v->pci, 0, VIO_VEC_CONFIG) < 2 || pci_msix_setup(v->pci, 1, VIO_VEC_QUEUE) < 2)
			return fail_init(v, "no-msix");
		cc_w16(v, CC_MSIX, 0);
		if (cc_r16(v, CC_MSIX) != 0)
			return fail_init(v, "config-msix-vector-rejected");
		v->msix = 1;
	} else {
		pci_msix_disable(v->pci);
		uint16_t cmd = (uint16_t)pci_read(v->pci, 0x04, 2);
		pci_write(v->pci, 0x04, 2, cmd | 0x400); /* INTx off: we poll */
	}
	for (int i = 0; i < nq; i++)
		if (vq_setup(v, i, qsize))
			return -1;
	cc_w8(v, CC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
	uint8_t st = cc_r8(v, CC_STATUS);
	if (st & VS_NEEDS_RESET)
		return fail_init(v, "needs-reset-after-driver-ok");
	if (!(st & VS_DRIVER_OK))
		return fail_init(v, "driver-ok-not-set");
	return 0;
}

void vdev_describe(struct vdev *v, const char *who)
{
	kt_line("%s pci=%s device=0x%04x offered=0x%lx accepted=0x%lx num_queues=%u qsize=%u notify_mult=%u msix=%d",
		who, pci_name(v->pci), v->pci->device, v->offered, v->accepted, v->num_queues, v->q[0].size,
		v->notify_mult, v->msix);
}

/* ------------------------------------------------------------- queues --- */
int vq_add(struct vq *q, const struct vbuf *b, int n, int indirect)
{
	if (n < 1)
		return -1;
	uint16_t head = q->free_head;
	if (indirect && n <= VQ_IND_MAX) {
		if (q->nfree < 1)
			return -1;
		volatile struct vq_desc *t = (volatile struct vq_desc *)(q->ind + (uint64_t)head * VQ_IND_MAX * 16);
		for (int i = 0; i < n; i++) {
			t[i].addr = b[i].addr;
			t[i].len = b[i].len;
			t[i].flags = (uint16_t)((i + 1 < n ? VD_NEXT : 0) | (b[i].dev_writes ? VD_WRITE : 0));
			t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		}
		q->desc[head].addr = (uint64_t)t;
		q->desc[head].len = (uint32_t)n * 16;
		q->desc[head].flags = VD_INDIRECT;
		q->desc[head].next = 0;
		q->free_head = q->next[head];
		q->nfree--;
		q->chain[head] = 1;
	} else {
		if (q->nfree < n)
			return -1;
		uint16_t d = head;
		for (int i = 0; i < n; i++) {
			q->desc[d].addr = b[i].addr;
			q->desc[d].len = b[i].len;
			q->desc[d].flags = (uint16_t)((i + 1 < n ? VD_NEXT : 0) | (b[i].dev_writes ? VD_WRITE : 0));
			q->desc[d].next = q->next[d];
			d = q->next[d];
		}
		q->free_head = d;
		q->nfree = (uint16_t)(q->nfree - n);
		q->chain[head] = (uint16_t)n;
	}
	q->busy[head] = 1;
	q->done[head] = 0;
	q->avail[2 + q->avail_idx % q->size] = head;
	q->avail_idx++;
	return head;
}

void vq_publish_raw(struct vq *q, uint16_t id)
{
	if (id < q->size) {
		q->busy[id] = 1;
		q->done[id] = 0;
		q->chain[id] = 0;
	}
	q->avail[2 + q->avail_idx % q->size] = id;
	q->avail_idx++;
}

void vq_kick(struct vdev *v, struct vq *q)
{
	uint16_t old = q->kicked_idx, nw = q->avail_idx;
	if (v->event_idx && v->msix)
		q->avail[2 + q->size] = q->last_used;
	barrier();
	q->avail[1] = nw; /* x86 keeps the ring stores before this one */
	mb();             /* ... but the flag/event loads below must not pass it */
	static int always = -1;
	if (always < 0)
		always = cmdline_is("vq_notify", "always");
	int need;
	if (always)
		need = 1;
	else if (v->event_idx) {
		uint16_t ev = *(volatile uint16_t *)(q->used + 4 + 8u * q->size);
		need = (uint16_t)(nw - ev - 1) < (uint16_t)(nw - old);
	} else {
		need = !(*(volatile uint16_t *)q->used & 1);
	}
	q->kicked_idx = nw;
	q->irq_at_kick = vio_irqs_queue;
	if (need) {
		mmio_w16(q->notify, q->index);
		q->kicks++;
	} else {
		q->kicks_skipped++;
	}
}

void vq_poll(struct vq *q)
{
	for (int guard = 0; guard < 65536; guard++) {
		uint16_t idx = *(volatile uint16_t *)(q->used + 2);
		if (idx == q->last_used)
			break;
		barrier();
		volatile uint8_t *e = q->used + 4 + 8u * (q->last_used % q->size);
		uint32_t id = *(volatile uint32_t *)e, len = *(volatile uint32_t *)(e + 4);
		q->last_used++;
		if (id >= q->size || !q->busy[id]) {
			q->bogus++;
			continue;
		}
		q->busy[id] = 0;
		q->done[id] = 1;
		q->done_len[id] = len;
		uint16_t n = q->chain[id];
		if (n) {
			uint16_t last = (uint16_t)id;
			for (uint16_t k = 1; k < n; k++)
				last = q->next[last];
			q->next[last] = q->free_head;
			q->free_head = (uint16_t)id;
			q->nfree = (uint16_t)(q->nfree + n);
			q->chain[id] = 0;
		}
	}
}

void vq_release(struct vq *q, uint16_t head)
{
	if (head < q->size)
		q->done[head] = 0;
}

int vq_wait(struct vdev *v, struct vq *q, uint16_t head, uint32_t *len, uint64_t ms)
{
	uint64_t dl = tsc_deadline_ms(ms), step = tsc_khz * 5, next_st = rdtsc() + step;
	int r = -1;
	if (v->msix)
		sti();
	for (;;) {
		vq_poll(q);
		if (head < q->size && q->done[head] && (!v->msix || vio_irqs_queue != q->irq_at_kick)) {
			*len = q->done_len[head];
			r = 0;
			break;
		}
		uint64_t now = rdtsc();
		if ((int64_t)(now - dl) >= 0) {
			r = head < q->size && q->done[head] ? -3 : -1;
			break;
		}
		if ((int64_t)(now - next_st) >= 0) {
			next_st = now + step;
			if (vdev_status(v) & VS_NEEDS_RESET) {
				r = -4;
				break;
			}
		}
	}
	cli();
	if (v->msix && v->event_idx)
		q->avail[2 + q->size] = q->last_used;
	return r;
}

/* ----------------------------------------------------------------- rng --- */
void check_rng(void)
{
	static struct vdev r;
	int e = vdev_find(&r, VIRTIO_ID_RNG, (int)cmdline_num("rng_dev", 0));
	if (e == -1) {
		kt_skip("rng", "no-device");
		return;
	}
	if (e < 0 || vdev_init(&r, 0, 1, 0, 0)) {
		kt_fail("rng", "init %s", r.err);
		return;
	}
	vdev_describe(&r, "rng");
	uint8_t *buf = dma_alloc(64, 64);
	if (!buf) {
		kt_fail("rng", "no-dma-memory");
		return;
	}
	memset(buf, 0, 64);
	uint32_t got = 0;
	for (int tries = 0; tries < 16 && got < 64; tries++) {
		struct vbuf b = {(uint64_t)buf + got, 64 - got, 1};
		int h = vq_add(&r.q[0], &b, 1, r.indirect);
		uint32_t len = 0;
		vq_kick(&r, &r.q[0]);
		if (h < 0 || vq_wait(&r, &r.q[0], (uint16_t)h, &len, 5000)) {
			kt_fail("rng", "timeout got=%u", got);
			vdev_reset(&r);
			return;
		}
		if (len > 64 - got) {
			kt_fail("rng", "bad-used-len len=%u", len);
			vdev_reset(&r);
			return;
		}
		got += len;
	}
	char hex[160];
	int nz = 0;
	for (int i = 0; i < 64; i++) {
		kt_snprintf(hex + 2 * i, 3, "%02x", buf[i]);
		nz |= buf[i];
	}
	kt_line("rng bytes=%u hex=%s", got, hex);
	vdev_reset(&r);
	if (got < 64)
		kt_fail("rng", "short bytes=%u", got);
	else if (!nz)
		kt_fail("rng", "all-zero");
	else
		kt_pass("rng");
}

/* ------------------------------------------------------------- console --- */
void check_vcon(void)
{
	static struct vdev c;
	static const char msg[] = "KT-VCON-HELLO\n";
	int e = vdev_find(&c, VIRTIO_ID_CONSOLE, (int)cmdline_num("vcon_dev", 0));
	if (e == -1) {
		kt_skip("vcon", "no-device");
		return;
	}
	/* no MULTIPORT: port 0 only, receiveq 0 and transmitq 1 */
	if (e < 0 || vdev_init(&c, 0, 2, 0, 0)) {
		kt_fail("vcon", "init %s", c.err);
		return;
	}
	vdev_describe(&c, "vcon");
	char *buf = dma_alloc(64, 64);
	if (!buf) {
		kt_fail("vcon", "no-dma-memory");
		return;
	}
	memcpy(buf, msg, sizeof(msg) - 1);
	struct vbuf b = {(uint64_t)buf, sizeof(msg) - 1, 0};
	int h = vq_add(&c.q[1], &b, 1, 0);
	uint32_t len = 0;
	vq_kick(&c, &c.q[1]);
	int r = h < 0 ? -1 : vq_wait(&c, &c.q[1], (uint16_t)h, &len, 5000);
	kt_line("vcon port=0 bytes=%u result=%s", (unsigned)sizeof(msg) - 1, r ? "timeout" : "done");
	mdelay(20); /* let the host side flush before the reset */
	vdev_reset(&c);
	if (r)
		kt_fail("vcon", "timeout");
	else
		kt_pass("vcon");
}
