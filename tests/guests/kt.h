/* kvmkit test guest: common declarations (freestanding, x86-64, no SSE). */
#ifndef KT_H
#define KT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Boot protocol the guest was entered through (value in boot_proto). */
#define PROTO_BZ64 1 /* bzImage, 64-bit entry at load address + 0x200 */
#define PROTO_BZ32 2 /* bzImage, 32-bit entry at code32_start */
#define PROTO_BZ16 3 /* bzImage, real-mode setup at setup + 0x200 (BIOS loaders) */
#define PROTO_PVH 4  /* PVH ELF note entry, EBX = hvm_start_info */

/* ---- port and MMIO access ---- */
static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static inline uint8_t mmio_r8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_r16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_r32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_w8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_w16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_w32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
/* full barrier (store->load order) without SSE2's mfence */
static inline void mb(void) { __asm__ volatile("lock addl $0, (%%rsp)" ::: "memory", "cc"); }

/* ---- lib.c ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

void serial_init(void);
void serial_putc(char c);
void serial_write(const char *s, size_t n);
int kt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int kt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints one protocol line: "KT: " + text + "\r\n". */
void kt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kt_pass(const char *name);
void kt_fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kt_skip(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern unsigned kt_npass, kt_nfail, kt_nskip;

/* time: TSC calibrated lazily (CPUID 0x40000010, PIT channel 2, else a guess) */
void time_init(void);
uint64_t tsc_deadline_ms(uint64_t ms);
int tsc_expired(uint64_t deadline);
void udelay(uint64_t us);
void mdelay(uint64_t ms);
extern uint64_t tsc_khz;

/* ---- memory map / boot info (main.c) ---- */
struct mem_entry {
	uint64_t addr, size;
	uint32_t type;
};
#define MAX_MEM 128
extern struct mem_entry memmap[MAX_MEM];
extern int memmap_n;
extern int boot_proto;
extern uint8_t bootparams[4096];   /* copy of struct boot_params (bzImage forms) */
extern uint8_t startinfo[64];      /* copy of struct hvm_start_info (PVH) */
extern char cmdline[4096];
extern uint64_t cmdline_paddr;
extern uint64_t initrd_addr, initrd_size;
extern uint64_t rsdp_hint;
const char *proto_name(int p);
const char *cmdline_get(const char *key, size_t *len); /* value of key=..., or NULL */

/* page tables (head.S) and on-demand mapping above 4 GiB */
int map_range(uint64_t addr, uint64_t len);

/* ---- interrupts (main.c) ---- */
struct isr_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vec, err, rip, cs, rflags, rsp, ss;
};
typedef void (*irq_handler_t)(struct isr_frame *f);
void idt_init(void);
void set_irq_handler(int vec, irq_handler_t h);
extern volatile unsigned bp_hits, unexpected_irqs, last_unexpected_vec;

/* local APIC */
void lapic_init(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
void lapic_timer_periodic(uint8_t vec, uint32_t ms);
int lapic_send_ipi(uint32_t dest, uint32_t icr_lo);
extern int lapic_x2;

/* ---- ACPI (acpi.c) ---- */
#define MAX_CPUS 256
#define MAX_IOAPIC 8
#define MAX_ISO 16
#define MAX_TABLES 64
struct gas {
	uint8_t space, bit_width, bit_offset, access_size;
	uint64_t addr;
};
struct acpi_info {
	int done, found;
	uint64_t rsdp;
	const char *rsdp_src;
	int rev;
	uint64_t root;
	int xsdt;
	int ntables;
	uint64_t table[MAX_TABLES];
	uint64_t fadt, madt, dsdt;
	int bad; /* number of bad checksums */
	/* MADT */
	int ncpu;
	uint32_t cpu_apic[MAX_CPUS];
	uint8_t cpu_enabled[MAX_CPUS];
	uint32_t lapic_addr;
	int nioapic;
	struct { uint32_t id, addr, gsi_base; } ioapic[MAX_IOAPIC];
	int niso;
	struct { uint8_t src; uint32_t gsi; uint16_t flags; } iso[MAX_ISO];
	/* FADT */
	uint32_t fadt_len, fadt_flags;
	uint32_t smi_cmd;
	uint8_t acpi_enable, century;
	struct gas pm1a_cnt, pm1b_cnt, reset_reg, sleep_ctl;
	struct gas pm1a_evt; /* PM1a status register (16 bits); enable is at + pm1_evt_len/2 */
	uint8_t pm1_evt_len;
	uint16_t sci_int;
	uint8_t reset_value;
	int s5_found;
	uint8_t s5a, s5b;
};
extern struct acpi_info acpi;
void acpi_init(void);
void acpi_report(void); /* the "acpi" check */
int gas_write(const struct gas *g, uint64_t v);
uint64_t gas_read(const struct gas *g);

/* ---- checks (tests.c) ---- */
void check_bootinfo(void);
void check_initrd(void);
void check_rtc(void);
void check_highmem(void);
void check_uart_irq(void);
void check_uart_rx(void);
void check_int3(void);
void check_pagefault(void);
void check_crc32insn(void);
void check_smp(void);
void run_bench(const char *spec, size_t len);
uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint64_t n);
void pic_disable(void);

