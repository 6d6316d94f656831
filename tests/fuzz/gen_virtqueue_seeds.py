#!/usr/bin/env python3
"""Writes the seed corpus of virtqueue_fuzz (tests/fuzz/corpus/virtqueue/).

Each seed is a small, mostly well-formed guest in the input layout described
at the top of virtqueue_fuzz.cpp, so the fuzzer starts from chains that pass
validation and mutates from there. Re-run after changing the layout:
    python3 tests/fuzz/gen_virtqueue_seeds.py
The found-* files next to them are small inputs libFuzzer discovered that add
coverage (picked from a scripts/run-fuzz.sh corpus); this script leaves them.
"""
import os
import struct

RAM = 0x10000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "virtqueue")

NEXT, WRITE, INDIRECT = 1, 2, 4


def seed(name, log2size, flags, chains, script=b"", event=None, avail_flags=0, extra_idx=0, indirect_tables=()):
    """chains: list of lists of (addr, len, flags, next) direct descriptors placed
    at consecutive indices; each list's first descriptor is offered."""
    size = 1 << log2size
    desc_off, avail_off = 0, 16 * size
    used_off = (avail_off + 6 + 2 * size + 3) & ~3
    data_off = (used_off + 6 + 8 * size + 15) & ~15
    top = max([data_off] + [at - RAM + 16 * len(t) for at, t in indirect_tables])
    ram = bytearray(top)
    heads = []
    i = 0
    for chain in chains:
        heads.append(i)
        for (addr, ln, fl, nxt) in chain:
            struct.pack_into("<QIHH", ram, desc_off + 16 * i, addr, ln, fl, nxt)
            i += 1
    for at, table in indirect_tables:
        for k, (addr, ln, fl, nxt) in enumerate(table):
            struct.pack_into("<QIHH", ram, at - RAM + 16 * k, addr, ln, fl, nxt)
    struct.pack_into("<HH", ram, avail_off, avail_flags, len(heads) + extra_idx)
    for k, h in enumerate(heads):
        struct.pack_into("<H", ram, avail_off + 4 + 2 * k, h)
    if event is not None:
        struct.pack_into("<H", ram, avail_off + 4 + 2 * size, event)
    hdr = struct.pack("<BBHHHHHB", log2size, flags, desc_off // 16, avail_off // 2, used_off // 4, 0, 0, len(script))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(hdr + script + bytes(ram))
    return data_off


def main():
    os.makedirs(OUT, exist_ok=True)
    d = RAM + 0x800  # data area, clear of the rings for sizes <= 16
    seed("simple", 3, 0, [[(d, 64, 0, 0)]])
    seed("rw_chain", 3, 0, [[(d, 16, NEXT, 1), (d + 16, 512, NEXT | WRITE, 2), (d + 528, 1, WRITE, 0)]])
    seed("two_chains_script", 2, 0, [[(d, 8, 0, 0)], [(d + 8, 8, WRITE, 0)]], script=bytes([1, 1, 2, 3, 2, 4, 0]))
    seed("event_idx", 4, 1, [[(d, 8, WRITE, 0)], [(d + 8, 8, WRITE, 0)], [(d + 16, 8, WRITE, 0)]],
         script=bytes([5, 1, 2, 3, 4, 0, 3, 7 | (17 << 3), 0, 3]), event=1)
    seed("no_interrupt", 3, 0, [[(d, 8, WRITE, 0)]], avail_flags=1, script=bytes([0, 3, 5, 4]))
    table = RAM + 0xc00
    seed("indirect", 3, 2, [[(table, 48, INDIRECT, 0)]],
         indirect_tables=[(table, [(d, 16, NEXT, 1), (d + 16, 32, NEXT | WRITE, 2), (d + 48, 1, WRITE, 0)])])
    seed("direct_then_indirect", 3, 3, [[(d, 16, NEXT, 1), (table, 32, INDIRECT, 0)]],
         indirect_tables=[(table, [(d + 16, 16, NEXT, 1), (d + 32, 8, WRITE, 0)])], event=0)
    seed("indirect_loop", 3, 2, [[(table, 32, INDIRECT, 0)]],
         indirect_tables=[(table, [(d, 16, NEXT, 1), (d + 16, 16, NEXT, 0)])])
    seed("indirect_next_oob", 3, 2, [[(table, 32, INDIRECT, 0)]],
         indirect_tables=[(table, [(d, 16, NEXT, 1), (d + 16, 16, NEXT, 2)])])
    seed("loop", 2, 0, [[(d, 8, NEXT, 1), (d, 8, NEXT, 0)]])
    seed("near_region", 3, 0, [[(0x20000, 0x1000, WRITE, 0)], [(0x100000 + 8, 8, 0, 0)]])
    seed("straddle", 3, 0, [[(0x1fff0, 0x20, 0, 0)]])
    seed("too_many_avail", 2, 0, [[(d, 8, 0, 0)]], extra_idx=7)
    seed("post_more", 2, 0, [[(d, 8, 0, 0)], [(d, 8, WRITE, 0)]], script=bytes([0, 6 | (2 << 3), 0, 2, 0, 2 | (19 << 3)]))
    seed("big_queue", 8, 3, [[(d + 0x4000, 64, 0, 0)]])


if __name__ == "__main__":
    main()
