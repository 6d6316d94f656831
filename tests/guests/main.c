/* kvmkit test guest: boot information, command line, IDT/LAPIC, runner, end actions. */
#include "kt.h"

struct mem_entry memmap[MAX_MEM];
int memmap_n;
int boot_proto;
uint8_t bootparams[4096];
uint8_t startinfo[64];
char cmdline[4096];
uint64_t cmdline_paddr;
uint64_t initrd_addr, initrd_size;
uint64_t rsdp_hint;

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

const char *proto_name(int p)
{
	switch (p) {
	case PROTO_BZ64: return "bzimage64";
	case PROTO_BZ32: return "bzimage32";
	case PROTO_BZ16: return "bzimage16";
	case PROTO_PVH: return "pvh";
	}
	return "unknown";
}

static void copy_cmdline(uint64_t pa, size_t max)
{
	cmdline_paddr = pa;
	cmdline[0] = 0;
	if (!pa)
		return;
	if (max >= sizeof(cmdline))
		max = sizeof(cmdline) - 1;
	if (map_range(pa, max) < 0)
		return;
	const char *s = (const char *)pa;
	size_t i;
	for (i = 0; i < max && s[i]; i++)
		cmdline[i] = s[i];
	cmdline[i] = 0;
}

/* Copies everything the loader handed over into our .bss, so that nothing in
 * low memory has to be preserved afterwards. */
static void collect_boot_info(uint64_t ptr)
{
	if (boot_proto == PROTO_PVH) {
		memcpy(startinfo, (void *)ptr, 56);
		uint32_t version = rd32(startinfo + 4);
		uint32_t nr_mod = rd32(startinfo + 12);
		uint64_t modlist = rd64(startinfo + 16);
		copy_cmdline(rd64(startinfo + 24), 4095);
		rsdp_hint = rd64(startinfo + 32);
		if (nr_mod && modlist && map_range(modlist, 32) == 0) {
			initrd_addr = rd64((void *)modlist);
			initrd_size = rd64((void *)(modlist + 8));
		}
		if (version >= 1) {
			uint64_t mm = rd64(startinfo + 40);
			uint32_t n = rd32(startinfo + 48);
			if (n > MAX_MEM)
				n = MAX_MEM;
			if (mm && map_range(mm, n * 24ull) == 0) {
				for (uint32_t i = 0; i < n; i++) {
					const uint8_t *e = (const uint8_t *)(mm + i * 24ull);
					memmap[i].addr = rd64(e);
					memmap[i].size = rd64(e + 8);
					memmap[i].type = rd32(e + 16);
				}
				memmap_n = (int)n;
			}
		}
		return;
	}
	memcpy(bootparams, (void *)ptr, sizeof(bootparams));
	const uint8_t *bp = bootparams;
	uint64_t cl = rd32(bp + 0x228) | ((uint64_t)rd32(bp + 0x0c8) << 32);
	uint32_t clsize = rd32(bp + 0x238);
	if (rd32(bp + 0x202) != 0x53726448 || clsize == 0 || clsize > 4095)
		clsize = 4095;
	copy_cmdline(cl, clsize);
	initrd_addr = rd32(bp + 0x218) | ((uint64_t)rd32(bp + 0x0c0) << 32);
	initrd_size = rd32(bp + 0x21c) | ((uint64_t)rd32(bp + 0x0c4) << 32);
	rsdp_hint = rd64(bp + 0x070);
	int n = bp[0x1e8];
	if (n > MAX_MEM)
		n = MAX_MEM;
	for (int i = 0; i < n; i++) {
		const uint8_t *e = bp + 0x2d0 + i * 20;
		memmap[i].addr = rd64(e);
		memmap[i].size = rd64(e + 8);
		memmap[i].type = rd32(e + 16);
	}
	memmap_n = n;
}

/* ---------------------------------------------------------- cmdline --- */
/* Returns the value of the last "key=value" word, or NULL. */
const char *cmdline_get(const char *key, size_t *len)
{
	size_t kl = strlen(key);
	const char *found = NULL;
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - w) > kl && !strncmp(w, key, kl) && w[kl] == '=') {
			found = w + kl + 1;
			*len = (size_t)(p - found);
		}
	}
	return found;
}

