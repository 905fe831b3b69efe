#!/usr/bin/env bash
# The one test command (README): installs the tools the end-to-end tests drive
# (skopeo, busybox-static, curl, etcd-server, debootstrap from Debian; a bookworm root filesystem
# with python3-boto3 made once by scripts/sdk-image.sh; the aws CLI and moto_server into target/venv; the official
# ECS agent unpacked from ../shared/tools when present),
# checks that Docker Engine answers, then runs fmt, clippy, the build and every test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

step "checking Docker Engine"
command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed"
if ! docker_err="$(docker info 2>&1 >/dev/null)"; then
    die "Docker Engine is not reachable: ${docker_err}"
fi

step "installing Debian tools when missing (skopeo, busybox-static, curl, etcd-server, openssl, debootstrap, iptables, nftables, wrk)"
missing=()
for pkg in skopeo busybox-static curl etcd-server openssl debootstrap iptables nftables wrk; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || die "busybox-static did not install /bin/busybox"

step "a root filesystem with a real AWS SDK (python3-boto3) for task_roles_sdk, made once"
"$ROOT/scripts/sdk-image.sh"

step "the official Amazon ECS agent (../shared/tools), when this machine has it"
AGENT_GZ="$(ls "$ROOT"/../shared/tools/amazon-ecs-agent-*.gz 2>/dev/null | head -n 1 || true)"
if [ -n "$AGENT_GZ" ]; then
    mkdir -p "$ROOT/target"
    gunzip -c "$AGENT_GZ" > "$ROOT/target/amazon-ecs-agent.tmp"
    chmod +x "$ROOT/target/amazon-ecs-agent.tmp"
    mv "$ROOT/target/amazon-ecs-agent.tmp" "$ROOT/target/amazon-ecs-agent"
    echo "unpacked $AGENT_GZ"
else
    echo "not found: the official-agent tests will say they are skipped"
fi

step "aws CLI and moto_server (the S3 blob store's tests) in target/venv"
VENV="$ROOT/target/venv"
if [ ! -x "$VENV/bin/aws" ]; then
    rm -rf "$VENV"
    mkdir -p "$ROOT/target"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check awscli
fi
if [ ! -x "$VENV/bin/moto_server" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]'
fi
export PATH="$VENV/bin:$PATH"
aws --version
"$VENV/bin/python" -c "import moto; print('moto', moto.__version__)"

step "cargo fmt"
cargo fmt --all -- --check

step "layout (file sizes, import cycles)"
python3 scripts/check_layout.py .

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build -p berth"
cargo build -p berth
# Where cargo put it (CARGO_TARGET_DIR when set, as in a second worktree sharing a build).
export BERTH_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/berth"

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    # nextest runs every test in its own process, in parallel, and prints a
    # closing "Summary ... N tests run: N passed" line.
    # nextest does not run doctests: run them first so that nextest's summary
    # is the closing line.
    cargo test --workspace --doc
    cargo nextest run --workspace --no-fail-fast --final-status-level fail
else
    cargo test --workspace --no-fail-fast
fi
