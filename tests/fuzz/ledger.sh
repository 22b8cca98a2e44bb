#!/bin/bash
# The fuzzing ledger, docs/fuzz-ledger.md: one row per recorded run (tests/fuzz/run.sh --record,
# tests/fuzz/smoke.sh --record) and a totals table per harness, regenerated from the rows, that
# says how far each harness is from the hour of CPU time issue 7 asks for.
# Usage: tests/fuzz/ledger.sh                      print the totals
#        tests/fuzz/ledger.sh --update                 regenerate the totals (rows copied in by hand:
#                                                  a run recorded on another machine)
#        tests/fuzz/ledger.sh --add TARGET CPU_SECONDS WALL_SECONDS RUNS RESULT
#                                                  add a row (dated, with this machine's cores
#                                                  and load) and regenerate the totals
set -euo pipefail
cd "$(dirname "$0")/../.."
ledger=docs/fuzz-ledger.md
goal_seconds=3600

# The totals table, from the rows: every harness tests/fuzz/fuzz_<target>.c, recorded or not.
totals() {
    local targets
    targets=$(for harness in tests/fuzz/fuzz_*.c; do basename "$harness" .c; done | sed 's/^fuzz_//')
    echo "| Harness | CPU time | Runs recorded | Executions | Failed runs | Left to the 1-hour goal |"
    echo "|---|---|---|---|---|---|"
    for target in $targets; do
        awk -F'|' -v target="$target" -v goal="$goal_seconds" '
            function trim(s) { gsub(/^ +| +$/, "", s); return s }
            /^\| [0-9][0-9][0-9][0-9]-/ && trim($3) == target {
                cpu += trim($4); runs++; executions += trim($6)
                if (trim($7) != "clean") failed++
            }
            END {
                left = goal - cpu
                printf "| %s | %.2f h | %d | %d | %d | %s |\n", target, cpu / 3600, runs, executions, failed,
                    (left > 0 ? sprintf("%.0f min", left / 60) : "done")
            }' "$ledger"
    done
}

# Replaces the lines between the totals markers.
update_totals() {
    local table
    table=$(totals)
    awk -v table="$table" '
        /<!-- totals -->/ { print; print table; skipping = 1; next }
        /<!-- \/totals -->/ { skipping = 0 }
        !skipping' "$ledger" >"$ledger.tmp.$$"
    mv "$ledger.tmp.$$" "$ledger"
}

case "${1:-}" in
--add) ;;
--update) update_totals && exit 0 ;;
*) totals && exit 0 ;;
esac
[ $# = 6 ] || { echo "usage: tests/fuzz/ledger.sh --add TARGET CPU_SECONDS WALL_SECONDS RUNS RESULT" >&2 && exit 2; }
machine="$(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
# Runs recorded at the same time (smoke.sh --record --parallel) take turns.  The lock is on the
# directory: update_totals replaces the ledger file, so a lock on the file itself would be a lock on
# a file that the next writer no longer opens.
exec 9<"$(dirname "$ledger")"
flock 9
printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(date -u +%Y-%m-%d)" "$2" "$3" "$4" "$5" "$6" "$machine" >>"$ledger"
update_totals
