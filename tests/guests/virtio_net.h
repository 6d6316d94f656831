/* kvmkit test guest: the virtio-net driver's interface (virtio_net.c), for
 * checks that exchange their own frames (polling, no interrupts). */
#ifndef KT_VIRTIO_NET_H
#define KT_VIRTIO_NET_H

#include "virtio.h"

#define VIRTIO_ID_NET 1
#define NET_HDR_LEN 12   /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define NET_RX_BUFS 64   /* receive buffers posted, one descriptor each */
#define NET_FRAME_MAX 1536
#define NET_MAX_NICS 4

struct nic {
	struct vdev v;
	int state; /* 0 not tried, 1 ready, -1 no device, -2 init failed (v.err) */
	uint8_t mac[6], peer_mac[6];
	uint8_t ip[4], peer[4]; /* from net_ip= / net_peer= (third octet + NIC index) */
	int have_peer_mac;
	uint32_t rxbuf_len;
	uint8_t *rx[NET_RX_BUFS];
	uint16_t rx_last_used;
	uint8_t *tx;    /* transmit buffer: header at 0, the frame from NET_HDR_LEN */
	uint8_t *frame; /* the last received frame (without the header) */
	unsigned rx_frames, rx_other, rx_bad;
};

/* The k-th virtio-net device, initialized on first use (MAC, STATUS and,
 * unless net_mrg=0, MRG_RXBUF; receive buffers posted). */
struct nic *nic_get(int k);
/* Sends n->tx[NET_HDR_LEN .. +len) behind a zero header (split: header in its
 * own descriptor); 0, or a vq_wait error. */
int net_send(struct nic *n, uint32_t len, int split);
/* Receives one frame into n->frame: its length, 0 on time-out, -1 malformed. */
int net_recv(struct nic *n, uint64_t ms);

#endif