/* ----------------------------------------------------------- paging --- */
static int pd_pool_used;

int map_range(uint64_t addr, uint64_t len)
{
	if (!len)
		len = 1;
	uint64_t end = addr + len - 1;
	if (end < addr)
		return -1;
	int changed = 0;
	for (uint64_t g = addr >> 30; g <= end >> 30; g++) {
		if (g < 4)
			continue;
		if (g >= 512)
			return -1; /* only PML4[0] (512 GiB) */
		if (pdpt[g] & 1)
			continue;
		if (pd_pool_used >= pd_pool_count)
			return -1;
		uint64_t *t = pd_pool[pd_pool_used++];
		for (uint64_t i = 0; i < 512; i++)
			t[i] = (g << 30) + (i << 21) + 0x83;
		pdpt[g] = (uint64_t)t + 3;
		changed = 1;
	}
	if (changed) {
		uint64_t cr3;
		__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3)::"memory");
	}
	return 0;
}

/* -------------------------------------------------------------- IDT --- */
struct idt_entry {
	uint16_t off0, sel;
	uint8_t ist, attr;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));
static struct idt_entry idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
volatile unsigned bp_hits, unexpected_irqs, last_unexpected_vec;
static int in_fatal;

void idt_init(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)isr_stubs + 16 * v;
		idt[v].off0 = (uint16_t)a;
		idt[v].sel = 0x08;
		idt[v].ist = 0;
		idt[v].attr = 0x8e; /* present, DPL0, interrupt gate */
		idt[v].off1 = (uint16_t)(a >> 16);
		idt[v].off2 = (uint32_t)(a >> 32);
		idt[v].zero = 0;
	}
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) d = {sizeof(idt) - 1, (uint64_t)idt};
	__asm__ volatile("lidt %0" ::"m"(d));
}

void set_irq_handler(int vec, irq_handler_t h) { handlers[vec] = h; }

