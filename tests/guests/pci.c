/* kvmkit test guest: PCI bus 0 enumeration (CF8/CFC or ECAM), BAR sizing and
 * assignment, capabilities, MSI-X, and a bump allocator for DMA memory. */
#include "kt.h"

struct pci_dev pci_devs[PCI_MAX];
int pci_ndev;
int pci_scanned;
int pci_use_ecam;     /* config accesses through ECAM instead of CF8/CFC */
uint64_t pci_ecam;    /* ECAM base for segment 0 (from MCFG), 0 if none */
static uint8_t ecam_bus0, ecam_bus1;
static int cf8_ok;

/* ------------------------------------------------------ config access --- */
static uint64_t ecam_addr(const struct pci_dev *d, unsigned off)
{
	return pci_ecam + ((uint64_t)(d->bus - ecam_bus0) << 20) + ((uint64_t)d->dev << 15) +
	       ((uint64_t)d->fn << 12) + (off & 0xfff);
}

static uint32_t cf8_addr(const struct pci_dev *d, unsigned off)
{
	return 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 | (uint32_t)d->fn << 8 | (off & 0xfc);
}

static uint32_t cfg_read_via(int ecam, const struct pci_dev *d, unsigned off, int width)
{
	if (ecam) {
		if (off >= 4096)
			return ~0u;
		uint64_t a = ecam_addr(d, off);
		if (width == 1)
			return mmio_r8(a);
		if (width == 2)
			return mmio_r16(a);
		return mmio_r32(a);
	}
	if (off >= 256)
		return ~0u;
	outl(0xcf8, cf8_addr(d, off));
	if (width == 1)
		return inb((uint16_t)(0xcfc + (off & 3)));
	if (width == 2)
		return inw((uint16_t)(0xcfc + (off & 2)));
	return inl(0xcfc);
}

uint32_t pci_read(const struct pci_dev *d, unsigned off, int width)
{
	return cfg_read_via(pci_use_ecam, d, off, width);
}

void pci_write(const struct pci_dev *d, unsigned off, int width, uint32_t v)
{
	if (pci_use_ecam) {
		if (off >= 4096)
			return;
		uint64_t a = ecam_addr(d, off);
		if (width == 1)
			mmio_w8(a, (uint8_t)v);
		else if (width == 2)
			mmio_w16(a, (uint16_t)v);
		else
			mmio_w32(a, v);
		return;
	}
	if (off >= 256)
		return;
	outl(0xcf8, cf8_addr(d, off));
	if (width == 1)
		outb((uint16_t)(0xcfc + (off & 3)), (uint8_t)v);
	else if (width == 2)
		outw((uint16_t)(0xcfc + (off & 2)), (uint16_t)v);
	else
		outl(0xcfc, v);
}

/* Capability list walk: offset of the first capability with this id at or
 * after 'from' (pass 0 to start), or 0.  Bounded against loops. */
unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned from)
{
	if (!(pci_read(d, 0x06, 2) & 0x10))
		return 0;
	unsigned p = from ? pci_read(d, from + 1, 1) : pci_read(d, 0x34, 1);
	for (int n = 0; n < 48 && p >= 0x40 && p < 0x100; n++) {
		p &= 0xfc;
		if (pci_read(d, p, 1) == id)
			return p;
		p = pci_read(d, p + 1, 1);
	}
	return 0;
}

/* ------------------------------------------------------------ helpers --- */
static uint64_t kt_parse_hex(const char *v, size_t len)
{
	uint64_t x = 0;
	size_t i = 0;
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
		i = 2;
	for (; i < len; i++) {
		char c = v[i];
		unsigned dgt;
		if (c >= '0' && c <= '9') dgt = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') dgt = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') dgt = (unsigned)(c - 'A' + 10);
		else break;
		x = x * 16 + dgt;
	}
	return x;
}

