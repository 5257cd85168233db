#!/usr/bin/env bash
# Install Debian's SLURM (slurm-wlm) and munge for the loopback-cluster tests (tests/test_slurm.py).
#
# Idempotent: apt is only touched when one of the needed binaries is missing, and `apt-get update`
# runs only then. Needs root (or sudo) and network access to the Debian mirror. Post-install scripts
# start no daemons; the test fixture (tests/slurm_cluster.py) starts and stops them itself.
# Prints the versions it finds. Exit status is non-zero when installation fails; without root (and
# without password-less sudo) it only warns, since the SLURM tests skip without root anyway.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # slurmctld, slurmd, munged live in sbin

need=(slurmctld slurmd sbatch srun squeue scancel sinfo scontrol munged munge unmunge)

missing=()
for b in "${need[@]}"; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done

if ((${#missing[@]})); then
    echo "install-slurm: missing ${missing[*]}; installing slurm-wlm and munge"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO="sudo -n"
        else
            # not an error: the SLURM tests need root anyway and skip with this reason
            echo "install-slurm: WARNING: not root and no password-less sudo; not installing" \
                "slurm-wlm/munge, tests marked 'slurm' will be skipped" >&2
            exit 0
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    for b in "${need[@]}"; do
        if ! command -v "$b" >/dev/null 2>&1; then
            echo "install-slurm: $b still missing after installation" >&2
            exit 1
        fi
    done
else
    echo "install-slurm: slurm-wlm and munge already installed"
fi

echo "slurmctld: $(slurmctld -V 2>&1)"
echo "slurmd:    $(slurmd -V 2>&1)"
echo "munged:    $(munged --version 2>&1 | head -n1)"
