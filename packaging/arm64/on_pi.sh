#!/usr/bin/env bash
# The check packaging/arm64/run.sh does under emulation, on a real Raspberry Pi 4/5 (Raspberry Pi OS 64-bit bookworm),
# plus what emulation cannot tell: real timings. From a checkout with ../shared beside it:
#
#   packaging/arm64/on_pi.sh          # build the .deb, install it (sudo), self-test, time the first frame,
#                                     # pipeline vs the x86_64 reference, INT8 agreement, frame rate
#
# Results go to build/pi-check/ (the .deb to dist/). Needs sudo for apt; the rest runs as the user.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${FDFACE_SHARED:-$(cd "$REPO/.." && pwd)/shared}"
OUT="$REPO/build/pi-check"
REF="$REPO/packaging/arm64/reference"
PY="$REPO/build/pkg-venv-arm64/bin/python"
CLI='import sys; from desktop_app.cli import main; sys.exit(main())'
mkdir -p "$OUT"
cd "$REPO"
t() { local s=$1 t0; shift; t0=$(date +%s); "$@"; echo "$s: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.txt"; }
: > "$OUT/steps.txt"
[ "$(dpkg --print-architecture)" = arm64 ] || { echo "on_pi.sh: this is for arm64 (Raspberry Pi OS 64-bit)" >&2; exit 2; }
grep -m1 -i model /proc/cpuinfo | tee "$OUT/machine.txt" || true
t build packaging/build.sh
t install sudo apt-get install -y "$(ls "$REPO"/dist/fdface-attendance_*_arm64.deb)"
t selftest sh -c "cd /tmp && fdface-attendance --self-test | tee '$OUT/selftest.txt'"
t first-frame sh -c "cd /tmp && fdface-attendance --first-frame '$SHARED/media/video/short_hamilton_clip.mp4' | tee '$OUT/first-frame.txt'"
home="$(mktemp -d)"; mkdir -p "$home/bbt"; cp "$SHARED"/media/scenes/bbt*.jpg "$home/bbt/"
export HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share"  # default settings
t photos sh -c "'$PY' -c '$CLI' identify --people '$SHARED/media/people' --json --threads 1 '$home/bbt' > '$OUT/photos-pi.jsonl'"
t clip sh -c "'$PY' -c '$CLI' identify --people '$SHARED/media/people' --json --threads 1 --every-frame \
    '$SHARED/media/video/short_hamilton_clip.mp4' > '$OUT/clip-pi.jsonl'"
status=0
python3 packaging/arm64/compare_results.py "$REF/photos-x86.jsonl" "$OUT/photos-pi.jsonl" || status=1
# the clip against the emulated arm64 run: FFmpeg's YUV->BGR rounds differently on ARM and x86_64, so a Pi
# decodes the pixels the arm64 wheel decodes under qemu, not x86_64's (packaging/README.md)
python3 packaging/arm64/compare_results.py "$REF/clip-arm64-qemu.jsonl" "$OUT/clip-pi.jsonl" || status=1
t int8 sh -c "'$PY' benchmarks/int8_agreement.py | tee '$OUT/int8-pi.txt'"
python3 packaging/arm64/compare_results.py --int8 "$OUT/int8-pi.txt" || status=1
t bench sh -c "PYTHONPATH='$REPO' '$PY' -c '$CLI' bench pipeline --threads 1,4 --people '$SHARED/media/people' \
    '$SHARED/media/video/short_hamilton_clip.mp4' | tee '$OUT/bench-pi.txt'" || status=1
echo "results in $OUT; send them with the issue (these, unlike qemu's, are Raspberry Pi timings)"
exit $status
