#!/usr/bin/env bash
# Builds two real fine-tuning tasks from Debian's package list (data/corpus/debian-packages.tsv,
# made by scripts/fetch_data.sh from `apt-cache dumpavail`).  Each example is a sentence pair:
# text_a = the package name, text_b = its one-line description.
#   OUT_DIR/multi_label/  which of 8 debtags a package carries (run_classifier_multi_label.py
#                         format: label = comma-separated class ids; classes in labels.txt).
#                         Only packages with at least one of the 8 tags.
#   OUT_DIR/regression/   log10 of the package's Installed-Size in KiB (a real property that the
#                         description predicts in part: libraries, Perl modules and small tools are
#                         small; data, documentation, fonts and games are large).
# Split: by an MD5 hash of the package name, digit % 10 == 8 -> dev, 9 -> test, else train; each file
# is ordered by that hash (deterministic, and any prefix is a random-like sample).
# Usage: scripts/make_debian_task.sh OUT_DIR
set -euo pipefail
out=${1:?usage: make_debian_task.sh OUT_DIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packages="$repo/data/corpus/debian-packages.tsv"
[ -f "$packages" ] || { echo "make_debian_task.sh: $packages missing (run scripts/fetch_data.sh)" >&2; exit 1; }
mkdir -p "$out/multi_label" "$out/regression"
/usr/bin/python3 - "$packages" "$out" <<'PY'
import hashlib, math, os, sys

LABELS = ["role::program", "role::shared-lib", "role::devel-lib", "role::documentation",
          "interface::commandline", "interface::x11", "implemented-in::perl", "implemented-in::python"]
packages, out = sys.argv[1], sys.argv[2]
rows = []
with open(packages, encoding="utf-8") as f:
    for line in f:
        name, size, tags, text = line.rstrip("\n").split("\t")
        key = hashlib.md5(name.encode()).hexdigest()
        rows.append((key, name, int(size), set(tags.split(",")) if tags else set(), text))
rows.sort()
split_of = lambda key: {8: "dev", 9: "test"}.get(int(key, 16) % 10, "train")
files = {}
for kind in ("multi_label", "regression"):
    for split in ("train", "dev", "test"):
        files[kind, split] = open(os.path.join(out, kind, split + ".tsv.tmp"), "w", encoding="utf-8")
        files[kind, split].write("label\ttext_a\ttext_b\n")
counts = {}
for key, name, size, tags, text in rows:
    if not text:
        continue
    split = split_of(key)
    if size > 0:
        files["regression", split].write(f"{math.log10(size):.4f}\t{name}\t{text}\n")
    ids = [str(i) for i, label in enumerate(LABELS) if label in tags]
    if ids:
        files["multi_label", split].write(f"{','.join(ids)}\t{name}\t{text}\n")
        counts[split] = counts.get(split, 0) + 1
for (kind, split), f in files.items():
    f.close()
    os.replace(f.name, f.name[:-4])
with open(os.path.join(out, "multi_label", "labels.txt"), "w") as f:
    f.write("\n".join(LABELS) + "\n")
print(f"make_debian_task.sh: multi-label {counts}; regression in {out}/regression")
PY