uint64_t cmdline_num(const char *key, uint64_t def)
{
	size_t len;
	const char *v = cmdline_get(key, &len);
	if (!v || !len)
		return def;
	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
		return kt_parse_hex(v, len);
	uint64_t x = 0;
	for (size_t i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	return x;
}

int cmdline_is(const char *key, const char *val)
{
	size_t len;
	const char *v = cmdline_get(key, &len);
	return v && len == strlen(val) && !strncmp(v, val, len);
}

/* Is 'word' in the comma list value of 'key'? */
int cmdline_has(const char *key, const char *word)
{
	size_t len, wl = strlen(word);
	const char *v = cmdline_get(key, &len);
	for (size_t i = 0; v && i < len;) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		if (j - i == wl && !strncmp(v + i, word, wl))
			return 1;
		i = j + 1;
	}
	return 0;
}

/* ---------------------------------------------------------- DMA heap --- */
/* Guest physical == virtual (identity mapped below 4 GiB).  The heap is a
 * RAM range past the image that avoids the initrd and the ACPI tables. */
static uint64_t heap_base, heap_cur, heap_end;

static int range_free(uint64_t a, uint64_t len)
{
	int in_ram = !memmap_n;
	for (int i = 0; i < memmap_n; i++)
		if (memmap[i].type == 1 && memmap[i].addr <= a && a + len <= memmap[i].addr + memmap[i].size)
			in_ram = 1;
	if (!in_ram)
		return 0;
	if (initrd_size && initrd_addr < a + len && initrd_addr + initrd_size > a)
		return 0;
	acpi_init();
	for (int i = 0; i < acpi.ntables; i++)
		if (acpi.table[i] < a + len && acpi.table[i] + 65536 > a)
			return 0;
	if (acpi.dsdt && acpi.dsdt < a + len && acpi.dsdt + 65536 > a)
		return 0;
	if (acpi.rsdp && acpi.rsdp < a + len && acpi.rsdp + 4096 > a)
		return 0;
	return 1;
}

void *dma_alloc(uint64_t size, uint64_t align)
{
	if (!heap_base) {
		uint64_t start = ((uint64_t)_end + 0x1fffff) & ~0x1fffffull;
		for (uint64_t want = 32ull << 20; want >= (1ull << 20) && !heap_base; want >>= 1) {
			if (!memmap_n && range_free(start, want))
				heap_base = start;
			for (int i = 0; i < memmap_n && !heap_base; i++) {
				uint64_t e = memmap[i].addr + memmap[i].size;
				uint64_t a = (memmap[i].addr + 0x1fffff) & ~0x1fffffull;
				if (memmap[i].type != 1)
					continue;
				if (a < start)
					a = start;
				if (e > (1ull << 32))
					e = 1ull << 32;
				for (int tries = 0; a + want <= e && tries < 64 && !heap_base; a += 0x200000, tries++)
					if (range_free(a, want))
						heap_base = a;
			}
			if (heap_base) {
				heap_cur = heap_base;
				heap_end = heap_base + want;
			}
		}
		if (!heap_base) {
			kt_line("dma heap none");
			return 0;
		}
		kt_line("dma heap 0x%lx-0x%lx", heap_base, heap_end);
	}
	if (!align)
		align = 16;
	uint64_t a = (heap_cur + align - 1) & ~(align - 1);
	if (a + size > heap_end || a + size < a)
		return 0;
	heap_cur = a + size;
	return (void *)a; /* not zeroed: memset is slow under emulation */
}

uint64_t dma_left(void) { return heap_end > heap_cur ? heap_end - heap_cur : 0; }

/* ---------------------------------------------------------- BAR setup --- */
static uint64_t mem_next, mem_limit;
static uint32_t io_next = 0xc000;

static void windows_init(void)
{
	if (mem_next)
		return;
	uint64_t top = 0;
	for (int i = 0; i < memmap_n; i++) {
		uint64_t e = memmap[i].addr + memmap[i].size;
		if (memmap[i].type == 1 && memmap[i].addr < (1ull << 32) && e > top)
			top = e > (1ull << 32) ? (1ull << 32) : e;
	}
	mem_next = (top + 0xfffffff) & ~0xfffffffull;
	if (mem_next < 0xc0000000ull)
		mem_next = 0xc0000000ull;
	if (pci_ecam && pci_ecam < 0xfec00000ull) {
		uint64_t ecam_end = pci_ecam + ((uint64_t)(ecam_bus1 - ecam_bus0 + 1) << 20);
		if (ecam_end > mem_next && pci_ecam <= mem_next)
			mem_next = (ecam_end + 0xfffffff) & ~0xfffffffull;
	}
	mem_limit = 0xfec00000ull;
	if (pci_ecam > mem_next && pci_ecam < mem_limit)
		mem_limit = pci_ecam;
	uint64_t forced = cmdline_num("pci_mem", 0);
	if (forced) {
		mem_next = forced;
		mem_limit = forced < 0xfec00000ull ? 0xfec00000ull : ~0ull;
	}
}

