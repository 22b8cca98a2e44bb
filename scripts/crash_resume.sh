#!/usr/bin/env bash
# The full crash-safety check: 20 SIGKILLs at random moments (see tests/e2e/test_crash_resume.sh;
# CI runs the same test with 4).  Usage: scripts/crash_resume.sh [BUILD_DIR] [KILLS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bash tests/e2e/test_crash_resume.sh "${1:-build}" "${2:-20}"
