/* lspci for the default guest (busybox-static has none): one line per PCI
 * function from sysfs, in the spirit of pciutils' `lspci -nk`:
 *
 *   00:01.0 0100: 1af4:1042 (rev 01) driver=virtio-pci
 *
 * (class, vendor:device, revision, and the kernel driver bound to it, or
 * "driver=none").  Used by the tests to check the IDs the VMM presents and
 * that the guest's drivers bind. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYS_PCI "/sys/bus/pci/devices"

static unsigned long read_hex(const char *dev, const char *attr)
{
	char path[PATH_MAX], buf[64];
	FILE *f;
	unsigned long v = 0;

	snprintf(path, sizeof(path), SYS_PCI "/%s/%s", dev, attr);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		v = strtoul(buf, NULL, 16);
	fclose(f);
	return v;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int main(void)
{
	struct dirent **list;
	int n = scandir(SYS_PCI, &list, visible, by_name);

	if (n < 0) {
		perror("lspci: " SYS_PCI);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *dev = list[i]->d_name;
		char link[PATH_MAX], target[PATH_MAX];
		const char *driver = "none";
		ssize_t len;

		snprintf(link, sizeof(link), SYS_PCI "/%s/driver", dev);
		len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			driver = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
		}
		/* "0000:00:01.0" -> "00:01.0" for domain 0, as lspci prints it */
		const char *shown = strncmp(dev, "0000:", 5) == 0 ? dev + 5 : dev;
		printf("%s %04lx: %04lx:%04lx (rev %02lx) driver=%s\n", shown, read_hex(dev, "class") >> 8,
		       read_hex(dev, "vendor"), read_hex(dev, "device"), read_hex(dev, "revision"), driver);
		free(list[i]);
	}
	free(list);
	return 0;
}