/* ---- PCI (pci.c) ---- */
#define PCI_MAX 64
#define BAR_IO 1
#define BAR_MEM 2
#define BAR_64 4
#define BAR_PREF 8
struct pci_dev {
	uint8_t bus, dev, fn, hdr;
	uint16_t vendor, device, subsys_vendor, subsys;
	uint32_t class_rev;
	uint64_t bar[6], bar_size[6];
	uint8_t bar_flags[6];
	uint8_t bar_assigned; /* bit i: BAR i assigned by the guest */
};
extern struct pci_dev pci_devs[PCI_MAX];
extern int pci_ndev;
extern uint64_t pci_ecam;
int pci_scan(void);
const char *pci_name(const struct pci_dev *d);
uint32_t pci_read(const struct pci_dev *d, unsigned off, int width);
void pci_write(const struct pci_dev *d, unsigned off, int width, uint32_t v);
unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned from);
uint64_t pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t off, uint64_t len);
int pci_msix_setup(struct pci_dev *d, unsigned entry, uint8_t vector);
void pci_msix_disable(struct pci_dev *d);
void check_pci(void);
/* DMA memory: identity mapped RAM below 4 GiB, not zeroed */
void *dma_alloc(uint64_t size, uint64_t align);
uint64_t dma_left(void);
/* command line helpers */
uint64_t cmdline_num(const char *key, uint64_t def); /* decimal, or hex with 0x */
int cmdline_is(const char *key, const char *val);
int cmdline_has(const char *key, const char *word); /* word in comma list */

/* ---- virtio (virtio.c, virtio_blk.c) ---- */
void check_blk(void);
void check_blk_rw(void);
void check_blk_read(void);
void check_blk_flush(void);
void check_blk_getid(void);
void check_blk_discard(void);
void check_blk_zeroes(void);
void check_blk_inflight(void);
void check_blk_readonly(void);
void check_blk_hostile(void);
void check_rng(void);
void check_vcon(void);
/* ---- virtio-net (virtio_net.c) ---- */
void check_net(void);
void check_net_ping(void);
void check_net_hostile(void);
void check_net_user(void);                  /* net_user.inc */
void run_net_bench(const char *p, size_t len); /* bench=net:... */
void run_blk_bench(const char *spec, size_t len);

/* ---- idle mode: periodic ticks and the ACPI power button (control.c) ---- */
int control_wanted(void); /* tick= or pwrbtn= on the command line */
void control_loop(void) __attribute__((noreturn));
/* routes ISA IRQ `irq` (via MADT overrides) through its IOAPIC to `vec` on this CPU; returns the redirection
 * low word it programmed, and the IOAPIC base and pin through the pointers (tests.c) */
uint32_t ioapic_route_isa(uint8_t irq, uint8_t vec, int default_level, uint64_t *base, uint32_t *pin);

/* ---- end actions (main.c) ---- */
void kt_finish(void) __attribute__((noreturn));

/* symbols from head.S / linker scripts */
extern uint64_t pml4[512], pdpt[512], pd[4][512], pd_pool[][512];
extern const int pd_pool_count;
extern char ap_tramp_start[], ap_tramp_end[];
extern volatile uint32_t ap_count;
extern volatile uint8_t ap_seen[256];
extern char isr_stubs[];
extern char _image_start[], _end[];

#endif
