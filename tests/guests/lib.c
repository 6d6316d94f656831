/* kvmkit test guest: string functions, COM1 output, printf, TSC timing. */
#include "kt.h"

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	if (dp < sp) {
		while (n--)
			*dp++ = *sp++;
	} else {
		while (n--)
			dp[n] = sp[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (uint8_t)*a - (uint8_t)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* ------------------------------------------------------------ serial --- */
#define COM1 0x3f8

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* IER: no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFO on, cleared */
	outb(COM1 + 4, 0x0b); /* DTR | RTS | OUT2 */
}

void serial_putc(char c)
{
	/* wait for THR empty; bounded so a missing UART cannot hang us */
	for (int i = 0; i < 100000; i++)
		if (inb(COM1 + 5) & 0x20)
			break;
	outb(COM1, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	while (n--)
		serial_putc(*s++);
}

/* ------------------------------------------------------------ printf --- */
struct out {
	char *buf;
	size_t size, pos;
};

static void out_c(struct out *o, char c)
{
	if (o->pos + 1 < o->size)
		o->buf[o->pos] = c;
	o->pos++;
}

static void out_num(struct out *o, uint64_t v, unsigned base, int width, int zero, int neg, int upper)
{
	char tmp[24];
	int n = 0;
	const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	do {
		tmp[n++] = dig[v % base];
		v /= base;
	} while (v);
	if (neg)
		width--;
	if (neg && zero)
		out_c(o, '-');
	for (int i = n; i < width; i++)
		out_c(o, zero ? '0' : ' ');
	if (neg && !zero)
		out_c(o, '-');
	while (n)
		out_c(o, tmp[--n]);
}

int kt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			out_c(&o, *fmt);
			continue;
		}
		fmt++;
		int zero = 0, width = 0, lng = 0, prec = -1;
		if (*fmt == '0') {
			zero = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				prec = va_arg(ap, int);
				fmt++;
			} else {
				prec = 0;
				while (*fmt >= '0' && *fmt <= '9')
					prec = prec * 10 + (*fmt++ - '0');
			}
		}
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			out_num(&o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, zero, v < 0, 0);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			out_num(&o, v, *fmt == 'u' ? 10 : 16, width, zero, 0, *fmt == 'X');
			break;
		}
		case 'c':
			out_c(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int n = 0;
			while (s[n] && (prec < 0 || n < prec))
				n++;
			for (int i = n; i < width; i++)
				out_c(&o, ' ');
			for (int i = 0; i < n; i++)
				out_c(&o, s[i]);
			break;
		}
		case '%':
			out_c(&o, '%');
			break;
		default:
			out_c(&o, '?');
			break;
		}
		if (!*fmt)
			break;
	}
	if (size)
		buf[o.pos < size ? o.pos : size - 1] = 0;
	return (int)o.pos;
}

int kt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static char linebuf[4200];

static void kt_vline(const char *prefix, const char *fmt, va_list ap)
{
	size_t n = (size_t)kt_snprintf(linebuf, sizeof(linebuf), "KT: %s", prefix);
	if (fmt) {
		kt_vsnprintf(linebuf + n, sizeof(linebuf) - n, fmt, ap);
		n = strlen(linebuf);
	}
	/* never let a value break the line structure */
	for (size_t i = 4; i < n; i++)
		if ((uint8_t)linebuf[i] < 0x20 || (uint8_t)linebuf[i] >= 0x7f)
			linebuf[i] = '?';
	serial_write(linebuf, n);
	serial_write("\r\n", 2);
}

void kt_line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kt_vline("", fmt, ap);
	va_end(ap);
}

unsigned kt_npass, kt_nfail, kt_nskip;

void kt_pass(const char *name)
{
	kt_npass++;
	kt_line("PASS %s", name);
}

void kt_fail(const char *name, const char *fmt, ...)
{
	char pfx[64];
	va_list ap;
	kt_nfail++;
	kt_snprintf(pfx, sizeof(pfx), "FAIL %s ", name);
	va_start(ap, fmt);
	kt_vline(pfx, fmt, ap);
	va_end(ap);
}

