#!/usr/bin/env bash
# Builds Flatlab's Debian stand-ins for Flatcar, from Debian packages only:
#   live.vmlinuz + live.cpio.gz  the PXE live system (flatcar_production_pxe*): a Debian root in the
#                                initramfs whose /init runs the real Ignition 2.14 (fetch + files)
#                                and then systemd; flatcar-install is the stand-in next to this file
#   disk.bin.bz2                 the install image (flatcar_production_image.bin.bz2): GPT with an
#                                ESP (FAT via mtools), a BIOS boot partition, OEM and ROOT; GRUB for
#                                SeaBIOS and OVMF; its initramfs runs Ignition on the first boot
# Both are cached outside the checkout (CI runs in a fresh clone), keyed by a hash of this folder
# and of the Debian packages they are made of:
#   tests/netboot/debian/build.sh        prints the cache folder holding the three files
# FLATLAB_TEST_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/flatlab-tests) moves the cache. Needs
# root (mmdebstrap --mode=root, chroot) and Debian's mirror. Logs go to <cache>/<key>/build.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${FLATLAB_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flatlab-tests}/debian-node
mkdir -p "$base"

kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
pkg=$(kernel_pkg)
[[ -n $pkg ]] || { apt-get update -qq; pkg=$(kernel_pkg); }
[[ -n $pkg ]] || { echo "debian-node: cannot find Debian's cloud kernel package" >&2; exit 1; }
# The inputs: these scripts and the versions of the packages the roots are made of.
versions=$(apt-cache policy "$pkg" ignition systemd busybox-static grub-efi-amd64-bin grub-pc-bin 2>/dev/null | awk '/^[^ ]/ { p = $1 } /Candidate:/ { print p, $2 }')
key=$( { (cd "$here" && find . -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum); echo "$versions"; } | sha256sum | cut -c1-16)
out=$base/$key
if [[ -f $out/done ]]; then
  echo "$out"
  exit 0
fi
# Older builds go: a cache that only grows fills the disk.
find "$base" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
rm -rf "$out"
mkdir -p "$out"
log=$out/build.log
# fd 3: the caller's stderr (progress), fd 4: its stdout (only the cache folder, at the end);
# everything the tools print goes to the log.
exec 3>&2 4>&1 2>>"$log" 1>&2
say() { echo "debian-node: $*" >&3; echo "debian-node: $*" >&2; }
trap 'rc=$?; [[ $rc -eq 0 ]] || { say "FAILED (rc $rc); last lines of $log:"; tail -n 30 "$log" >&3; }' EXIT
t_start=$(date +%s)
work=$out/work
mkdir -p "$work"

