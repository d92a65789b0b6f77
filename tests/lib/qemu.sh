# Sourced by the test scripts that boot QEMU machines. `qemu_accel_init [KERNEL]`, called before
# the first machine starts, sets `qemu_accel` (an array of QEMU arguments) and `qemu_accel_kind`
# (kvm or tcg).
#
# KVM only where it proves itself: /dev/kvm opens, the CPU has vmx or svm, and a probe guest (the
# test's kernel and 300 processes, qemu_probe_initrd) runs at least three times as fast under KVM
# as under TCG. Then `-accel kvm -accel tcg` (QEMU takes the first that starts);
# else `-accel tcg`. The developers' machines have a /dev/kvm but no vmx or svm, and a KVM guest
# there hangs early in its kernel; a nested KVM can also start and then run slower than TCG, which
# a look at /dev/kvm and the CPU flags cannot tell (docs/architecture.md#checks). The probe's
# result is kept for the machine's boot (/tmp/flatlab-qemu-accel.<boot id>).
# FLATLAB_QEMU_ACCEL=tcg (or kvm) overrides the choice.

# qemu_probe_initrd DIR: writes DIR/initrd, the probe guest's busybox initramfs, whose /init starts
# 300 processes and then powers off. Processes, not only a kernel: a nested KVM without EPT boots a
# kernel quickly and then crawls through fork and exec, which is what the tests' guests (systemd,
# Ignition, shell scripts) do most.
qemu_probe_initrd() {
  mkdir -p "$1/root/bin" "$1/root/dev" "$1/root/proc"
  cp "$(command -v busybox)" "$1/root/bin/busybox"
  cat >"$1/root/init" <<'INIT'
#!/bin/busybox sh
i=0
while [ $i -lt 300 ]; do /bin/busybox true; i=$((i + 1)); done
echo flatlab-probe-done
/bin/busybox poweroff -f
INIT
  chmod 755 "$1/root/init"
  (cd "$1/root" && find . | cpio -o -H newc -R 0:0 --quiet) >"$1/initrd"
}

# qemu_probe_boot ACCEL KERNEL INITRD TIMEOUT_S: the milliseconds the probe guest took, or nothing
# (it did not finish in time, or QEMU did not start).
qemu_probe_boot() {
  local serial t0 t1
  serial=$(mktemp /tmp/flatlab-qemu-probe.XXXXXX)
  t0=$(date +%s%N)
  timeout "$4" qemu-system-x86_64 -accel "$1" -m 256 -smp 1 -display none -nodefaults -no-reboot \
    -serial "file:$serial" -kernel "$2" -initrd "$3" -append "console=ttyS0 panic=-1 loglevel=4" \
    >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  if grep -aq 'flatlab-probe-done' "$serial"; then echo $(((t1 - t0) / 1000000)); fi
  rm -f "$serial"
}

# qemu_accel_probe [KERNEL]: kvm or tcg, as above; says why on stderr.
qemu_accel_probe() {
  local kernel=${1:-} cache probe t_tcg t_kvm="" kind
  if ! [[ -r /dev/kvm && -w /dev/kvm ]] || ! grep -qw -E 'vmx|svm' /proc/cpuinfo || ! command -v busybox >/dev/null; then
    echo tcg
    return
  fi
  cache=/tmp/flatlab-qemu-accel.$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
  if [[ -s $cache ]]; then
    cat "$cache"
    return
  fi
  if [[ -z $kernel ]]; then
    for kernel in "${root:-.}/target/netboot-cache/vmlinuz" "${FLATLAB_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flatlab-tests}"/debian-node/*/live.vmlinuz ""; do
      [[ -f $kernel ]] && break
    done
  fi
  if [[ ! -f $kernel ]]; then
    echo "qemu: KVM is offered here but there is no kernel to probe it with yet: TCG" >&2
    echo tcg
    return
  fi
  probe=$(mktemp -d /tmp/flatlab-qemu-probe.XXXXXX)
  qemu_probe_initrd "$probe"
  t_tcg=$(qemu_probe_boot tcg "$kernel" "$probe/initrd" 120)
  [[ -z $t_tcg ]] || t_kvm=$(qemu_probe_boot kvm "$kernel" "$probe/initrd" $((t_tcg / 3000 + 1)))
  rm -rf "$probe"
  if [[ -z $t_tcg ]]; then
    echo "qemu: the probe guest did not finish under TCG either: TCG" >&2
    echo tcg
    return
  fi
  kind=tcg
  [[ -n $t_kvm ]] && ((t_kvm * 3 <= t_tcg)) && kind=kvm
  echo "qemu: probe guest (kernel and 300 processes): TCG ${t_tcg} ms, KVM ${t_kvm:-not within a third of that}${t_kvm:+ ms}: $kind" >&2
  echo "$kind" >"$cache"
  echo "$kind"
}

qemu_accel_init() {
  [[ -n ${qemu_accel_kind:-} ]] && return 0
  case "${FLATLAB_QEMU_ACCEL:-}" in
    tcg | kvm) qemu_accel_kind=$FLATLAB_QEMU_ACCEL ;;
    *) qemu_accel_kind=$(qemu_accel_probe "${1:-}") ;;
  esac
  if [[ $qemu_accel_kind == kvm ]]; then
    qemu_accel=(-accel kvm -accel tcg)
  else
    qemu_accel=(-accel tcg)
  fi
}
