#!/usr/bin/env bash
# Installs sparkstack on one node: the binary, the systemd units, /etc/sparkstack (env, token,
# API keys, cluster file example) and the `sparkstack` system user; then reloads systemd.
#   deploy/install.sh [--binary PATH] [--enable node|serve|both] [--destdir DIR]
#     --binary   the sparkstack binary to install (default: build/launcher/sparkstack)
#     --enable   enable and start the unit(s) now (default: install only)
#     --destdir  stage into DIR instead of / (packaging, tests): no user, no systemctl
# Idempotent: existing /etc/sparkstack files (env, token, api-keys) are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=build/launcher/sparkstack
enable=""
destdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --enable) enable=$2; shift 2 ;;
    --destdir) destdir=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--enable node|serve|both] [--destdir DIR]" >&2; exit 2 ;;
  esac
done
case "$enable" in ""|node|serve|both) ;; *) echo "--enable takes node, serve or both" >&2; exit 2 ;; esac
if [ ! -x "$binary" ]; then
  echo "install: $binary is not an executable (build it: cmake --build build --target sparkstack)" >&2
  exit 1
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  echo "install: run as root (sudo $0 $*)" >&2
  exit 1
fi

root=${destdir:-}
etc="$root/etc/sparkstack"
install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/share/doc/sparkstack"
install -m 0755 "$binary" "$root/usr/local/bin/sparkstack"
install -m 0644 deploy/sparkstack-node.service deploy/sparkstack-serve.service "$root/etc/systemd/system/"
install -m 0644 docs/deploy.md docs/plan.md deploy/cluster.example.yaml "$root/usr/share/doc/sparkstack/"

if [ -z "$destdir" ] && ! id -u sparkstack >/dev/null 2>&1; then
  # A system user without a login shell; video/render give it the GPU device nodes where those
  # groups own them.
  useradd --system --home-dir /var/lib/sparkstack --create-home --shell /usr/sbin/nologin sparkstack
  for group in video render; do
    if getent group "$group" >/dev/null; then usermod -aG "$group" sparkstack; fi
  done
fi

install -d -m 0750 "$etc"
[ -f "$etc/env" ] || install -m 0640 deploy/env.example "$etc/env"
[ -f "$etc/serve.env" ] || printf '# Written by `sparkstack up`; the arguments of sparkstack serve.\nSPARKSTACK_SERVE_ARGS=\n' > "$etc/serve.env"
if [ ! -f "$etc/token" ]; then
  # The control plane's shared secret: copy this same file to every node.
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$etc/token"; echo >> "$etc/token")
fi
if [ ! -f "$etc/api-keys" ]; then
  (umask 077; { echo "# One API key per line; clients send it as 'Authorization: Bearer KEY'."
                head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; } > "$etc/api-keys")
fi
chmod 0600 "$etc/token" "$etc/api-keys"
[ -f "$etc/cluster.yaml" ] || install -m 0640 deploy/cluster.example.yaml "$etc/cluster.yaml"
if [ -z "$destdir" ]; then
  chown -R root:sparkstack "$etc"
  chown sparkstack:sparkstack "$etc/token" "$etc/api-keys"
  systemctl daemon-reload
  case "$enable" in
    node) systemctl enable --now sparkstack-node.service ;;
    serve) systemctl enable --now sparkstack-serve.service ;;
    both) systemctl enable --now sparkstack-node.service sparkstack-serve.service ;;
  esac
fi
echo "installed sparkstack into ${destdir:-/}: edit $etc/env (NCCL_IB_HCA, NCCL_IB_GID_INDEX), copy"
echo "$etc/token to every node, then run \`sparkstack doctor -f $etc/cluster.yaml\`"
