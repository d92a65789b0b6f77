#!/usr/bin/env python3
"""Installs GRUB i386-pc into a GPT disk image without grub-install (no loop device, no mount):
boot.img -> MBR bytes 0..439 (keeps the protective MBR's partition table), pointing at the
BIOS boot partition's first sector; core.img -> that partition, with its diskboot blocklist
pointing at the sectors that follow. usage: mbr.py DISK BOOT_IMG CORE_IMG BIOS_PART_START_LBA"""
import struct, sys
disk, boot_img, core_img, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
boot = bytearray(open(boot_img, "rb").read()); core = bytearray(open(core_img, "rb").read())
assert len(boot) == 512
struct.pack_into("<Q", boot, 0x5c, start)           # GRUB_BOOT_MACHINE_KERNEL_SECTOR
# struct grub_pc_bios_boot_blocklist { u64 start; u16 len; u16 segment; } at the end of sector 0
off = 512 - 12
_, length, seg = struct.unpack_from("<QHH", core, off)
assert (len(core) + 511) // 512 - 1 == length, (len(core), length)
struct.pack_into("<Q", core, off, start + 1)
with open(disk, "r+b") as f:
    f.seek(0); f.write(boot[:440])
    f.seek(start * 512); f.write(core)
print(f"grub i386-pc: boot.img -> MBR, core.img ({len(core)} bytes, {length + 1} sectors) -> LBA {start}")