void kt_skip(const char *name, const char *fmt, ...)
{
	char pfx[64];
	va_list ap;
	kt_nskip++;
	kt_snprintf(pfx, sizeof(pfx), "SKIP %s ", name);
	va_start(ap, fmt);
	kt_vline(pfx, fmt, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- time --- */
uint64_t tsc_khz;

static uint64_t pit_calibrate(void)
{
	/* PIT channel 2, mode 0, gate on, speaker off; OUT2 is port 0x61 bit 5 */
	const uint32_t latch = 59659; /* 50 ms at 1.193182 MHz */
	uint8_t p61 = inb(0x61);
	if (p61 == 0xff)
		return 0; /* nothing at port 0x61 */
	outb(0x61, (p61 & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, latch & 0xff);
	outb(0x42, latch >> 8);
	uint64_t t0 = rdtsc(), t1 = t0;
	if (inb(0x61) & 0x20)
		return 0; /* OUT2 must be low right after the count is written */
	for (uint32_t i = 0; i < 2000000; i++) {
		t1 = rdtsc();
		if (inb(0x61) & 0x20)
			break;
		if (t1 - t0 > 40000000000ull) /* > 10 s even at 4 GHz: no PIT */
			return 0;
	}
	if (!(inb(0x61) & 0x20))
		return 0;
	return (t1 - t0) / 50; /* cycles per ms = kHz */
}

/* KVM's pvclock: the hypervisor tells the TSC -> ns scale factor */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} __attribute__((packed));
static volatile struct pvclock kvmclock __attribute__((aligned(64)));

static uint64_t kvmclock_khz(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31)))
		return 0;
	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d) /* "KVMKVMKVM\0\0\0" */
		return 0;
	cpuid(0x40000001, 0, r);
	uint32_t msr;
	if (r[0] & (1u << 3))
		msr = 0x4b564d01; /* MSR_KVM_SYSTEM_TIME_NEW */
	else if (r[0] & 1)
		msr = 0x12; /* MSR_KVM_SYSTEM_TIME */
	else
		return 0;
	kvmclock.tsc_to_system_mul = 0;
	wrmsr(msr, (uint64_t)&kvmclock | 1);
	uint32_t mul = 0;
	int8_t shift = 0;
	for (int i = 0; i < 1000; i++) {
		uint32_t v = kvmclock.version;
		barrier();
		mul = kvmclock.tsc_to_system_mul;
		shift = kvmclock.tsc_shift;
		barrier();
		if (!(v & 1) && v == kvmclock.version && mul)
			break;
	}
	wrmsr(msr, 0);
	if (!mul)
		return 0;
	/* ns = ((tsc << shift) * mul) >> 32  =>  cycles per ms = 1e6 * 2^32 / mul >> shift */
	uint64_t khz = (1000000ull << 32) / mul;
	if (shift >= 0)
		khz >>= shift;
	else
		khz <<= -shift;
	return khz;
}

void time_init(void)
{
	uint32_t r[4];
	const char *src = "guess";
	if (tsc_khz)
		return;
	cpuid(1, 0, r);
	if (r[2] & (1u << 31)) { /* hypervisor present: leaf 0x40000010 = TSC kHz */
		cpuid(0x40000000, 0, r);
		if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
			cpuid(0x40000010, 0, r);
			if (r[0]) {
				tsc_khz = r[0];
				src = "cpuid";
			}
		}
	}
	/* clock=pit|kvmclock forces one source (for testing the VMM's devices) */
	size_t len;
	const char *force = cmdline_get("clock", &len);
	int want_pit = !force || (len == 3 && !strncmp(force, "pit", 3));
	int want_kvm = !force || (len == 8 && !strncmp(force, "kvmclock", 8));
	if (force)
		tsc_khz = 0;
	if (!tsc_khz && want_kvm && (tsc_khz = kvmclock_khz()))
		src = "kvmclock";
	if (!tsc_khz && want_pit && (tsc_khz = pit_calibrate()))
		src = "pit";
	if (tsc_khz && (tsc_khz < 100000 || tsc_khz > 20000000)) {
		kt_line("tsc khz=%lu src=%s implausible", tsc_khz, src);
		tsc_khz = 0;
	}
	if (!tsc_khz) {
		cpuid(0, 0, r);
		if (r[0] >= 0x16) {
			cpuid(0x16, 0, r);
			if (r[0] >= 100) {
				tsc_khz = r[0] * 1000ull;
				src = "cpuid16";
			}
		}
	}
	if (!tsc_khz)
		tsc_khz = 3000000;
	kt_line("tsc khz=%lu src=%s", tsc_khz, src);
}

uint64_t tsc_deadline_ms(uint64_t ms)
{
	time_init();
	return rdtsc() + ms * tsc_khz;
}

int tsc_expired(uint64_t deadline) { return (int64_t)(rdtsc() - deadline) >= 0; }

void udelay(uint64_t us)
{
	time_init();
	uint64_t end = rdtsc() + us * tsc_khz / 1000;
	while ((int64_t)(rdtsc() - end) < 0)
		barrier();
}

void mdelay(uint64_t ms) { udelay(ms * 1000); }