void isr_dispatch(struct isr_frame *f)
{
	unsigned v = (unsigned)f->vec;
	if (handlers[v]) {
		handlers[v](f);
		return;
	}
	if (v == 3) {
		bp_hits++;
		return;
	}
	if (v >= 32) {
		unexpected_irqs++;
		last_unexpected_vec = v;
		if (v != 0xff && v != 0x27 && v != 0x2f)
			lapic_eoi();
		return;
	}
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	if (in_fatal++) {
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	kt_fail("exception", "vec=%u err=0x%lx rip=0x%lx cr2=0x%lx", v, f->err, f->rip, cr2);
	kt_finish();
}

/* ------------------------------------------------------------ LAPIC --- */
int lapic_x2;
static uint64_t lapic_base;

static uint32_t lapic_r(uint32_t reg)
{
	if (lapic_x2)
		return (uint32_t)rdmsr(0x800 + (reg >> 4));
	return mmio_r32(lapic_base + reg);
}

static void lapic_w(uint32_t reg, uint32_t v)
{
	if (lapic_x2)
		wrmsr(0x800 + (reg >> 4), v);
	else
		mmio_w32(lapic_base + reg, v);
}

void lapic_init(void)
{
	if (lapic_base)
		return;
	uint64_t b = rdmsr(0x1b);
	size_t len;
	const char *v = cmdline_get("x2apic", &len);
	uint32_t r[4];
	cpuid(1, 0, r);
	if (v && len == 2 && !strncmp(v, "on", 2) && !(b & (1u << 10))) {
		if (r[2] & (1u << 21)) {
			b |= (1u << 11) | (1u << 10); /* enabled + x2APIC mode */
			wrmsr(0x1b, b);
			b = rdmsr(0x1b);
		} else {
			kt_line("x2apic not-supported");
		}
	}
	lapic_x2 = (b & (1u << 10)) != 0;
	lapic_base = b & 0xffffff000ull;
	if (!lapic_base)
		lapic_base = 0xfee00000;
	map_range(lapic_base, 4096);
	lapic_w(0x80, 0);	      /* TPR: accept everything */
	lapic_w(0xf0, 0x100 | 0xff); /* SVR: enabled, spurious vector 0xff */
}

uint32_t lapic_id(void)
{
	lapic_init();
	uint32_t id = lapic_r(0x20);
	return lapic_x2 ? id : id >> 24;
}

void lapic_eoi(void) { lapic_w(0xb0, 0); }

/* Periodic local APIC timer. The count assumes KVM's 1 GHz APIC timer
 * (divide by 16 -> 62.5 MHz); elsewhere only the wake-up rate changes. */
void lapic_timer_periodic(uint8_t vec, uint32_t ms)
{
	lapic_init();
	lapic_w(0x3e0, 0x3);		       /* divide by 16 */
	lapic_w(0x320, vec | (1u << 17));      /* LVT timer: periodic, unmasked */
	lapic_w(0x380, ms * 62500u);	       /* initial count */
}

int lapic_send_ipi(uint32_t dest, uint32_t icr_lo)
{
	lapic_init();
	if (lapic_x2) {
		wrmsr(0x830, ((uint64_t)dest << 32) | icr_lo);
		return 0;
	}
	mmio_w32(lapic_base + 0x310, dest << 24);
	mmio_w32(lapic_base + 0x300, icr_lo);
	for (int i = 0; i < 100000; i++)
		if (!(mmio_r32(lapic_base + 0x300) & (1u << 12)))
			return 0;
	return -1;
}

/* ------------------------------------------------------ end actions --- */
enum { END_POWEROFF, END_RESET, END_HALT };
static int end_action = END_POWEROFF;

static void halt_forever(void) __attribute__((noreturn));
static void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void kbd_reset(void)
{
	for (int i = 0; i < 100000; i++)
		if (!(inb(0x64) & 0x02))
			break;
	outb(0x64, 0xfe);
}

/* delay that does not calibrate (and print) anything: 3 GHz TSC if unknown */
static void rough_mdelay(uint64_t ms)
{
	uint64_t k = tsc_khz ? tsc_khz : 3000000;
	uint64_t end = rdtsc() + ms * k;
	while ((int64_t)(rdtsc() - end) < 0)
		barrier();
}

static void triple_fault(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) d = {0, 0};
	__asm__ volatile("lidt %0; ud2" ::"m"(d));
}

