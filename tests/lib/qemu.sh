# Sourced by the test scripts that boot QEMU machines. `qemu_accel` is an array of QEMU arguments:
# KVM where this machine can run KVM guests, with TCG behind it (QEMU takes the first accelerator
# that starts), else TCG alone. These machines have a /dev/kvm but no vmx or svm in their CPU
# flags, and a KVM guest there hangs early in its kernel (docs/architecture.md#checks): /dev/kvm alone is not
# enough. FLATLAB_QEMU_ACCEL=tcg (or kvm) overrides the choice.
qemu_accel_name() {
  case "${FLATLAB_QEMU_ACCEL:-}" in
    tcg | kvm) echo "$FLATLAB_QEMU_ACCEL"; return ;;
  esac
  if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qw -E 'vmx|svm' /proc/cpuinfo; then echo kvm; else echo tcg; fi
}
qemu_accel_kind=$(qemu_accel_name)
if [[ $qemu_accel_kind == kvm ]]; then
  qemu_accel=(-accel kvm -accel tcg)
else
  qemu_accel=(-accel tcg)
fi
