# Sourced by the MPI end-to-end tests after common.sh, with the program they run as its argument
# (`source mpi_common.sh tp-pretrain`): skips the test (exit 0) when mpirun is missing or that
# program was built without MPI; sets mpirun_flags (2 ranks, as root too), python, compare
# (tests/e2e/mpi_compare.py) and losses_2 (losses without the ranks' wait times), and turns the
# sanitizer's leak check off.
mpi_program=${1:?usage: source mpi_common.sh PROGRAM}
# (Not `ldd | grep -q`: grep's early exit can end ldd by SIGPIPE, which pipefail takes for "no MPI".)
if ! command -v mpirun >/dev/null || [[ $(ldd "$build/$mpi_program") != *libmpi* ]]; then
    echo "$test_name.sh: skipped (no mpirun, or $mpi_program built without MPI)"
    exit 0
fi
python=/usr/bin/python3
compare() { "$python" "$repo/tests/e2e/mpi_compare.py" "$@"; }
losses_2() { losses "$1" | sed -E 's/,"wait_seconds":[^,}]*//'; }
mpirun_flags=(--oversubscribe --bind-to none -np 2)
[ "$(id -u)" -ne 0 ] || mpirun_flags+=(--allow-run-as-root)
# OpenMPI's own allocations outlive MPI_Finalize: leak checks of a sanitizer build would report them.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