/* Sizes all BARs; assigns those that are zero (or all with pci_assign=all). */
static void bars_setup(struct pci_dev *d)
{
	unsigned nbar = d->hdr == 0 ? 6 : d->hdr == 1 ? 2 : 0;
	int force = cmdline_is("pci_assign", "all") && d->hdr == 0;
	uint16_t cmd = (uint16_t)pci_read(d, 0x04, 2);
	pci_write(d, 0x04, 2, cmd & ~3u); /* no decoding while sizing */
	for (unsigned i = 0; i < nbar; i++) {
		unsigned off = 0x10 + 4 * i;
		uint32_t lo = pci_read(d, off, 4);
		pci_write(d, off, 4, ~0u);
		uint32_t mlo = pci_read(d, off, 4);
		pci_write(d, off, 4, lo);
		if (!mlo)
			continue;
		if (lo & 1) { /* I/O */
			uint32_t m = mlo & ~3u;
			if (!m)
				continue;
			m |= 0xffff0000u;
			d->bar_size[i] = (uint32_t)(~m + 1);
			d->bar_flags[i] = BAR_IO;
			d->bar[i] = lo & ~3u;
			continue;
		}
		uint64_t mask = mlo & ~0xfull, addr = lo & ~0xfull;
		int is64 = ((lo >> 1) & 3) == 2;
		if (is64 && i + 1 < nbar) {
			uint32_t hi = pci_read(d, off + 4, 4);
			pci_write(d, off + 4, 4, ~0u);
			uint32_t mhi = pci_read(d, off + 4, 4);
			pci_write(d, off + 4, 4, hi);
			mask |= (uint64_t)mhi << 32;
			addr |= (uint64_t)hi << 32;
		} else {
			is64 = 0;
			mask |= 0xffffffff00000000ull;
		}
		if (!(mask & ~0xfull))
			continue;
		d->bar_size[i] = ~mask + 1;
		d->bar_flags[i] = (uint8_t)(BAR_MEM | (is64 ? BAR_64 : 0) | ((lo & 8) ? BAR_PREF : 0));
		d->bar[i] = addr;
		if (is64)
			i++; /* the upper half is not a BAR of its own */
	}
	for (unsigned i = 0; i < nbar; i++) {
		uint64_t sz = d->bar_size[i];
		if (!sz || (d->bar[i] && !force))
			continue;
		unsigned off = 0x10 + 4 * i;
		if (d->bar_flags[i] & BAR_IO) {
			uint32_t a = (io_next + (uint32_t)sz - 1) & ~((uint32_t)sz - 1);
			if (sz > 0x1000 || a + sz > 0x10000)
				continue;
			io_next = a + (uint32_t)sz;
			pci_write(d, off, 4, a);
			d->bar[i] = pci_read(d, off, 4) & ~3u;
		} else {
			windows_init();
			uint64_t a = (mem_next + sz - 1) & ~(sz - 1);
			if (a + sz > mem_limit || a + sz < a)
				continue;
			mem_next = a + sz;
			pci_write(d, off, 4, (uint32_t)a);
			if (d->bar_flags[i] & BAR_64)
				pci_write(d, off + 4, 4, (uint32_t)(a >> 32));
			uint64_t rb = pci_read(d, off, 4) & ~0xfull;
			if (d->bar_flags[i] & BAR_64)
				rb |= (uint64_t)pci_read(d, off + 4, 4) << 32;
			d->bar[i] = rb;
		}
		d->bar_assigned |= 1u << i;
	}
	/* decode what the function has */
	for (unsigned i = 0; i < nbar; i++)
		if (d->bar_size[i] && d->bar[i])
			cmd |= (d->bar_flags[i] & BAR_IO) ? 1 : 2;
	pci_write(d, 0x04, 2, cmd);
}

