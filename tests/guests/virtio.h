/* kvmkit test guest: virtio 1.x PCI (modern) transport and split virtqueues. */
#ifndef KT_VIRTIO_H
#define KT_VIRTIO_H

#include "kt.h"

/* device status bits */
#define VS_ACK 1
#define VS_DRIVER 2
#define VS_DRIVER_OK 4
#define VS_FEATURES_OK 8
#define VS_NEEDS_RESET 64
#define VS_FAILED 128

/* feature bits (transport / ring) */
#define VF_INDIRECT_DESC 28
#define VF_EVENT_IDX 29
#define VF_VERSION_1 32
#define VF_ACCESS_PLATFORM 33

/* virtio device ids */
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_BLK 2
#define VIRTIO_ID_RNG 4

/* split ring descriptor flags */
#define VD_NEXT 1
#define VD_WRITE 2
#define VD_INDIRECT 4

#define VQ_MAX 256   /* largest queue size we use */
#define VQ_IND_MAX 16 /* entries per indirect table */
#define VDEV_MAXQ 2

#define VIO_VEC_QUEUE 0x50 /* MSI-X vectors (blk_irq=msix) */
#define VIO_VEC_CONFIG 0x51

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vbuf {
	uint64_t addr;
	uint32_t len;
	int dev_writes; /* device-writable (VD_WRITE) */
};

struct vq {
	uint16_t size, index;
	uint64_t mem; /* 8 KiB: desc @0, avail @4096, used @5120 */
	volatile struct vq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint8_t *used;   /* flags u16, idx u16, {id u32, len u32}[size], avail_event u16 */
	uint64_t ind;             /* indirect tables: VQ_MAX * VQ_IND_MAX descriptors */
	uint64_t notify;
	uint16_t avail_idx, kicked_idx, last_used;
	uint16_t free_head, nfree;
	uint16_t next[VQ_MAX];  /* shadow of desc[].next for our free list */
	uint16_t chain[VQ_MAX]; /* descriptors owned by a head (0: raw, nothing to free) */
	uint8_t busy[VQ_MAX], done[VQ_MAX];
	uint32_t done_len[VQ_MAX];
	unsigned bogus;      /* used entries with an id we did not post */
	unsigned kicks, kicks_skipped;
	unsigned irq_at_kick;
};

struct vdev {
	struct pci_dev *pci;
	int type;
	uint64_t common, isr, dcfg, notify_base;
	uint32_t notify_mult, notify_len, dcfg_len;
	uint64_t offered, accepted;
	uint16_t num_queues;
	int nq;
	struct vq q[VDEV_MAXQ];
	int msix;     /* queue interrupts through MSI-X entry 1 (config: entry 0) */
	int polling_irq_off;
	int event_idx, indirect;
	char err[64];
};

extern volatile unsigned vio_irqs_queue, vio_irqs_config;

int vdev_find(struct vdev *v, int type, int nth); /* 0, -1 not found, -2 bad capabilities (v->err) */
/* Full initialization (spec 3.1.1): want = device feature bits to accept (VERSION_1,
 * ACCESS_PLATFORM and, per flags, INDIRECT_DESC/EVENT_IDX are added).  qsize 0: default. */
int vdev_init(struct vdev *v, uint64_t want, int nq, int qsize, int msix);
int vdev_reset(struct vdev *v); /* writes 0, waits for 0; 0 or -1 */
uint8_t vdev_status(struct vdev *v);
uint32_t vdev_cfg_r(struct vdev *v, unsigned off, int width);
uint64_t vdev_cfg_r64(struct vdev *v, unsigned off);
void vdev_describe(struct vdev *v, const char *who);

int vq_add(struct vq *q, const struct vbuf *b, int n, int indirect); /* head, or -1 (no room) */
void vq_kick(struct vdev *v, struct vq *q);
void vq_poll(struct vq *q);
void vq_release(struct vq *q, uint16_t head);
/* Waits until head is done: 0; -1 timeout; -3 done but no MSI-X interrupt;
 * -4 device set NEEDS_RESET.  *len gets the used length. */
int vq_wait(struct vdev *v, struct vq *q, uint16_t head, uint32_t *len, uint64_t ms);
void vq_publish_raw(struct vq *q, uint16_t id); /* put any id into the avail ring */

#endif
