/* kvmkit test guest: ACPI table discovery, validation, MADT/FADT/_S5_ parsing. */
#include "kt.h"

struct acpi_info acpi;
static char acpi_err[96];

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum8(const uint8_t *p, uint64_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static int rsdp_valid(uint64_t a)
{
	const uint8_t *p = (const uint8_t *)a;
	if (map_range(a, 36) < 0 || memcmp(p, "RSD PTR ", 8) || sum8(p, 20))
		return 0;
	if (p[15] >= 2) {
		uint32_t len = rd32(p + 20);
		if (len < 36 || len > 4096 || map_range(a, len) < 0 || sum8(p, len))
			return 0;
	}
	return 1;
}

static uint64_t scan_rsdp(uint64_t start, uint64_t len)
{
	for (uint64_t a = start & ~15ull; a + 20 <= start + len; a += 16)
		if (*(const uint64_t *)a == 0x2052545020445352ull /* "RSD PTR " */ && rsdp_valid(a))
			return a;
	return 0;
}

/* Maps a table and checks its header checksum; returns its length or 0. */
static uint32_t table_check(uint64_t a, int *ok)
{
	*ok = 0;
	if (!a || map_range(a, 36) < 0)
		return 0;
	const uint8_t *p = (const uint8_t *)a;
	uint32_t len = rd32(p + 4);
	if (len < 36 || len > (64u << 20) || map_range(a, len) < 0)
		return 0;
	*ok = sum8(p, len) == 0;
	return len;
}

static void note_bad(const char *sig, const char *what)
{
	acpi.bad++;
	if (!acpi_err[0])
		kt_snprintf(acpi_err, sizeof(acpi_err), "%.4s-%s", sig, what);
}

static void parse_madt(const uint8_t *t, uint32_t len)
{
	acpi.lapic_addr = rd32(t + 36);
	for (uint32_t off = 44; off + 2 <= len;) {
		const uint8_t *e = t + off;
		uint8_t type = e[0], elen = e[1];
		if (elen < 2 || off + elen > len)
			break;
		if (type == 0 && elen >= 8 && acpi.ncpu < MAX_CPUS) {
			acpi.cpu_apic[acpi.ncpu] = e[3];
			acpi.cpu_enabled[acpi.ncpu++] = rd32(e + 4) & 1;
		} else if (type == 9 && elen >= 16 && acpi.ncpu < MAX_CPUS) {
			acpi.cpu_apic[acpi.ncpu] = rd32(e + 4);
			acpi.cpu_enabled[acpi.ncpu++] = rd32(e + 8) & 1;
		} else if (type == 1 && elen >= 12 && acpi.nioapic < MAX_IOAPIC) {
			acpi.ioapic[acpi.nioapic].id = e[2];
			acpi.ioapic[acpi.nioapic].addr = rd32(e + 4);
			acpi.ioapic[acpi.nioapic++].gsi_base = rd32(e + 8);
		} else if (type == 2 && elen >= 10 && acpi.niso < MAX_ISO) {
			acpi.iso[acpi.niso].src = e[3];
			acpi.iso[acpi.niso].gsi = rd32(e + 4);
			acpi.iso[acpi.niso++].flags = rd16(e + 8);
		}
		off += elen;
	}
}

static void gas_from(struct gas *g, const uint8_t *p)
{
	g->space = p[0];
	g->bit_width = p[1];
	g->bit_offset = p[2];
	g->access_size = p[3];
	g->addr = rd64(p + 4);
}

static void parse_fadt(const uint8_t *t, uint32_t len)
{
	acpi.fadt_len = len;
	acpi.smi_cmd = len >= 52 ? rd32(t + 48) : 0;
	acpi.acpi_enable = len >= 53 ? t[52] : 0;
	uint8_t pm1_cnt_len = len >= 90 ? t[89] : 2;
	if (!pm1_cnt_len)
		pm1_cnt_len = 2;
	if (len >= 72) {
		acpi.pm1a_cnt = (struct gas){1, (uint8_t)(pm1_cnt_len * 8), 0, 0, rd32(t + 64)};
		acpi.pm1b_cnt = (struct gas){1, (uint8_t)(pm1_cnt_len * 8), 0, 0, rd32(t + 68)};
	}
	acpi.sci_int = len >= 48 ? (uint16_t)(t[46] | t[47] << 8) : 0;
	acpi.pm1_evt_len = len >= 89 ? t[88] : 0;
	if (len >= 60)
		acpi.pm1a_evt = (struct gas){1, 16, 0, 0, rd32(t + 56)};
	acpi.century = len >= 109 ? t[108] : 0;
	acpi.fadt_flags = len >= 116 ? rd32(t + 112) : 0;
	if (len >= 129) {
		gas_from(&acpi.reset_reg, t + 116);
		acpi.reset_value = t[128];
	}
	uint64_t dsdt = len >= 44 ? rd32(t + 40) : 0;
	if (len >= 148 && rd64(t + 140))
		dsdt = rd64(t + 140);
	acpi.dsdt = dsdt;
	struct gas g;
	if (len >= 160) {
		gas_from(&g, t + 148);
		if (g.addr)
			acpi.pm1a_evt = (struct gas){g.space, 16, 0, 0, g.addr};
	}
	if (len >= 184) {
		gas_from(&g, t + 172);
		if (g.addr)
			acpi.pm1a_cnt = g;
	}
	if (len >= 196) {
		gas_from(&g, t + 184);
		if (g.addr)
			acpi.pm1b_cnt = g;
	}
	if (len >= 256)
		gas_from(&acpi.sleep_ctl, t + 244);
}

/* AML integer at p (ZeroOp, OneOp, OnesOp, Byte/Word/DWordPrefix); -1 if none */
static int64_t aml_int(const uint8_t *p, const uint8_t *end, int *used)
{
	if (p >= end)
		return -1;
	switch (*p) {
	case 0x00: *used = 1; return 0;
	case 0x01: *used = 1; return 1;
	case 0xff: *used = 1; return 0xff;
	case 0x0a: if (p + 2 > end) return -1; *used = 2; return p[1];
	case 0x0b: if (p + 3 > end) return -1; *used = 3; return rd16(p + 1);
	case 0x0c: if (p + 5 > end) return -1; *used = 5; return rd32(p + 1);
	}
	return -1;
}

/* Finds "Name(_S5_, Package(){a, b, ...})" in an AML table. */
static int find_s5(const uint8_t *t, uint32_t len)
{
	const uint8_t *end = t + len;
	for (const uint8_t *p = t + 36; p + 4 < end; p++) {
		if (memcmp(p, "_S5_", 4))
			continue;
		if (!((p[-1] == 0x08) || (p[-1] == 0x5c && p[-2] == 0x08)))
			continue; /* not a NameOp */
		const uint8_t *q = p + 4;
		if (q >= end || *q != 0x12) /* PackageOp */
			continue;
		q++;
		if (q >= end)
			continue;
		q += 1 + (*q >> 6); /* PkgLength */
		q++;		    /* NumElements */
		int u1 = 0, u2 = 0;
		int64_t a = aml_int(q, end, &u1);
		if (a < 0)
			continue;
		int64_t b = aml_int(q + u1, end, &u2);
		acpi.s5a = (uint8_t)a;
		acpi.s5b = (uint8_t)(b < 0 ? a : b);
		acpi.s5_found = 1;
		return 1;
	}
	return 0;
}

void acpi_init(void)
{
	if (acpi.done)
		return;
	acpi.done = 1;
	if (rsdp_hint && rsdp_valid(rsdp_hint)) {
		acpi.rsdp = rsdp_hint;
		acpi.rsdp_src = boot_proto == PROTO_PVH ? "start_info" : "boot_params";
	}
	if (!acpi.rsdp) {
		uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
		if (ebda >= 0x80000 && ebda < 0xa0000)
			acpi.rsdp = scan_rsdp(ebda, 1024);
		if (!acpi.rsdp)
			acpi.rsdp = scan_rsdp(0xe0000, 0x20000);
		acpi.rsdp_src = "scan";
	}
	if (!acpi.rsdp) {
		kt_snprintf(acpi_err, sizeof(acpi_err), "no-rsdp");
		return;
	}
	acpi.found = 1;
	const uint8_t *r = (const uint8_t *)acpi.rsdp;
	acpi.rev = r[15];
	if (acpi.rev >= 2 && rd64(r + 24)) {
		acpi.root = rd64(r + 24);
		acpi.xsdt = 1;
	} else {
		acpi.root = rd32(r + 16);
	}
	int ok;
	uint32_t rlen = table_check(acpi.root, &ok);
	if (!rlen) {
		note_bad(acpi.xsdt ? "XSDT" : "RSDT", "unmapped");
		return;
	}
	if (!ok)
		note_bad(acpi.xsdt ? "XSDT" : "RSDT", "checksum");
	const uint8_t *root = (const uint8_t *)acpi.root;
	unsigned esz = acpi.xsdt ? 8 : 4;
	for (uint32_t off = 36; off + esz <= rlen && acpi.ntables < MAX_TABLES; off += esz) {
		uint64_t a = acpi.xsdt ? rd64(root + off) : rd32(root + off);
		acpi.table[acpi.ntables++] = a;
		uint32_t len = table_check(a, &ok);
		if (!len)
			continue;
		const uint8_t *t = (const uint8_t *)a;
		if (!memcmp(t, "FACP", 4)) {
			acpi.fadt = a;
			parse_fadt(t, len);
		} else if (!memcmp(t, "APIC", 4)) {
			acpi.madt = a;
			parse_madt(t, len);
		}
	}
	if (acpi.dsdt) {
		uint32_t len = table_check(acpi.dsdt, &ok);
		if (len && !find_s5((const uint8_t *)acpi.dsdt, len)) {
			for (int i = 0; i < acpi.ntables; i++) {
				uint32_t l2 = table_check(acpi.table[i], &ok);
				if (l2 && !memcmp((const uint8_t *)acpi.table[i], "SSDT", 4) &&
				    find_s5((const uint8_t *)acpi.table[i], l2))
					break;
			}
		}
	}
}

/* the "acpi" check: prints every table and validates all checksums */
void acpi_report(void)
{
	int ok;
	acpi_init();
	if (!acpi.found) {
		kt_fail("acpi", "%s", acpi_err[0] ? acpi_err : "no-rsdp");
		return;
	}
	const uint8_t *r = (const uint8_t *)acpi.rsdp;
	char oem[7];
	memcpy(oem, r + 9, 6);
	oem[6] = 0;
	for (int i = 5; i >= 0 && (oem[i] == ' ' || !oem[i]); i--)
		oem[i] = 0;
	for (int i = 0; oem[i]; i++)
		if (oem[i] == ' ')
			oem[i] = '_';
	kt_line("acpi rsdp addr=0x%lx rev=%d oem=%s src=%s", acpi.rsdp, acpi.rev, oem[0] ? oem : "-",
		acpi.rsdp_src);
	uint32_t rlen = table_check(acpi.root, &ok);
	kt_line("acpi table %s addr=0x%lx len=%u %s", acpi.xsdt ? "XSDT" : "RSDT", acpi.root, rlen,
		!rlen ? "unmapped" : ok ? "ok" : "bad-checksum");
	for (int i = 0; i < acpi.ntables; i++) {
		uint64_t a = acpi.table[i];
		uint32_t len = table_check(a, &ok);
		if (!len) {
			kt_line("acpi table ???? addr=0x%lx len=0 unmapped", a);
			note_bad("????", "unmapped");
			continue;
		}
		const char *sig = (const char *)a;
		kt_line("acpi table %.4s addr=0x%lx len=%u %s", sig, a, len, ok ? "ok" : "bad-checksum");
		if (!ok)
			note_bad(sig, "checksum");
	}
	if (acpi.dsdt) {
		uint32_t len = table_check(acpi.dsdt, &ok);
		kt_line("acpi table DSDT addr=0x%lx len=%u %s", acpi.dsdt, len,
			!len ? "unmapped" : ok ? "ok" : "bad-checksum");
		if (!len || !ok)
			note_bad("DSDT", len ? "checksum" : "unmapped");
		else if (memcmp((const char *)acpi.dsdt, "DSDT", 4))
			note_bad("DSDT", "signature");
	}
	int ncpu = 0;
	for (int i = 0; i < acpi.ncpu; i++)
		ncpu += acpi.cpu_enabled[i];
	if (acpi.madt)
		kt_line("acpi madt lapic=0x%x entries=%d ioapics=%d overrides=%d", acpi.lapic_addr, acpi.ncpu,
			acpi.nioapic, acpi.niso);
	if (acpi.fadt)
		kt_line("acpi fadt len=%u flags=0x%x pm1a_cnt=0x%lx reset_reg=0x%lx/%u s5=%s%u", acpi.fadt_len,
			acpi.fadt_flags, acpi.pm1a_cnt.addr, acpi.reset_reg.addr, acpi.reset_reg.space,
			acpi.s5_found ? "" : "missing:", acpi.s5a);
	kt_line("acpi cpus=%d", ncpu);
	if (acpi.bad)
		kt_fail("acpi", "%s", acpi_err);
	else if (!acpi.fadt)
		kt_fail("acpi", "no-fadt");
	else if (!acpi.madt)
		kt_fail("acpi", "no-madt");
	else if (!acpi.dsdt)
		kt_fail("acpi", "no-dsdt");
	else
		kt_pass("acpi");
}

/* ------------------------------------------- generic address structure --- */
static unsigned gas_bits(const struct gas *g)
{
	if (g->bit_width == 8 || g->bit_width == 16 || g->bit_width == 32 || g->bit_width == 64)
		return g->bit_width;
	if (g->access_size >= 1 && g->access_size <= 4)
		return 8u << (g->access_size - 1);
	return 8;
}

static uint32_t pci_cfg_addr(uint64_t a)
{
	uint32_t dev = (a >> 32) & 0x1f, fn = (a >> 16) & 7, off = a & 0xfc;
	return 0x80000000u | (dev << 11) | (fn << 8) | off;
}

int gas_write(const struct gas *g, uint64_t v)
{
	unsigned bits = gas_bits(g);
	switch (g->space) {
	case 0:
		if (map_range(g->addr, 8) < 0)
			return -1;
		if (bits == 8) mmio_w8(g->addr, (uint8_t)v);
		else if (bits == 16) mmio_w16(g->addr, (uint16_t)v);
		else if (bits == 32) mmio_w32(g->addr, (uint32_t)v);
		else *(volatile uint64_t *)g->addr = v;
		return 0;
	case 1:
		if (bits == 8) outb((uint16_t)g->addr, (uint8_t)v);
		else if (bits == 16) outw((uint16_t)g->addr, (uint16_t)v);
		else outl((uint16_t)g->addr, (uint32_t)v);
		return 0;
	case 2: {
		uint16_t port = 0xcfc + (g->addr & 3);
		outl(0xcf8, pci_cfg_addr(g->addr));
		if (bits == 8) outb(port, (uint8_t)v);
		else if (bits == 16) outw(port, (uint16_t)v);
		else outl(0xcfc, (uint32_t)v);
		return 0;
	}
	}
	return -1;
}

uint64_t gas_read(const struct gas *g)
{
	unsigned bits = gas_bits(g);
	switch (g->space) {
	case 0:
		if (map_range(g->addr, 8) < 0)
			return 0;
		if (bits == 8) return mmio_r8(g->addr);
		if (bits == 16) return *(volatile uint16_t *)g->addr;
		if (bits == 32) return mmio_r32(g->addr);
		return *(volatile uint64_t *)g->addr;
	case 1:
		if (bits == 8) return inb((uint16_t)g->addr);
		if (bits == 16) return inw((uint16_t)g->addr);
		return inl((uint16_t)g->addr);
	case 2: {
		uint16_t port = 0xcfc + (g->addr & 3);
		outl(0xcf8, pci_cfg_addr(g->addr));
		if (bits == 8) return inb(port);
		if (bits == 16) return inw(port);
		return inl(0xcfc);
	}
	}
	return 0;
}