/* --------------------------------------------------------------- MCFG --- */
static void find_mcfg(void)
{
	acpi_init();
	for (int i = 0; i < acpi.ntables; i++) {
		uint64_t a = acpi.table[i];
		if (!a || map_range(a, 36) < 0 || memcmp((const void *)a, "MCFG", 4))
			continue;
		uint32_t len = mmio_r32(a + 4);
		if (len > 65536 || map_range(a, len) < 0)
			continue;
		for (uint32_t off = 44; off + 16 <= len; off += 16) {
			const uint8_t *e = (const uint8_t *)(a + off);
			uint64_t base;
			uint16_t seg;
			memcpy(&base, e, 8);
			memcpy(&seg, e + 8, 2);
			if (seg == 0 && e[10] == 0 && e[11] >= e[10]) {
				pci_ecam = base;
				ecam_bus0 = e[10];
				ecam_bus1 = e[11];
				map_range(base, (uint64_t)(e[11] - e[10] + 1) << 20);
				return;
			}
		}
	}
}

static int cf8_probe(void)
{
	uint32_t save = inl(0xcf8);
	outl(0xcf8, 0x80000000u);
	uint32_t v = inl(0xcf8);
	outl(0xcf8, save);
	return v == 0x80000000u;
}

/* Enumerates bus 0; returns the number of functions (0: no PCI). */
int pci_scan(void)
{
	if (pci_scanned)
		return pci_ndev;
	pci_scanned = 1;
	uint64_t forced = cmdline_num("pci_ecam", 0);
	if (forced) { /* no MCFG (e.g. QEMU microvm,pcie=on puts ECAM at 0xe0000000) */
		pci_ecam = forced;
		ecam_bus0 = 0;
		ecam_bus1 = 255;
		map_range(forced, 256ull << 20);
	} else {
		find_mcfg();
	}
	cf8_ok = cf8_probe();
	if (cmdline_is("pci_cfg", "ecam"))
		pci_use_ecam = pci_ecam != 0;
	else if (cmdline_is("pci_cfg", "io"))
		pci_use_ecam = 0;
	else
		pci_use_ecam = !cf8_ok && pci_ecam;
	if (!pci_use_ecam && !cf8_ok)
		return 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned fn = 0; fn < 8 && pci_ndev < PCI_MAX; fn++) {
			struct pci_dev t = {0};
			t.bus = 0;
			t.dev = (uint8_t)dev;
			t.fn = (uint8_t)fn;
			uint32_t id = pci_read(&t, 0, 4);
			if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
				if (fn == 0)
					break;
				continue;
			}
			t.vendor = (uint16_t)id;
			t.device = (uint16_t)(id >> 16);
			t.class_rev = pci_read(&t, 0x08, 4);
			uint8_t ht = (uint8_t)pci_read(&t, 0x0e, 1);
			t.hdr = ht & 0x7f;
			if (t.hdr == 0) {
				uint32_t s = pci_read(&t, 0x2c, 4);
				t.subsys_vendor = (uint16_t)s;
				t.subsys = (uint16_t)(s >> 16);
			}
			bars_setup(&t);
			pci_devs[pci_ndev++] = t;
			if (fn == 0 && !(ht & 0x80))
				break;
		}
	}
	return pci_ndev;
}

const char *pci_name(const struct pci_dev *d)
{
	static char buf[4][12];
	static int k;
	char *b = buf[k++ & 3];
	kt_snprintf(b, 12, "%02x:%02x.%u", d->bus, d->dev, d->fn);
	return b;
}

/* Maps a memory BAR region (bar + off, len) and returns its address, or 0. */
uint64_t pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t off, uint64_t len)
{
	if (bar >= 6 || !(d->bar_flags[bar] & BAR_MEM) || !d->bar[bar])
		return 0;
	if (off > d->bar_size[bar] || len > d->bar_size[bar] - off)
		return 0;
	uint64_t a = d->bar[bar] + off;
	if (map_range(a, len ? len : 1) < 0)
		return 0;
	return a;
}

/* -------------------------------------------------------------- MSI-X --- */
/* Programs MSI-X table entry 'entry' to deliver 'vector' to this CPU and
 * enables MSI-X.  Returns the table size, or negative. */
