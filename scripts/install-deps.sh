#!/usr/bin/env bash
# Installs what building and testing capstan needs on a fresh Debian machine:
# protoc with its well-known types (etcd-client compiles etcd's protobufs) and, for tests, the
# real etcd server.
set -euo pipefail
need=(protoc /usr/include/google/protobuf/descriptor.proto)
packages=(protobuf-compiler libprotobuf-dev)
if [ "${1:-}" = test ]; then
  need+=(etcd)
  packages+=(etcd-server)
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