void kt_finish(void)
{
	static int finishing;
	if (finishing++)
		halt_forever();
	cli();
	char detail[128] = "";
	if (end_action != END_HALT)
		acpi_init();
	if (end_action == END_POWEROFF) {
		if (!acpi.fadt)
			kt_snprintf(detail, sizeof(detail), " method=none");
		else if ((acpi.fadt_flags & (1u << 20)) && acpi.sleep_ctl.addr)
			kt_snprintf(detail, sizeof(detail), " method=sleep_control_reg addr=0x%lx slp_typ=%u%s",
				    acpi.sleep_ctl.addr, acpi.s5a, acpi.s5_found ? "" : " s5=default");
		else
			kt_snprintf(detail, sizeof(detail), " method=pm1_cnt pm1a=0x%lx pm1b=0x%lx slp_typ=%u,%u%s",
				    acpi.pm1a_cnt.addr, acpi.pm1b_cnt.addr, acpi.s5a, acpi.s5b,
				    acpi.s5_found ? "" : " s5=default");
		kt_line("end action=poweroff%s", detail);
	} else if (end_action == END_RESET) {
		if (acpi.fadt && (acpi.fadt_flags & (1u << 10)) && acpi.reset_reg.addr)
			kt_line("end action=reset method=reset_reg space=%u addr=0x%lx value=0x%x",
				acpi.reset_reg.space, acpi.reset_reg.addr, acpi.reset_value);
		else
			kt_line("end action=reset method=i8042");
	} else {
		kt_line("end action=halt");
	}
	kt_line("DONE pass=%u fail=%u skip=%u", kt_npass, kt_nfail, kt_nskip);

	if (end_action == END_POWEROFF && acpi.fadt) {
		if ((acpi.fadt_flags & (1u << 20)) && acpi.sleep_ctl.addr) {
			gas_write(&acpi.sleep_ctl, ((acpi.s5a & 7u) << 2) | (1u << 5));
		} else if (acpi.pm1a_cnt.addr) {
			/* switch to ACPI mode first if the firmware has an SMI handshake */
			if (acpi.smi_cmd && acpi.acpi_enable && !(gas_read(&acpi.pm1a_cnt) & 1)) {
				outb((uint16_t)acpi.smi_cmd, acpi.acpi_enable);
				for (int i = 0; i < 1000 && !(gas_read(&acpi.pm1a_cnt) & 1); i++)
					;
			}
			uint64_t v = gas_read(&acpi.pm1a_cnt) & ~(uint64_t)((7u << 10) | (1u << 13));
			uint64_t vb = acpi.pm1b_cnt.addr ? gas_read(&acpi.pm1b_cnt) & ~(uint64_t)((7u << 10) | (1u << 13)) : 0;
			gas_write(&acpi.pm1a_cnt, v | ((uint64_t)acpi.s5a << 10));
			if (acpi.pm1b_cnt.addr)
				gas_write(&acpi.pm1b_cnt, vb | ((uint64_t)acpi.s5b << 10));
			gas_write(&acpi.pm1a_cnt, v | ((uint64_t)acpi.s5a << 10) | (1u << 13));
			if (acpi.pm1b_cnt.addr)
				gas_write(&acpi.pm1b_cnt, vb | ((uint64_t)acpi.s5b << 10) | (1u << 13));
		}
		rough_mdelay(2000);
		kt_line("end-failed poweroff");
		halt_forever();
	}
	if (end_action == END_POWEROFF) {
		kt_line("end-failed poweroff no-fadt");
		halt_forever();
	}
	if (end_action == END_RESET) {
		if (acpi.fadt && (acpi.fadt_flags & (1u << 10)) && acpi.reset_reg.addr) {
			gas_write(&acpi.reset_reg, acpi.reset_value);
			rough_mdelay(1000);
		}
		kbd_reset();
		rough_mdelay(1000);
		kt_line("end-failed reset trying=triple-fault");
		triple_fault();
		halt_forever();
	}
	halt_forever();
}

