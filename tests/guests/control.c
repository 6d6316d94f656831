/* kvmkit test guest: idle mode for the VMM control API tests.
 *
 * tick=<ms>   prints "KT: tick <n>" every <ms> milliseconds, timed by the TSC
 *             (calibrated as everywhere in the guest; works under emulation),
 *             so the host can tell a paused VM (no ticks) from a running one.
 * pwrbtn=1    arms the ACPI fixed power button: PWRBTN_EN in PM1a_EN and the
 *             SCI (FADT SCI_INT, through the MADT override and the IOAPIC,
 *             level-triggered). The SCI handler reads PM1a_STS, clears the
 *             bits it saw (write one to clear) and records a press; the main
 *             loop then prints "KT: pwrbtn pressed ..." and ends with the end
 *             action (default poweroff, through PM1a_CNT).
 *
 * Between events the CPU halts (sti; hlt); a periodic local APIC timer wakes
 * it so ticks come on time without spinning a host CPU.
 */
#include "kt.h"

#define SCI_VEC 0x49
#define TIMER_VEC 0x4a
#define PM1_PWRBTN (1u << 8)

static volatile unsigned sci_count, pwrbtn_presses;
static volatile uint16_t pwrbtn_sts;
static struct gas pm1_en;

int control_wanted(void)
{
	size_t len;
	return cmdline_get("tick", &len) || cmdline_get("pwrbtn", &len);
}

static void sci_isr(struct isr_frame *f)
{
	(void)f;
	sci_count++;
	uint16_t sts = (uint16_t)gas_read(&acpi.pm1a_evt);
	if (sts & PM1_PWRBTN) {
		pwrbtn_sts = sts;
		pwrbtn_presses++;
	}
	/* clear what we saw so the level-triggered SCI drops before the EOI */
	gas_write(&acpi.pm1a_evt, sts);
	lapic_eoi();
}

static void timer_isr(struct isr_frame *f)
{
	(void)f;
	lapic_eoi();
}

static int arm_power_button(void)
{
	acpi_init();
	if (!acpi.fadt || !acpi.pm1a_evt.addr || acpi.pm1_evt_len < 4) {
		kt_fail("pwrbtn", "no-pm1-event-block");
		return -1;
	}
	if (acpi.fadt_flags & (1u << 4)) {
		kt_fail("pwrbtn", "no-fixed-power-button"); /* FADT PWR_BUTTON: control-method button */
		return -1;
	}
	pm1_en = acpi.pm1a_evt;
	pm1_en.addr += acpi.pm1_evt_len / 2;
	gas_write(&acpi.pm1a_evt, gas_read(&acpi.pm1a_evt)); /* clear stale status */
	set_irq_handler(SCI_VEC, sci_isr);
	uint64_t base;
	uint32_t pin;
	uint32_t lo = ioapic_route_isa((uint8_t)acpi.sci_int, SCI_VEC, 1, &base, &pin);
	gas_write(&pm1_en, gas_read(&pm1_en) | PM1_PWRBTN);
	kt_line("pwrbtn armed sci=%u ioapic=0x%lx pin=%u trigger=%s pm1a_evt=0x%lx en=0x%x", acpi.sci_int, base, pin,
		(lo >> 15) & 1 ? "level" : "edge", acpi.pm1a_evt.addr, (unsigned)gas_read(&pm1_en));
	return 0;
}

void control_loop(void)
{
	uint64_t period = cmdline_num("tick", 0);
	int pwrbtn = cmdline_num("pwrbtn", 0) != 0;
	cli();
	lapic_init();
	if (pwrbtn && arm_power_button() < 0)
		kt_finish();
	if (!pwrbtn)
		pic_disable();
	set_irq_handler(TIMER_VEC, timer_isr);
	lapic_timer_periodic(TIMER_VEC, 10);
	uint64_t next = period ? tsc_deadline_ms(period) : 0;
	uint64_t n = 0;
	kt_line("idle tick_ms=%lu pwrbtn=%d", period, pwrbtn);
	for (;;) {
		if (pwrbtn_presses) {
			kt_line("pwrbtn pressed sts=0x%x scis=%u", pwrbtn_sts, sci_count);
			kt_pass("pwrbtn");
			kt_finish();
		}
		if (period && tsc_expired(next)) {
			kt_line("tick %lu", ++n);
			/* from now, not from the old deadline: after a pause, no burst of late ticks */
			next = tsc_deadline_ms(period);
		}
		__asm__ volatile("sti; hlt; cli" ::: "memory"); /* sti's shadow: no wake-up is lost */
	}
}
