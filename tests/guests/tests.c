/* kvmkit test guest: the individual checks and the benchmark loops. */
#include "kt.h"

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ------------------------------------------------------------ bootinfo --- */
void check_bootinfo(void)
{
	kt_line("boot proto=%s", proto_name(boot_proto));
	kt_line("cmdline %s", cmdline);
	if (boot_proto == PROTO_PVH) {
		const uint8_t *s = startinfo;
		kt_line("pvh magic=0x%x version=%u flags=0x%x nr_modules=%u modlist=0x%lx", rd32(s), rd32(s + 4),
			rd32(s + 8), rd32(s + 12), rd64(s + 16));
		kt_line("pvh cmdline_paddr=0x%lx rsdp_paddr=0x%lx memmap_paddr=0x%lx memmap_entries=%u", rd64(s + 24),
			rd64(s + 32), rd32(s + 4) >= 1 ? rd64(s + 40) : 0, rd32(s + 4) >= 1 ? rd32(s + 48) : 0);
	} else {
		const uint8_t *bp = bootparams;
		kt_line("bootparams type_of_loader=0x%x version=0x%x loadflags=0x%x cmd_line_ptr=0x%lx", bp[0x210],
			(unsigned)(bp[0x206] | bp[0x207] << 8), bp[0x211], cmdline_paddr);
		kt_line("bootparams ramdisk_image=0x%lx ramdisk_size=%lu acpi_rsdp_addr=0x%lx e820_entries=%u",
			initrd_addr, initrd_size, rsdp_hint, bp[0x1e8]);
		kt_line("bootparams setup_data=0x%lx hardware_subarch=%u", rd64(bp + 0x250), rd32(bp + 0x23c));
	}
	if (initrd_size)
		kt_line("initrd addr=0x%lx size=%lu", initrd_addr, initrd_size);
	uint64_t ram = 0;
	for (int i = 0; i < memmap_n; i++) {
		kt_line("e820 0x%lx 0x%lx %u", memmap[i].addr, memmap[i].size, memmap[i].type);
		if (memmap[i].type == 1)
			ram += memmap[i].size;
	}
	kt_line("e820 entries=%d ram=0x%lx", memmap_n, ram);
	if (!memmap_n)
		kt_fail("bootinfo", "no-memory-map");
	else if (!ram)
		kt_fail("bootinfo", "no-ram-in-memory-map");
	else if (boot_proto == PROTO_PVH && rd32(startinfo) != 0x336ec578)
		kt_fail("bootinfo", "bad-start-info-magic");
	else if (boot_proto != PROTO_PVH && rd32(bootparams + 0x202) != 0x53726448)
		kt_fail("bootinfo", "no-HdrS-in-boot-params");
	else
		kt_pass("bootinfo");
}

/* --------------------------------------------------------------- crc32 --- */
static uint32_t crc_tab[8][256];