/* ----------------------------------------------------------- runner --- */
enum {
	T_BOOTINFO = 1 << 0,
	T_ACPI = 1 << 1,
	T_INITRD = 1 << 2,
	T_RTC = 1 << 3,
	T_HIGHMEM = 1 << 4,
	T_UART_IRQ = 1 << 5,
	T_UART_RX = 1 << 6,
	T_INT3 = 1 << 7,
	T_SMP = 1 << 8,
	T_PAGEFAULT = 1 << 9,
	T_CRC32INSN = 1 << 10,
	T_PCI = 1 << 11,
	T_BLK = 1 << 12,
	T_BLK_RW = 1 << 13,
	T_BLK_READ = 1 << 14,
	T_BLK_FLUSH = 1 << 15,
	T_BLK_GETID = 1 << 16,
	T_BLK_DISCARD = 1 << 17,
	T_BLK_ZEROES = 1 << 18,
	T_BLK_INFLIGHT = 1 << 19,
	T_BLK_READONLY = 1 << 20,
	T_BLK_HOSTILE = 1 << 21,
	T_RNG = 1 << 22,
	T_VCON = 1 << 23,
	T_NET = 1 << 24,
	T_NET_PING = 1 << 25,
	T_NET_HOSTILE = 1 << 26,
	T_NET_USER = 1 << 27,
};
static const struct {
	const char *name;
	unsigned bit;
	void (*fn)(void);
} checks[] = {
	/* run order */
	{"bootinfo", T_BOOTINFO, check_bootinfo},
	{"acpi", T_ACPI, acpi_report},
	{"initrd", T_INITRD, check_initrd},
	{"rtc", T_RTC, check_rtc},
	{"highmem", T_HIGHMEM, check_highmem},
	{"uart_irq", T_UART_IRQ, check_uart_irq},
	{"uart_rx", T_UART_RX, check_uart_rx},
	{"int3", T_INT3, check_int3},
	{"pagefault", T_PAGEFAULT, check_pagefault},
	{"crc32insn", T_CRC32INSN, check_crc32insn},
	{"smp", T_SMP, check_smp},
	/* opt-in: PCI and virtio */
	{"pci", T_PCI, check_pci},
	{"blk", T_BLK, check_blk},
	{"blk_read", T_BLK_READ, check_blk_read},
	{"blk_rw", T_BLK_RW, check_blk_rw},
	{"blk_flush", T_BLK_FLUSH, check_blk_flush},
	{"blk_getid", T_BLK_GETID, check_blk_getid},
	{"blk_discard", T_BLK_DISCARD, check_blk_discard},
	{"blk_zeroes", T_BLK_ZEROES, check_blk_zeroes},
	{"blk_inflight", T_BLK_INFLIGHT, check_blk_inflight},
	{"blk_readonly", T_BLK_READONLY, check_blk_readonly},
	{"blk_hostile", T_BLK_HOSTILE, check_blk_hostile},
	{"rng", T_RNG, check_rng},
	{"vcon", T_VCON, check_vcon},
	{"net", T_NET, check_net},
	{"net_ping", T_NET_PING, check_net_ping},
	{"net_hostile", T_NET_HOSTILE, check_net_hostile},
	{"net_user", T_NET_USER, check_net_user},
};
#define T_ALL (T_BOOTINFO | T_ACPI | T_INITRD | T_RTC | T_HIGHMEM | T_UART_IRQ | T_SMP)
#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

static unsigned parse_tests(const char *v, size_t len)
{
	unsigned sel = 0;
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		const char *w = v + i;
		size_t wl = j - i;
		int neg = 0;
		if (wl && *w == '-') {
			neg = 1;
			w++;
			wl--;
		}
		unsigned bits = 0;
		if (wl == 3 && !strncmp(w, "all", 3))
			bits = T_ALL;
		else if (wl == 4 && !strncmp(w, "none", 4))
			bits = 0, sel = neg ? sel : 0;
		else if (wl) {
			for (size_t k = 0; k < NCHECKS; k++)
				if (strlen(checks[k].name) == wl && !strncmp(w, checks[k].name, wl))
					bits = checks[k].bit;
			if (!bits) {
				char name[48];
				kt_snprintf(name, sizeof(name), "%.*s", (int)(wl > 40 ? 40 : wl), w);
				kt_fail(name, "unknown-test");
			}
		}
		if (neg)
			sel &= ~bits;
		else
			sel |= bits;
		i = j + 1;
	}
	return sel;
}

void kmain(int proto, uint64_t ptr)
{
	boot_proto = proto;
	serial_init();
	serial_write("\r\n", 2); /* start our first line at column 0 */
	collect_boot_info(ptr);
	idt_init();
	kt_line("start kvmkit-testguest proto=%s", proto_name(proto));

	size_t len;
	const char *v = cmdline_get("end", &len);
	if (v) {
		if (len == 5 && !strncmp(v, "reset", 5))
			end_action = END_RESET;
		else if (len == 4 && !strncmp(v, "halt", 4))
			end_action = END_HALT;
		else if (len == 8 && !strncmp(v, "poweroff", 8))
			end_action = END_POWEROFF;
		else
			kt_fail("end", "unknown-end-action");
	}

	const char *bench = cmdline_get("bench", &len);
	size_t blen = len;
	unsigned sel = bench ? 0 : T_ALL;
	v = cmdline_get("tests", &len);
	if (v)
		sel = parse_tests(v, len);

	for (size_t k = 0; k < NCHECKS; k++)
		if (sel & checks[k].bit)
			checks[k].fn();
	if (bench)
		run_bench(bench, blen);
	if (control_wanted())
		control_loop();
	kt_finish();
}
