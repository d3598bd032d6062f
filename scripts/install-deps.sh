#!/usr/bin/env bash
# Installs what building and testing capstan needs on a fresh Debian machine:
# protoc with its well-known types (etcd-client compiles etcd's protobufs) and, for tests, the
# real etcd server and Debian's static busybox (the Docker tests import their images from it).
set -euo pipefail
need=(protoc /usr/include/google/protobuf/descriptor.proto)
packages=(protobuf-compiler libprotobuf-dev)
if [ "${1:-}" = test ]; then
  need+=(etcd /bin/busybox)
  packages+=(etcd-server busybox-static)
fi
missing=()
for i in "${!need[@]}"; do
  if [[ "${need[$i]}" == /* ]]; then
    [ -e "${need[$i]}" ] || missing+=("${packages[$i]}")
  else
    command -v "${need[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
# The official Python client, for the tests that drive capstan with it (a venv under target/).
if [ "${1:-}" = test ]; then
  venv="$(cd "$(dirname "$0")/.." && pwd)/target/python-client"
  if ! "$venv/bin/python" -c 'import kubernetes' >/dev/null 2>&1; then
    echo "installing the Python kubernetes client into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'kubernetes==33.1.0'
  fi
fi