int pci_msix_setup(struct pci_dev *d, unsigned entry, uint8_t vector)
{
	unsigned cap = pci_find_cap(d, 0x11, 0);
	if (!cap)
		return -1;
	uint16_t ctl = (uint16_t)pci_read(d, cap + 2, 2);
	unsigned n = (ctl & 0x7ffu) + 1;
	uint32_t tbl = pci_read(d, cap + 4, 4);
	if (entry >= n)
		return -2;
	uint64_t t = pci_bar_map(d, tbl & 7, tbl & ~7u, (uint64_t)n * 16);
	if (!t)
		return -3;
	/* enable with the function masked, program, then unmask */
	pci_write(d, cap + 2, 2, ctl | 0xc000u);
	uint64_t e = t + entry * 16ull;
	uint32_t id = lapic_id();
	mmio_w32(e + 0, 0xfee00000u | ((id & 0xff) << 12));
	mmio_w32(e + 4, 0);
	mmio_w32(e + 8, vector);
	mmio_w32(e + 12, 0); /* unmasked */
	pci_write(d, cap + 2, 2, (ctl | 0x8000u) & ~0x4000u);
	uint16_t cmd = (uint16_t)pci_read(d, 0x04, 2);
	pci_write(d, 0x04, 2, cmd | 0x400u | 4u); /* INTx off, bus master */
	return (int)n;
}

void pci_msix_disable(struct pci_dev *d)
{
	unsigned cap = pci_find_cap(d, 0x11, 0);
	if (cap)
		pci_write(d, cap + 2, 2, pci_read(d, cap + 2, 2) & ~0xc000u);
}

/* ---------------------------------------------------------- pci check --- */
static const char *bar_kind(uint8_t f)
{
	if (f & BAR_IO)
		return "io";
	if (f & BAR_64)
		return (f & BAR_PREF) ? "mem64-pref" : "mem64";
	return (f & BAR_PREF) ? "mem32-pref" : "mem32";
}

void check_pci(void)
{
	pci_scan();
	kt_line("pci cf8=%d mcfg=0x%lx cfg=%s", cf8_ok, pci_ecam, pci_use_ecam ? "ecam" : "io");
	if (!pci_ndev) {
		kt_skip("pci", "no-pci");
		return;
	}
	int mismatch = 0, compared = 0, unassigned = 0;
	for (int k = 0; k < pci_ndev; k++) {
		struct pci_dev *d = &pci_devs[k];
		kt_line("pci %s vendor=0x%04x device=0x%04x class=0x%06x", pci_name(d), d->vendor, d->device,
			d->class_rev >> 8);
		for (unsigned i = 0; i < 6; i++) {
			if (!d->bar_size[i])
				continue;
			kt_line("pci %s bar%u %s addr=0x%lx size=0x%lx by=%s", pci_name(d), i, bar_kind(d->bar_flags[i]),
				d->bar[i], d->bar_size[i], (d->bar_assigned >> i) & 1 ? "guest" : "firmware");
			if (!d->bar[i])
				unassigned++;
		}
		/* the other config mechanism must show the same header */
		int other = !pci_use_ecam;
		if ((other && pci_ecam) || (!other && cf8_ok)) {
			compared++;
			for (unsigned off = 0; off < 0x40; off += 4) {
				if (off == 0x04) /* status bits may change */
					continue;
				uint32_t a = cfg_read_via(pci_use_ecam, d, off, 4);
				uint32_t b = cfg_read_via(other, d, off, 4);
				if (a != b) {
					kt_line("pci %s cfg-mismatch off=0x%02x %s=0x%08x %s=0x%08x", pci_name(d), off,
						pci_use_ecam ? "ecam" : "io", a, other ? "ecam" : "io", b);
					mismatch++;
					break;
				}
			}
		}
	}
	kt_line("pci functions=%d compared=%d mismatches=%d unassigned=%d", pci_ndev, compared, mismatch, unassigned);
	if (mismatch)
		kt_fail("pci", "cfg-mismatch=%d", mismatch);
	else if (unassigned)
		kt_fail("pci", "unassigned-bars=%d", unassigned);
	else
		kt_pass("pci");
}
