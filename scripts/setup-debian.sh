#!/usr/bin/env bash
# setup-debian.sh: installs the Debian 12 packages kgen builds and tests with, if any is missing.
set -euo pipefail

packages=(cmake gcc make pkg-config diffutils liblua5.4-dev libtcc-dev libcriterion-dev
          libjansson-dev nettle-dev
          libopenblas-dev gnuplot-nox    # kgen bench: the OpenBLAS baseline, --plot
          valgrind                       # the valgrind_cli test
          libopenmpi-dev openmpi-bin     # the collectives' MPI back end and its mpirun test
          clang libclang-rt-14-dev libomp-dev)  # tests/fuzz: libFuzzer, clang's OpenMP

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
