#!/usr/bin/env bash
# Makes (once, cached) the Debian 12 armhf test gateway: a raw ext4 disk image with systemd as
# PID 1, Debian's armmp-lpae kernel and a small initrd. Usage: build-image.sh CACHE_DIR
# Stage 1 (debootstrap --foreign) runs here; stage 2 must run armhf code, so it runs inside the VM
# itself (init=/guest-stage2), with no binfmt handler on this machine. Nothing needs root mounts:
# the image is written by mke2fs -d. Output: CACHE_DIR/image-KEY/{disk.img,vmlinuz,initrd.img},
# and that directory's path on stdout (progress goes to stderr). KEY hashes what goes into the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:?usage: build-image.sh CACHE_DIR}
mirror=${GA_BOOT_MIRROR:-http://deb.debian.org/debian}
pkgs=systemd,systemd-sysv,udev,kmod,dbus,busybox-static,linux-image-armmp-lpae,iproute2
# The agent's run-time libraries, so that dpkg -i of its .deb needs no network in the guest.
pkgs+=,libmbedtls14,libmbedcrypto7,libmbedx509-1,libcjson1,libstdc++6
key=$( { echo "$mirror $pkgs"; cat "$here/guest-stage2" "$here/initrd-init"; } |
       sha256sum | cut -c1-12)
out=$cache/image-$key
log() { echo "build-image: $(date -u +%T) $*" >&2; }
if [[ -f $out/.complete ]]; then
  log "cached $out"
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
work=$out.tmp
rm -rf "$work" "$out"
mkdir -p "$work"
root=$work/rootfs

log "debootstrap stage 1 (bookworm armhf, $mirror)"
debootstrap --foreign --arch=armhf --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" \
  >"$work/stage1.log" 2>&1 || { tail -20 "$work/stage1.log" >&2; exit 1; }
# debootstrap leaves /proc as a link to the host's /proc when it cannot mount it: a directory.
if [[ -L $root/proc ]]; then rm "$root/proc" && mkdir "$root/proc"; fi

log "kernel and initrd from Debian's armhf packages"
kx=$work/kernel
mkdir -p "$kx"
dpkg-deb -x "$(ls "$root"/var/cache/apt/archives/linux-image-[0-9]*-armmp-lpae_*_armhf.deb)" "$kx"
dpkg-deb -x "$(ls "$root"/var/cache/apt/archives/busybox-static_*_armhf.deb)" "$work/busybox"
cp "$kx"/boot/vmlinuz-* "$work/vmlinuz"
ird=$work/initrd
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,modules}
cp "$work/busybox/bin/busybox" "$ird/bin/busybox"
cp "$here/initrd-init" "$ird/init"
for m in crc16 crc32c_generic mbcache jbd2 ext4 virtio_mmio virtio_blk; do
  cp "$(find "$kx/lib/modules" -name "$m.ko" | head -1)" "$ird/modules/"
done
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.img"
rm -rf "$kx" "$work/busybox" "$ird"

log "disk image (mke2fs -d) and stage 2 inside the VM"
cp "$here/guest-stage2" "$root/guest-stage2"
mke2fs -q -F -t ext4 -L garoot -d "$root" "$work/disk.img" 3G >&2
rm -rf "$root"
# panic=1 with -no-reboot: should stage 2 end without powering off, qemu exits at once.
timeout 5400 qemu-system-arm -M virt -cpu cortex-a15 -smp 1 -m 512 -nographic -no-reboot \
  -monitor none -serial "file:$work/stage2-console.log" \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "console=ttyAMA0 rw init=/guest-stage2 panic=1" \
  -drive "if=none,file=$work/disk.img,format=raw,id=hd0" -device virtio-blk-device,drive=hd0 \
  -netdev user,id=n0,restrict=on -device virtio-net-device,netdev=n0 </dev/null >/dev/null
if ! grep -q "STAGE2 OK" "$work/stage2-console.log"; then
  tail -30 "$work/stage2-console.log" >&2
  echo "build-image: stage 2 failed (console: $work/stage2-console.log)" >&2
  exit 1
fi
e2fsck -fy "$work/disk.img" >/dev/null 2>&1 || true
touch "$work/.complete"
mv "$work" "$out"
log "done: $out"
echo "$out"
