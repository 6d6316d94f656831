/* constants shared by the assembly files (keep in sync with kt.h) */
#define PROTO_BZ64 1
#define PROTO_BZ32 2
#define PROTO_BZ16 3
#define PROTO_PVH 4
#define SETUP_MAGIC 0x4b545331	/* "1STK": set in EDI by setup.S */
#define PD_POOL 8		/* page directories for mappings above 4 GiB */
