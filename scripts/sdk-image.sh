#!/usr/bin/env bash
# A root filesystem with a real AWS SDK (Debian bookworm's python3-boto3), made by
# debootstrap from Debian's mirror and kept as target/sdk-image/bookworm-boto3.tar; the e2e
# test task_roles_sdk `docker import`s it (nothing is pulled from a container registry).
# A second run finds the tarball and does nothing. Needs root and `debootstrap`
# (scripts/test.sh installs it).
#   env MIRROR   Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/sdk-image"
TARBALL="$OUT/bookworm-boto3.tar"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

if [ -s "$TARBALL" ]; then
    echo "cached: $TARBALL"
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root" >&2; exit 1; }

mkdir -p "$OUT"
ROOTFS="$(mktemp -d "$OUT/rootfs.XXXXXX")"
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3-boto3 bookworm "$ROOTFS" "$MIRROR"
# The downloaded .debs and apt lists are not needed at run time.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.tmp" .
mv "$TARBALL.tmp" "$TARBALL"
echo "made $TARBALL ($(du -h "$TARBALL" | cut -f1))"
