#!/usr/bin/env bash
# Install the Debian packages the local stack's real node and its image builds need, when
# any is missing: buildah and mmdebstrap (the images and their base), containerd and runc
# (the container runtime), containernetworking-plugins (the pods' bridge), iptables
# (kube-proxy's Services). A machine that has them all is left untouched, so `make test`
# costs nothing here after the first run.
#
#   scripts/install-node-packages.sh        # as root, or with sudo available
set -euo pipefail

PACKAGES=(buildah mmdebstrap containerd runc containernetworking-plugins iptables)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done
if (( ${#missing[@]} == 0 )); then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "error: the real node needs the Debian packages ${missing[*]}, and apt-get is not" \
        "available to install them" >&2
    exit 1
fi
SUDO=()
if (( EUID != 0 )); then
    if ! command -v sudo >/dev/null; then
        echo "error: installing ${missing[*]} needs root (run as root or install sudo)" >&2
        exit 1
    fi
    SUDO=(sudo)
fi
echo "installing Debian packages: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# --no-install-recommends: buildah recommends a container registry configuration, slirp
# and fuse tools the stack never uses.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
# The Debian package enables and starts containerd's own system service where systemd
# runs. The stack never uses it (each node runs its own containerd with its own socket).
