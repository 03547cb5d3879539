#!/usr/bin/env bash
# Installs every build and test dependency of ipckit from Debian 12's packages.
# Run as root on a fresh machine; safe to run again (apt-get skips what is there).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and micro-benchmarks
  libcli11-dev libfmt-dev                      # the ipckit tool's command line and output
  libboost-dev libzmq3-dev libnng-dev          # peers measured side by side by `ipckit bench`
  iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev  # the iceoryx peer (the bench starts iox-roudi)
  gnuplot-nox                                  # `ipckit bench --plot`
  clang clang-format libclang-rt-14-dev        # fuzzing and sanitizer runtimes, formatting
  iproute2 procps util-linux                   # network namespaces for the TCP and NATS tests; ipcs, ipcmk
  libnats-dev nats-server                      # the nats:// transport and `ipckit bridge`; its test servers
  python3 python3-jsonschema                   # validates `ipckit bench --json` in the tests
  pybind11-dev python3-dev                     # the Python module (python/)
  python3-pytest python3-numpy                 # its tests (tests/python/), NumPy for zero copy
  python3-venv                                 # `pip install ./python` into a fresh venv (CI stage pip)
  rustc                                        # Rust through the C API (examples/rust/, tests/capi/)
  dpkg-dev                                     # cpack -G DEB (dpkg-shlibdeps) and the package stage
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it calls apt-get)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing on a fresh machine; one update is enough for this run.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: ${#packages[@]} packages present"