# --- Debian's cloud kernel (extracted, not installed) ---------------------------------------------
say "kernel: $pkg"
kver=${pkg#linux-image-}
(cd "$work" && chmod 1777 . && apt-get download "$pkg" >&2 && dpkg-deb -x "$pkg"_*.deb kernel-pkg)
kmods=$work/kernel-modules
mkdir -p "$kmods/lib/modules"
cp -a "$work/kernel-pkg/lib/modules/$kver" "$kmods/lib/modules/"
depmod -b "$kmods" "$kver"
cp "$work/kernel-pkg/boot/vmlinuz-$kver" "$out/live.vmlinuz"
src=$kmods/lib/modules/$kver

# The modules `mods` need (with their dependencies), copied into the root `dest`.
copy_modules() {
  local dest=$1; shift
  local m f rel
  mkdir -p "$dest/usr/lib/modules/$kver"
  cp "$src"/modules.builtin* "$src"/modules.order "$dest/usr/lib/modules/$kver/"
  for m in "$@"; do
    for f in $(modprobe -d "$kmods" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'); do
      rel=${f#"$kmods"}
      mkdir -p "$dest/usr$(dirname "$rel")"
      cp "$f" "$dest/usr$rel"
    done
  done
}

debootstrap_root() {
  local root=$1 packages=$2 name=$3
  mmdebstrap --variant=minbase --mode=root --format=directory \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' --dpkgopt='path-exclude=/usr/share/bash-completion/*' \
    --dpkgopt='path-exclude=/usr/share/zsh/*' --dpkgopt='path-exclude=/lib/udev/hwdb.d/*' \
    --include="$packages" bookworm "$root" http://deb.debian.org/debian >&2
  # Trim: nothing at run time needs apt, perl (Ignition adds users with useradd) or these.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
    "$root"/etc/udev/hwdb.bin "$root"/usr/lib/udev/hwdb.bin "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/common-licenses "$root"/usr/share/i18n "$root"/usr/bin/ignition-validate \
    "$root"/usr/lib/x86_64-linux-gnu/gconv
  chroot "$root" dpkg --purge apt >/dev/null 2>&1 || true
  rm -rf "$root"/var/cache/apt "$root"/var/lib/apt "$root"/etc/apt
  rm -rf "$root"/usr/bin/perl* "$root"/usr/lib/x86_64-linux-gnu/perl-base "$root"/usr/share/perl5
  # Ignition: the program of the package's dracut module, on PATH.
  install -m 755 "$root/usr/lib/dracut/modules.d/30ignition/ignition" "$root/usr/bin/ignition"
  rm -rf "$root/usr/lib/dracut"
  # Debian's Ignition relabels for SELinux when /etc/selinux/config exists, running setfiles for
  # every file it wrote: without SELinux here, a stub that takes the list and succeeds.
  mkdir -p "$root/etc/selinux" "$root/usr/lib/ignition"
  printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' >"$root/etc/selinux/config"
  printf '#!/bin/sh\n# Stub for Ignition (no SELinux here): accept the relabel list.\ncat >/dev/null\n' >"$root/usr/sbin/setfiles"
  chmod 755 "$root/usr/sbin/setfiles"
  # Flatcar's default DHCP network; networkd, its socket and wait-online, as on Flatcar.
  install -D -m 644 "$here/live/zz-default.network" "$root/usr/lib/systemd/network/zz-default.network"
  mkdir -p "$root/etc/systemd/system/"{multi-user.target.wants,network-online.target.wants,sockets.target.wants,sysinit.target.wants}
  ln -sf /lib/systemd/system/systemd-networkd.service "$root/etc/systemd/system/multi-user.target.wants/"
  ln -sf /lib/systemd/system/systemd-networkd.socket "$root/etc/systemd/system/sockets.target.wants/"
  ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$root/etc/systemd/system/network-online.target.wants/"
  # Units that only cost boot time here (systemd-firstboot could also prompt on a console).
  for u in systemd-firstboot.service getty-static.service e2scrub_reap.service e2scrub_all.timer \
           dpkg-db-backup.timer fstrim.timer apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  # A first boot for systemd: "uninitialized" makes PID 1 run preset-all, which enables the
  # units Ignition's preset file names (Flatcar's image has no machine-id: the same effect).
  printf 'uninitialized\n' >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
  sed -i 's/^root:[^:]*:/root::/' "$root/etc/shadow"  # test images: root logs in on the console
  echo "$name" >"$root/etc/hostname"
}

# --- the live system ------------------------------------------------------------------------------
say "live system: mmdebstrap (about a minute)"
t0=$(date +%s)
live=$work/live-root
debootstrap_root "$live" systemd,systemd-sysv,udev,kmod,iproute2,bash,curl,ca-certificates,gpg,gpg-agent,bzip2,busybox,ignition,util-linux flatcar-live
rm -rf "$live/usr/share/zoneinfo"
rm -rf "$live/usr/lib/modules"
copy_modules "$live" virtio_pci virtio_net virtio_blk virtio_scsi sd_mod virtio_rng
depmod -b "$live" "$kver"
install -m 755 "$here/live/init" "$live/init"
install -D -m 755 "$here/live/udhcpc.script" "$live/usr/share/flatlab/udhcpc.script"
install -D -m 755 "$here/flatcar-install" "$live/usr/bin/flatcar-install"
(cd "$live" && find . -xdev -print0 | cpio --null -o -H newc --quiet | gzip -6) >"$out/live.cpio.gz"
say "live system: $(du -h "$out/live.cpio.gz" | cut -f1) in $(( $(date +%s) - t0 )) s"

# --- the install image ----------------------------------------------------------------------------
say "install image: mmdebstrap (about a minute)"
t0=$(date +%s)
root=$work/disk-root
debootstrap_root "$root" systemd,systemd-sysv,systemd-resolved,systemd-timesyncd,udev,kmod,iproute2,bash,curl,ca-certificates,fdisk,ignition,util-linux localhost
ln -sf /lib/systemd/system/systemd-resolved.service "$root/etc/systemd/system/sysinit.target.wants/"
# What real udev made of the rendered config, on the serial console for nodes.sh: the .link file
# it applied to each NIC (ID_NET_LINK_FILE; Flatlab's arms Wake-on-LAN). Test image only.
install -D -m 644 "$here/disk/flatlab-standin-facts.service" "$root/etc/systemd/system/flatlab-standin-facts.service"
ln -sf ../flatlab-standin-facts.service "$root/etc/systemd/system/multi-user.target.wants/flatlab-standin-facts.service"
# The kernel with virtio, filesystems and the networking K3s needs.
dst=$root/usr/lib/modules/$kver
rm -rf "$root/usr/lib/modules"
mkdir -p "$dst/kernel/drivers/net" "$dst/kernel/fs" "$root/boot"
cp "$src"/modules.builtin* "$src"/modules.order "$dst/"
cp -a "$src"/kernel/{net,lib,crypto,arch} "$dst/kernel/"
cp -a "$src"/kernel/fs/{overlayfs,fat,nls,fuse,squashfs,isofs} "$dst/kernel/fs/"
cp -a "$src"/kernel/drivers/{virtio,block,scsi,char,md} "$dst/kernel/drivers/"
cp -a "$src"/kernel/drivers/net/{virtio_net.ko,net_failover.ko,vxlan,veth.ko,dummy.ko,tun.ko} "$dst/kernel/drivers/net/"
depmod -b "$root" "$kver"
cp "$out/live.vmlinuz" "$root/boot/vmlinuz"
cat >"$root/etc/fstab" <<'FSTAB'
LABEL=ROOT  /     ext4  defaults           0 1
LABEL=OEM   /oem  ext4  defaults,nofail    0 2
FSTAB
mkdir -p "$root/oem" "$root/boot/flatcar" "$root/boot/grub"
: >"$root/boot/flatcar/first_boot"
install -m 644 "$here/disk/grub.cfg" "$root/boot/grub/grub.cfg"

# Its initramfs: busybox-static, the block and NIC modules, /init.
ird=$work/disk-initrd
mkdir -p "$ird"/{bin,sbin,proc,sys,dev,tmp,etc,sysroot}
(cd "$work" && apt-get download busybox-static >&2 && dpkg-deb -x busybox-static_*.deb busybox-pkg)
cp "$work/busybox-pkg/bin/busybox" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
copy_modules "$ird" virtio_pci virtio_blk virtio_scsi sd_mod virtio_net
mkdir -p "$ird/lib"; mv "$ird/usr/lib/modules" "$ird/lib/modules"; rm -rf "$ird/usr"
depmod -b "$ird" "$kver"
install -m 755 "$here/disk/init" "$ird/init"
install -m 755 "$here/live/udhcpc.script" "$ird/udhcpc.script"
(cd "$ird" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -9) >"$root/boot/initrd.img"

# Partitions, as Flatcar numbers and labels them where it matters. This kernel has no vfat, so
# the ESP is made with mkfs.vfat and filled with mtools; nothing is mounted.
used_mb=$(du -sm --apparent-size "$root" | cut -f1)
root_mb=$(( used_mb * 115 / 100 + 64 ))
mkfs.ext4 -q -L ROOT -O ^metadata_csum_seed -E lazy_itable_init=1,lazy_journal_init=1 -d "$root" "$work/part-root.img" "${root_mb}M"
mkdir -p "$work/oem-empty"
mkfs.ext4 -q -L OEM -d "$work/oem-empty" "$work/part-oem.img" 16M
truncate -s 32M "$work/part-esp.img"
mkfs.vfat -F 16 -n EFI-SYSTEM "$work/part-esp.img" >&2
mods="part_gpt part_msdos ext2 fat search search_label normal linux test echo serial terminal configfile gzio ls cat sleep"
# shellcheck disable=SC2086
grub-mkimage -O x86_64-efi -p /boot/grub -c "$here/disk/early.cfg" -o "$work/BOOTX64.EFI" $mods efi_gop all_video
# shellcheck disable=SC2086
grub-mkimage -O i386-pc -p /boot/grub -c "$here/disk/early.cfg" -o "$work/core.img" $mods biosdisk
mmd -i "$work/part-esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/part-esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
disk=$work/disk.img
truncate -s "$(( 1 + 32 + 1 + 16 + root_mb + 1 ))M" "$disk"
# (sgdisk -q wrote no table here: no -q.)
sgdisk -a 2048 \
  -n 1:2048:+32M -t 1:ef00 -c 1:EFI-SYSTEM \
  -n 2:0:+1M     -t 2:ef02 -c 2:BIOS-BOOT \
  -n 6:0:+16M    -t 6:8300 -c 6:OEM \
  -n 9:0:+"${root_mb}"M -t 9:8304 -c 9:ROOT "$disk" >&2
first_sector() { sgdisk -i "$1" "$disk" | awk '/First sector/ { print $3 }'; }
dd if="$work/part-esp.img"  of="$disk" bs=512 seek="$(first_sector 1)" conv=notrunc,sparse status=none
dd if="$work/part-oem.img"  of="$disk" bs=512 seek="$(first_sector 6)" conv=notrunc,sparse status=none
dd if="$work/part-root.img" of="$disk" bs=512 seek="$(first_sector 9)" conv=notrunc,sparse status=none
python3 "$here/disk/mbr.py" "$disk" /usr/lib/grub/i386-pc/boot.img "$work/core.img" "$(first_sector 2)" >&2
bzip2 -9 -c "$disk" >"$out/disk.bin.bz2"
say "install image: $(du -h "$out/disk.bin.bz2" | cut -f1) bz2 in $(( $(date +%s) - t0 )) s"

rm -rf "$work"
echo "$kver" >"$out/kernel-version"
touch "$out/done"
say "built in $(( $(date +%s) - t_start )) s, cached in $out"
echo "$out" >&4
