#!/usr/bin/env bash
# System packages the tests need beyond Python, Go and make: a real Prometheus and
# promtool (Debian package "prometheus"). Installed with apt-get when missing and
# we are root; otherwise say exactly what to install.
set -euo pipefail

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(promtool)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian package prometheus (for: ${missing[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The package's service is not started in containers; the tests run their own.
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  exit 0
fi
echo "missing ${missing[*]}: install the 'prometheus' package (sudo apt-get install prometheus)," >&2
echo "or set PROMETHEUS and PROMTOOL to binaries of Prometheus 2.x" >&2
exit 1
