#!/usr/bin/env bash
# Install the Debian packages gridvm needs, only those missing. Idempotent.
set -euo pipefail

packages=(
  python3 python3-venv
  qemu-system-x86 qemu-utils
  busybox-static e2fsprogs cpio
  util-linux iproute2 nftables procps
  binutils
  mmdebstrap uidmap
  postgresql
  # Image inspection: qemu-storage-daemon's FUSE export, partition tables, rpm databases;
  # the tests also build vfat disks, rpm databases and SSH keys.
  fuse3 fdisk rpm dosfstools openssh-client openssl
  # Portal browser tests and screenshots: Debian's Chromium driven by Playwright (no browser
  # download), with a font for readable text.
  chromium fonts-dejavu-core
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# apt-get download (used by the starter image build) needs package lists.
lists_empty=false
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
  lists_empty=true
fi

if [ ${#missing[@]} -eq 0 ] && [ "$lists_empty" = false ]; then
  echo "system packages: all present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "error: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi

echo "system packages: updating package lists"
"${as_root[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "system packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