static void crc32_init(void)
{
	if (crc_tab[0][1])
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* zlib-compatible: crc32_update(0, buf, n) == zlib.crc32(buf) */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint64_t n)
{
	crc32_init();
	uint32_t c = ~crc;
	while (n && ((uint64_t)p & 7)) {
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) { /* slicing-by-8: few instructions per byte under emulation */
		uint64_t w = *(const uint64_t *)p ^ c;
		c = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^ crc_tab[5][(w >> 16) & 0xff] ^
		    crc_tab[4][(w >> 24) & 0xff] ^ crc_tab[3][(w >> 32) & 0xff] ^ crc_tab[2][(w >> 40) & 0xff] ^
		    crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

void check_initrd(void)
{
	if (!initrd_size) {
		kt_skip("initrd", "none");
		return;
	}
	if (map_range(initrd_addr, initrd_size) < 0) {
		kt_fail("initrd", "cannot-map addr=0x%lx", initrd_addr);
		return;
	}
	uint32_t crc = crc32_update(0, (const uint8_t *)initrd_addr, initrd_size);
	kt_line("initrd size=%lu crc32=%08x", initrd_size, crc);
	kt_pass("initrd");
}

/* ----------------------------------------------------------------- rtc --- */
static uint8_t cmos(uint8_t r)
{
	outb(0x70, r);
	return inb(0x71);
}

static uint8_t bcd(uint8_t v) { return (uint8_t)((v & 0x0f) + (v >> 4) * 10); }

void check_rtc(void)
{
	uint8_t t[7], prev[7];
	int tries = 0, stable = 0;
	acpi_init(); /* for the FADT century register */
	uint8_t creg = acpi.century;
	if (cmos(0x0a) == 0xff && cmos(0x0b) == 0xff) {
		kt_skip("rtc", "no-rtc");
		return;
	}
	for (; tries < 20 && !stable; tries++) {
		for (int i = 0; i < 100000 && (cmos(0x0a) & 0x80); i++)
			;
		t[0] = cmos(0x00);
		t[1] = cmos(0x02);
		t[2] = cmos(0x04);
		t[3] = cmos(0x07);
		t[4] = cmos(0x08);
		t[5] = cmos(0x09);
		t[6] = creg ? cmos(creg) : 0;
		stable = tries > 0 && !memcmp(t, prev, sizeof(t));
		memcpy(prev, t, sizeof(t));
	}
	uint8_t regb = cmos(0x0b);
	if (!stable) {
		kt_fail("rtc", "unstable");
		return;
	}
	int pm = t[2] & 0x80;
	t[2] &= 0x7f;
	if (!(regb & 0x04)) {
		for (int i = 0; i < 7; i++)
			t[i] = bcd(t[i]);
	}
	if (!(regb & 0x02)) /* 12-hour mode: 12 AM = 0, 12 PM = 12 */
		t[2] = (uint8_t)(t[2] % 12 + (pm ? 12 : 0));
	unsigned year = t[5] + (creg && t[6] ? t[6] * 100u : 2000u);
	kt_line("rtc %04u-%02u-%02u %02u:%02u:%02u", year, t[4], t[3], t[2], t[1], t[0]);
	kt_line("rtc regb=0x%02x century_reg=0x%x", regb, creg);
	if (t[4] < 1 || t[4] > 12 || t[3] < 1 || t[3] > 31 || t[2] > 23 || t[1] > 59 || t[0] > 59)
		kt_fail("rtc", "out-of-range");
	else
		kt_pass("rtc");
}

/* ------------------------------------------------------------- highmem --- */
void check_highmem(void)
{
	const uint64_t G4 = 1ull << 32;
	uint64_t addr[16];
	int n = 0;
	for (int i = 0; i < memmap_n && n + 3 <= 16; i++) {
		if (memmap[i].type != 1)
			continue;
		uint64_t s = memmap[i].addr, e = memmap[i].addr + memmap[i].size;
		if (e <= G4)
			continue;
		if (s < G4)
			s = G4;
		s = (s + 7) & ~7ull;
		e &= ~7ull;
		if (e - s < 8)
			continue;
		kt_line("highmem range 0x%lx-0x%lx", s, e);
		addr[n++] = s;
		addr[n++] = s + (((e - s) / 2) & ~7ull);
		addr[n++] = e - 8;
	}
	if (!n) {
		kt_skip("highmem", "no-ram-above-4g");
		return;
	}
	for (int i = 0; i < n; i++) {
		if (map_range(addr[i], 8) < 0) {
			kt_fail("highmem", "cannot-map 0x%lx", addr[i]);
			return;
		}
	}
	/* write all first, then read all: catches aliasing between the addresses
	 * and with the low 4 GiB */
	uint64_t low_before = *(volatile uint64_t *)(addr[0] - G4);
	for (int i = 0; i < n; i++)
		*(volatile uint64_t *)addr[i] = addr[i] ^ 0x5a5aa5a5c3c33c3cull;
	int bad = 0;
	for (int i = 0; i < n; i++) {
		uint64_t v = *(volatile uint64_t *)addr[i];
		int ok = v == (addr[i] ^ 0x5a5aa5a5c3c33c3cull);
		kt_line("highmem 0x%lx %s", addr[i], ok ? "ok" : "mismatch");
		bad += !ok;
	}
	/* the page at addr-4G may be in use (it is low RAM): only compare */
	if (*(volatile uint64_t *)(addr[0] - G4) != low_before)
		kt_fail("highmem", "aliases-low-memory");
	else if (bad)
		kt_fail("highmem", "mismatch=%d", bad);
	else
		kt_pass("highmem");
}

/* ------------------------------------------------------------ uart irq --- */
#define COM1 0x3f8
#define UART_VEC 0x44

static volatile unsigned uart_irqs, uart_thre, uart_rx_n;
static volatile uint8_t uart_rx_byte, uart_last_iir;

static void uart_isr(struct isr_frame *f)
{
	(void)f;
	uart_irqs++;
	for (int i = 0; i < 16; i++) {
		uint8_t iir = inb(COM1 + 2);
		if (iir & 1)
			break;
		uart_last_iir = iir;
		switch (iir & 0x0e) {
		case 0x02: /* THR empty: cleared by reading IIR */
			uart_thre++;
			outb(COM1 + 1, inb(COM1 + 1) & ~0x02);
			break;
		case 0x04: /* RX data */
		case 0x0c: /* RX timeout */
			while (inb(COM1 + 5) & 1) {
				uint8_t b = inb(COM1);
				if (!uart_rx_n)
					uart_rx_byte = b;
				uart_rx_n++;
			}
			break;
		case 0x06:
			(void)inb(COM1 + 5);
			break;
		case 0x00:
			(void)inb(COM1 + 6);
			break;
		}
	}
	lapic_eoi();
}

static uint64_t uart_ioapic;
static uint32_t uart_gsi, uart_redir_lo;

static void ioapic_w(uint64_t base, uint32_t reg, uint32_t v)
{
	mmio_w32(base, reg);
	mmio_w32(base + 0x10, v);
}

static uint32_t ioapic_r(uint64_t base, uint32_t reg)
{
	mmio_w32(base, reg);
	return mmio_r32(base + 0x10);
}

void pic_disable(void)
{
	/* remap the 8259s to 0x20-0x2f (away from exceptions) and mask them */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

uint32_t ioapic_route_isa(uint8_t irq, uint8_t vec, int default_level, uint64_t *base_out, uint32_t *pin_out)
{
	acpi_init();
	lapic_init();
	pic_disable();
	uint32_t gsi = irq;
	uint16_t flags = 0;
	for (int i = 0; i < acpi.niso; i++)
		if (acpi.iso[i].src == irq) {
			gsi = acpi.iso[i].gsi;
			flags = acpi.iso[i].flags;
		}
	uint64_t base = 0xfec00000;
	uint32_t gbase = 0;
	for (int i = 0; i < acpi.nioapic; i++) {
		uint64_t b = acpi.ioapic[i].addr;
		map_range(b, 0x20);
		uint32_t nr = ((ioapic_r(b, 1) >> 16) & 0xff) + 1;
		if (gsi >= acpi.ioapic[i].gsi_base && gsi < acpi.ioapic[i].gsi_base + nr) {
			base = b;
			gbase = acpi.ioapic[i].gsi_base;
		}
	}
	map_range(base, 0x20);
	/* polarity: 00 bus default (ISA: high), 01 high, 11 low;
	 * trigger: 00 bus default (ISA: edge; the SCI: level), 01 edge, 11 level */
	int low = (flags & 3) == 3;
	int level = ((flags >> 2) & 3) == 3 || (((flags >> 2) & 3) == 0 && default_level);
	uint32_t pin = gsi - gbase;
	uint32_t lo = vec | (low ? 1u << 13 : 0) | (level ? 1u << 15 : 0);
	ioapic_w(base, 0x10 + 2 * pin + 1, lapic_id() << 24);
	ioapic_w(base, 0x10 + 2 * pin, lo);
	*base_out = base;
	*pin_out = pin;
	return lo;
}

/* Routes ISA IRQ 4 through the IOAPIC to UART_VEC on this CPU. */
static int uart_irq_setup(const char *name)
{
	set_irq_handler(UART_VEC, uart_isr);
	outb(COM1 + 1, 0);
	(void)inb(COM1 + 2);
	(void)inb(COM1 + 5);
	(void)inb(COM1 + 6);
	uint32_t pin;
	uart_redir_lo = ioapic_route_isa(4, UART_VEC, 0, &uart_ioapic, &pin);
	uart_gsi = 4;
	for (int i = 0; i < acpi.niso; i++)
		if (acpi.iso[i].src == 4)
			uart_gsi = acpi.iso[i].gsi;
	int level = (uart_redir_lo >> 15) & 1, low = (uart_redir_lo >> 13) & 1;
	kt_line("%s gsi=%u ioapic=0x%lx vector=0x%x trigger=%s polarity=%s apic=%u", name, uart_gsi, uart_ioapic,
		UART_VEC, level ? "level" : "edge", low ? "low" : "high", lapic_id());
	return (int)pin;
}

static void uart_irq_teardown(int pin)
{
	outb(COM1 + 1, 0);
	ioapic_w(uart_ioapic, 0x10 + 2 * pin, uart_redir_lo | (1u << 16));
	set_irq_handler(UART_VEC, 0);
}

void check_uart_irq(void)
{
	int pin = uart_irq_setup("uart_irq");
	uart_irqs = uart_thre = 0;
	uint64_t dl = tsc_deadline_ms(3000);
	sti();
	outb(COM1 + 1, 0x02); /* IER: THR empty interrupt */
	while (!uart_thre && !tsc_expired(dl))
		barrier();
	cli();
	uart_irq_teardown(pin);
	kt_line("uart_irq irqs=%u thre=%u iir=0x%02x unexpected=%u", uart_irqs, uart_thre, uart_last_iir,
		unexpected_irqs);
	if (uart_thre)
		kt_pass("uart_irq");
	else
		kt_fail("uart_irq", "no-interrupt");
}

void check_uart_rx(void)
{
	size_t len;
	uint64_t secs = 30;
	const char *v = cmdline_get("rx_timeout", &len);
	if (v) {
		secs = 0;
		for (size_t i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			secs = secs * 10 + (uint64_t)(v[i] - '0');
	}
	int pin = uart_irq_setup("uart_rx");
	while (inb(COM1 + 5) & 1) /* drain */
		(void)inb(COM1);
	uart_rx_n = 0;
	uint64_t dl = tsc_deadline_ms(secs * 1000);
	kt_line("ready-for-input");
	sti();
	outb(COM1 + 1, 0x01); /* IER: RX data available */
	while (!uart_rx_n && !tsc_expired(dl))
		barrier();
	cli();
	uart_irq_teardown(pin);
	if (uart_rx_n) {
		uint8_t b = uart_rx_byte;
		kt_line("uart_rx byte=0x%02x char=%c count=%u", b, (b > 0x20 && b < 0x7f) ? b : '.', uart_rx_n);
		kt_pass("uart_rx");
	} else {
		kt_fail("uart_rx", "timeout secs=%lu", secs);
	}
}

/* ---------------------------------------------------------------- int3 --- */
void check_int3(void)
{
	volatile int after = 0;
	bp_hits = 0;
	__asm__ volatile("int3" ::: "memory");
	after = 1;
	kt_line("int3 handler_runs=%u continued=%d", bp_hits, after);
	if (bp_hits == 1 && after)
		kt_pass("int3");
	else
		kt_fail("int3", "handler_runs=%u", bp_hits);
}

/* ----------------------------------------------------------- crc32insn --- */
/* Executes SSE4.2 crc32, which hardware runs but KVM's instruction emulator
 * (PVM hosts) cannot: exercises the VMM's emulation-failure report. Opt-in. */
void check_crc32insn(void)
{
	uint32_t v = 0;
	kt_line("crc32insn executing");
	__asm__ volatile(".byte 0xf2, 0x0f, 0x38, 0xf0, 0xc1" /* crc32b %cl, %eax */
			 : "+a"(v) : "c"(0x5a) : "memory");
	kt_line("crc32insn result=0x%x", v);
	kt_pass("crc32insn");
}

/* ----------------------------------------------------------- pagefault --- */
static volatile uint64_t pf_cr2, pf_err;
static volatile unsigned pf_hits;

static void pf_handler(struct isr_frame *f)
{
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	pf_cr2 = cr2;
	pf_err = f->err;
	pf_hits++;
	f->rip += 3; /* skip the 3-byte "mov (%rax), %rax" below */
}

void check_pagefault(void)
{
	/* PML4[1] is never present: 512 GiB is unmapped */
	uint64_t addr = 0x8000001230ull, v = addr;
	pf_hits = 0;
	set_irq_handler(14, pf_handler);
	__asm__ volatile(".byte 0x48, 0x8b, 0x00" /* mov (%rax), %rax */ : "+a"(v)::"memory");
	set_irq_handler(14, 0);
	kt_line("pagefault hits=%u cr2=0x%lx err=0x%lx", pf_hits, pf_cr2, pf_err);
	if (pf_hits == 1 && pf_cr2 == addr && !(pf_err & 1))
		kt_pass("pagefault");
	else
		kt_fail("pagefault", "hits=%u cr2=0x%lx", pf_hits, pf_cr2);
}

/* ----------------------------------------------------------------- smp --- */
static int ram_page_ok(uint64_t a)
{
	if (!memmap_n)
		return 1;
	for (int i = 0; i < memmap_n; i++)
		if (memmap[i].type == 1 && memmap[i].addr <= a && a + 4096 <= memmap[i].addr + memmap[i].size)
			goto in_ram;
	return 0;
in_ram:
	for (int i = 0; i < acpi.ntables; i++) /* tables must survive */
		if (acpi.table[i] + 4096 > a && acpi.table[i] < a + 4096)
			return 0;
	if (acpi.rsdp + 4096 > a && acpi.rsdp < a + 4096)
		return 0;
	if (acpi.dsdt + 4096 > a && acpi.dsdt < a + 4096)
		return 0;
	return 1;
}

void check_smp(void)
{
	acpi_init();
	if (!acpi.madt) {
		kt_fail("smp", "no-madt");
		return;
	}
	lapic_init();
	uint32_t self = lapic_id();
	uint64_t page = 0;
	for (uint64_t a = 0x8000; a < 0x9f000 && !page; a += 0x1000)
		if (ram_page_ok(a))
			page = a;
	for (uint64_t a = 0x1000; a < 0x8000 && !page; a += 0x1000)
		if (ram_page_ok(a))
			page = a;
	if (!page) {
		kt_fail("smp", "no-trampoline-page");
		return;
	}
	memcpy((void *)page, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	ap_count = 0;
	memset((void *)ap_seen, 0, sizeof(ap_seen));
	int expected = 0, self_listed = 0;
	kt_line("smp bsp=%u x2apic=%d trampoline=0x%lx", self, lapic_x2, page);
	time_init();
	for (int i = 0; i < acpi.ncpu; i++) {
		if (!acpi.cpu_enabled[i])
			continue;
		uint32_t id = acpi.cpu_apic[i];
		if (id == self) {
			self_listed = 1;
			continue;
		}
		expected++;
		/* INIT assert, INIT de-assert, 10 ms, STARTUP, 200 us, STARTUP */
		int err = lapic_send_ipi(id, 0x0000c500);
		err |= lapic_send_ipi(id, 0x00008500);
		mdelay(10);
		err |= lapic_send_ipi(id, 0x00000600 | (uint32_t)(page >> 12));
		udelay(200);
		err |= lapic_send_ipi(id, 0x00000600 | (uint32_t)(page >> 12));
		if (err)
			kt_line("smp apic=%u ipi-not-delivered", id);
	}
	uint64_t dl = tsc_deadline_ms(10000 + 2000ull * (uint64_t)expected);
	while ((int)ap_count < expected && !tsc_expired(dl))
		barrier();
	mdelay(50); /* let late or duplicate starters show up too */
	int started = (int)ap_count;
	for (int i = 0; i < acpi.ncpu; i++) {
		uint32_t id = acpi.cpu_apic[i];
		if (!acpi.cpu_enabled[i] || id == self)
			continue;
		kt_line("smp apic=%u %s", id, id < 256 && ap_seen[id] ? "up" : "missing");
	}
	kt_line("smp started=%d expected=%d", started, expected);
	if (!self_listed)
		kt_fail("smp", "bsp-not-in-madt apic=%u", self);
	else if (started != expected)
		kt_fail("smp", "started=%d expected=%d", started, expected);
	else
		kt_pass("smp");
}

/* --------------------------------------------------------------- bench --- */
static uint64_t parse_num(const char **p, const char *end, unsigned base)
{
	uint64_t v = 0;
	if (base == 16 && end - *p > 2 && (*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X'))
		*p += 2;
	for (; *p < end; (*p)++) {
		char c = **p;
		unsigned d;
		if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
		else break;
		v = v * base + d;
	}
	return v;
}

/* bench=pio:<count>:<port-hex>[:in|:out]  bench=mmio:<count>:<addr-hex>[:read|:write] */
void run_bench(const char *spec, size_t len)
{
	const char *p = spec, *end = spec + len;
	int mmio;
	if (len > 4 && !strncmp(p, "net:", 4)) {
		run_net_bench(p + 4, len - 4);
		return;
	}
	if (len > 4 && !strncmp(p, "blk:", 4)) {
		run_blk_bench(p + 4, len - 4);
		return;
	}
	if (len > 4 && !strncmp(p, "pio:", 4)) {
		mmio = 0;
		p += 4;
	} else if (len > 5 && !strncmp(p, "mmio:", 5)) {
		mmio = 1;
		p += 5;
	} else {
		kt_fail("bench", "bad-spec");
		return;
	}
	uint64_t count = parse_num(&p, end, 10);
	if (p >= end || *p != ':') {
		kt_fail("bench", "bad-spec");
		return;
	}
	p++;
	uint64_t target = parse_num(&p, end, 16);
	int write = 0;
	if (p < end && *p == ':') {
		p++;
		write = (end - p >= 3 && !strncmp(p, "out", 3)) || (end - p >= 5 && !strncmp(p, "write", 5));
	}
	if (mmio && map_range(target, 4) < 0) {
		kt_fail("bench", "cannot-map");
		return;
	}
	kt_line("bench mode=%s count=%lu %s=0x%lx op=%s", mmio ? "mmio" : "pio", count, mmio ? "addr" : "port", target,
		mmio ? (write ? "write32" : "read32") : (write ? "out32" : "in32"));
	kt_line("bench start");
	if (!mmio && !write) {
		for (uint64_t i = 0; i < count; i++)
			(void)inl((uint16_t)target);
	} else if (!mmio) {
		for (uint64_t i = 0; i < count; i++)
			outl((uint16_t)target, (uint32_t)i);
	} else if (!write) {
		for (uint64_t i = 0; i < count; i++)
			(void)mmio_r32(target);
	} else {
		for (uint64_t i = 0; i < count; i++)
			mmio_w32(target, (uint32_t)i);
	}
	kt_line("bench end");
	kt_pass("bench");
}
