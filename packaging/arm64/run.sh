#!/usr/bin/env bash
# Build and check the arm64 (Raspberry Pi OS 64-bit / Debian bookworm arm64) .deb on an x86_64 Linux machine, under
# qemu-user emulation, with one command (as root: debootstrap, chroot and mount need it):
#
#   sudo packaging/arm64/run.sh                 # every step not yet done; prints how long each took
#   sudo packaging/arm64/run.sh --redo STEP     # forget STEP and everything after it, then go on from there
#   sudo packaging/arm64/run.sh --only STEP     # just that step (its inputs must exist)
#   sudo packaging/arm64/run.sh --list          # the steps
#
# Everything large lives outside the checkout, in $FDFACE_ARM64_DIR (default /work/arm64): the arm64 roots, the
# wheels' environment, the bundle, the .deb, logs (logs/STEP.log) and the results (results/). Steps that finished
# are remembered (state/STEP.done), so a run cut short goes on where it stopped.
#
# The emulated processor is a Cortex-A72, the Raspberry Pi 4's (QEMU_CPU=cortex-a72; qemu's default "max" CPU has
# dot-product and SVE instructions a Pi 4 lacks, and ONNX Runtime picks other int8 kernels for them). The INT8 check
# also runs on a Cortex-A76 (Raspberry Pi 5, dot product): FDFACE_ARM64_INT8_CPUS="cortex-a72 cortex-a76" (default),
# FDFACE_ARM64_SKIP_A76=1 for the A72 alone, FDFACE_ARM64_INT8_FACES=600 crops (24 minutes per CPU here).
#
# Emulated timings are not Raspberry Pi timings (qemu translates every instruction): the step times say how long
# this check takes here, nothing about frame rates on a Pi.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
W="${FDFACE_ARM64_DIR:-/work/arm64}"
SHARED="${FDFACE_SHARED:-$(cd "$REPO/.." && pwd)/shared}"
MIRROR="${FDFACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
X86_PY="${FDFACE_X86_PYTHON:-$REPO/.venv/bin/python}"
export QEMU_CPU="${FDFACE_QEMU_CPU:-cortex-a72}"
BASE="$W/root"          # debootstrap's bookworm arm64 (minbase + Python and the build tools)
BROOT="$W/build-root"   # BASE + Qt's system libraries + the wheels; builds the .deb and runs the pipeline
RROOT="$W/run-root"     # a fresh copy of BASE where the .deb is installed with apt (its Depends pulled from Debian)
LOGS="$W/logs"
RES="$W/results"
STATE="$W/state"
IN=/work/fdface         # the checkout inside the roots; the shared data is mounted at /work/shared beside it
STEPS=(host base build-root wheels build install selftest x86-reference pipeline frames compare int8 sizes)

# Build root only: what PySide6's Qt (xcb, wayland, offscreen, EGL/GL) and the wheels load from the system, so that
# PyInstaller and deb_depends.py see them. The run root gets nothing but the .deb and what its Depends pull.
QT_LIBS="libgl1 libegl1 libopengl0 libglx0 libfontconfig1 libfreetype6 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3
 libglib2.0-0 libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxcb-shm0 libxcb-sync1
 libxcb-render0 libxcb-glx0 libxrender1 libxext6 libxi6 libsm6 libice6 libwayland-client0 libwayland-cursor0
 libwayland-egl1 libgomp1 libgssapi-krb5-2 libzstd1"

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }
FROM=""
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --redo) FROM="${2:?--redo needs a step}"; shift ;;
        --only) ONLY="${2:?--only needs a step}"; shift ;;
        --list) printf '%s\n' "${STEPS[@]}"; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
for s in "$FROM" "$ONLY"; do
    [ -z "$s" ] || [[ " ${STEPS[*]} " == *" $s "* ]] || { echo "run.sh: no step $s (--list)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: run it as root (debootstrap, chroot and mount need it): sudo $0" >&2; exit 2; }
mkdir -p "$LOGS" "$RES" "$STATE"
if [ -n "$FROM" ]; then
    drop=0
    for s in "${STEPS[@]}"; do [ "$s" = "$FROM" ] && drop=1; [ $drop = 1 ] && rm -f "$STATE/$s.done"; done
fi

# --- chroot helpers -----------------------------------------------------------------------------------------------
# Not /sys: with the x86_64 host's /sys present, ONNX Runtime's cpuinfo goes on to parse the host's x86 /proc/cpuinfo
# as ARM and crashes (qemu: uncaught target signal 11) on import; without it cpuinfo gives up cleanly and ONNX Runtime
# reads the processor features from the auxiliary vector, i.e. from the emulated Cortex-A72 (as on a Pi).
mount_root() {  # ROOT: /proc, /dev, ../shared (read-only at /work/shared) and DNS for apt and pip
    local r="$1"
    mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"
    mountpoint -q "$r/dev" || mount --rbind /dev "$r/dev"
    mkdir -p "$r/work/shared"
    if ! mountpoint -q "$r/work/shared"; then
        mount --bind "$SHARED" "$r/work/shared" && mount -o remount,bind,ro "$r/work/shared"
    fi
    cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    # this machine's CA bundle for pip (behind a TLS-inspecting proxy the root's own bundle does not know its CA)
    cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$r/etc/fdface-host-ca.crt"
}
umount_all() {  # every mount this script makes, in either root (steps run in subshells: no list survives them)
    local r m
    for r in "$BROOT" "$RROOT"; do
        for m in work/shared dev sys proc; do
            if mountpoint -q "$r/$m" 2>/dev/null; then umount -R -l "$r/$m" || true; fi
        done
    done
}
trap umount_all EXIT
safe_rm() {  # DIR: removed only when nothing is mounted under it (a bound /dev or /work/shared must never go)
    umount_all
    if awk -v d="$1/" 'index($2 "/", d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        echo "run.sh: something is still mounted under $1; not removing it" >&2
        return 1
    fi
    rm -rf "$1"
}
in_root() {  # ROOT COMMAND: a login-free shell inside ROOT, emulated as $QEMU_CPU, with a clean environment
    local r="$1"
    shift
    chroot "$r" /usr/bin/env -i QEMU_CPU="$QEMU_CPU" HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QT_QPA_PLATFORM=offscreen \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_CERT=/etc/fdface-host-ca.crt DEBIAN_FRONTEND=noninteractive \
        FDFACE_DEB_COMPRESS="${FDFACE_DEB_COMPRESS:-zstd}" /bin/bash -euo pipefail -c "$*"
}
copy_checkout() {  # ROOT: the checkout's tracked files (with uncommitted edits) at $IN; its build/ and dist/ stay
    mkdir -p "$1$IN"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- . "$1$IN/")
}
VENV="$IN/build/pkg-venv-arm64"
CLI='import sys; from desktop_app.cli import main; sys.exit(main())'  # `fdface`, without installing the checkout
IDENT_ARGS="--people /work/shared/media/people --json --threads 1"

# --- steps ----------------------------------------------------------------------------------------------------------
step_host() {  # qemu-user-static, binfmt_misc with qemu-aarch64 registered, debootstrap
    local need=()
    command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v rsync >/dev/null || need+=(rsync)
    [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
    grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64  # F: the interpreter works inside a chroot
    qemu-aarch64-static --version | head -1
}
step_base() {
    if [ ! -x "$BASE/usr/bin/python3" ]; then
        rm -rf "$BASE"
        debootstrap --arch=arm64 --variant=minbase \
            --include=python3,python3-venv,python3-pip,python3-dev,binutils,file,dpkg-dev,icu-devtools,gcc,libc6-dev,ca-certificates,xz-utils,zstd \
            bookworm "$BASE" "$MIRROR"
    fi
    chroot "$BASE" /usr/bin/env QEMU_CPU="$QEMU_CPU" python3 -c 'import platform; print(platform.machine())' | grep -qx aarch64
    du -sh "$BASE"
}
step_build-root() {
    safe_rm "$BROOT"
    cp -a "$BASE" "$BROOT"
    mount_root "$BROOT"
    in_root "$BROOT" "apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $QT_LIBS)"
    copy_checkout "$BROOT"
}
step_wheels() {  # the build environment exactly as build.sh makes it: these are the aarch64 wheels pip picks
    mount_root "$BROOT"
    copy_checkout "$BROOT"
    in_root "$BROOT" "cd $IN && python3 -m venv $VENV &&
        $VENV/bin/python packaging/bundle_requirements.py > $VENV/bundle-requirements.txt &&
        $VENV/bin/python packaging/bundle_requirements.py --no-deps > $VENV/bundle-requirements-nodeps.txt &&
        $VENV/bin/pip install -q -r $VENV/bundle-requirements.txt &&
        $VENV/bin/pip install -q --no-deps -r $VENV/bundle-requirements-nodeps.txt &&
        $VENV/bin/pip list --format=freeze" | tee "$RES/wheels-arm64.txt"
}
step_build() {
    mount_root "$BROOT"
    copy_checkout "$BROOT"
    in_root "$BROOT" "cd $IN && packaging/build.sh --out $IN/dist --work $IN/build"
    ls -l "$BROOT$IN"/dist/*_arm64.deb
}
step_install() {  # a fresh root: apt installs the .deb and pulls its Depends from Debian's arm64 archive
    safe_rm "$RROOT"
    cp -a "$BASE" "$RROOT"
    local deb
    deb="$(ls "$BROOT$IN"/dist/fdface-attendance_*_arm64.deb)"
    cp "$deb" "$RROOT/tmp/"
    mount_root "$RROOT"
    in_root "$RROOT" "apt-get update -q && apt-get install -y -q --no-install-recommends /tmp/$(basename "$deb") &&
        dpkg -s fdface-attendance | grep -E '^(Status|Version|Architecture|Installed-Size|Depends):'"
}
step_selftest() {  # the installed app: its own checks, then the first processed frame of the Hamilton clip
    mount_root "$RROOT"
    in_root "$RROOT" "cd /tmp && fdface-attendance --self-test" | tee "$RES/selftest-arm64.txt"
    in_root "$RROOT" "cd /tmp && fdface-attendance --first-frame /work/shared/media/video/short_hamilton_clip.mp4" \
        | tee "$RES/first-frame-arm64.txt"
}
bbt_folder() {  # DIR: the bbt photos alone (the scenes folder holds others)
    rm -rf "$1"; mkdir -p "$1"; cp "$SHARED"/media/scenes/bbt*.jpg "$1/"
}
step_x86-reference() {  # the same commands on this machine's x86_64 Python: the reference
    local home="$W/x86-home"
    rm -rf "$home"; mkdir -p "$home"
    bbt_folder "$W/x86-bbt"
    (cd "$REPO" && export HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" &&
        "$X86_PY" -c "$CLI" identify --people "$SHARED/media/people" --json --threads 1 "$W/x86-bbt" \
            > "$RES/photos-x86.jsonl" &&
        "$X86_PY" -c "$CLI" identify --people "$SHARED/media/people" --json --threads 1 --every-frame \
            "$SHARED/media/video/short_hamilton_clip.mp4" > "$RES/clip-x86.jsonl" &&
        "$X86_PY" -c 'import cv2, numpy, onnxruntime as o, faiss; print("x86_64: onnxruntime", o.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__, "faiss", faiss.__version__)') \
        | tee "$RES/versions-x86.txt"
    wc -l "$RES/photos-x86.jsonl" "$RES/clip-x86.jsonl"
}
step_pipeline() {  # the headless pipeline (fdface identify) on arm64 with the wheels the bundle carries
    mount_root "$BROOT"
    copy_checkout "$BROOT"
    bbt_folder "$BROOT/tmp/bbt"
    in_root "$BROOT" "cd $IN && $VENV/bin/python -c '$CLI' identify $IDENT_ARGS /tmp/bbt" > "$RES/photos-arm64.jsonl"
    in_root "$BROOT" "cd $IN && $VENV/bin/python -c '$CLI' identify $IDENT_ARGS --every-frame \
        /work/shared/media/video/short_hamilton_clip.mp4" > "$RES/clip-arm64.jsonl"
    in_root "$BROOT" "$VENV/bin/python -c 'import cv2, numpy, onnxruntime as o, faiss; print(\"arm64: onnxruntime\", o.__version__, \"opencv\", cv2.__version__, \"numpy\", numpy.__version__, \"faiss\", faiss.__version__)'" \
        | tee "$RES/versions-arm64.txt"
    wc -l "$RES/photos-arm64.jsonl" "$RES/clip-arm64.jsonl"
}
step_frames() {  # the clip's frames as decoded on x86_64 (every FDFACE_ARM64_FRAME_STEP-th, PNG): the same pixels
    # on both sides. FFmpeg's YUV->BGR conversion rounds differently on x86_64 and ARM (up to 2 levels on every
    # frame of this clip), so the clip itself gives each processor slightly different pictures.
    local d="$BROOT/tmp/clip-frames"
    rm -rf "$d"; mkdir -p "$d"
    "$X86_PY" -c 'import sys, cv2
cap = cv2.VideoCapture(sys.argv[1]); i = 0; step = int(sys.argv[3])
while True:
    ok, f = cap.read()
    if not ok:
        break
    if i % step == 0:
        cv2.imwrite(f"{sys.argv[2]}/frame{i:04d}.png", f)
    i += 1
print(i, "frames decoded on x86_64")' "$SHARED/media/video/short_hamilton_clip.mp4" "$d" "${FDFACE_ARM64_FRAME_STEP:-5}"
    local home="$W/x86-home"
    (cd "$REPO" && export HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" &&
        "$X86_PY" -c "$CLI" identify --people "$SHARED/media/people" --json --threads 1 "$d" > "$RES/frames-x86.jsonl")
    mount_root "$BROOT"
    in_root "$BROOT" "cd $IN && $VENV/bin/python -c '$CLI' identify $IDENT_ARGS /tmp/clip-frames" > "$RES/frames-arm64.jsonl"
    wc -l "$RES/frames-x86.jsonl" "$RES/frames-arm64.jsonl"
}
step_compare() {  # photos and the clip's frames: the same pixels, so the same names and boxes within a pixel
    python3 "$REPO/packaging/arm64/compare_results.py" "$RES/photos-x86.jsonl" "$RES/photos-arm64.jsonl" \
        | tee "$RES/compare-photos.txt"
    python3 "$REPO/packaging/arm64/compare_results.py" "$RES/frames-x86.jsonl" "$RES/frames-arm64.jsonl" \
        | tee "$RES/compare-frames.txt"
    # the clip decoded by each processor's own FFmpeg: reported, not required to match to the pixel
    python3 "$REPO/packaging/arm64/compare_results.py" "$RES/clip-x86.jsonl" "$RES/clip-arm64.jsonl" \
        > "$RES/compare-clip.txt" || true
    head -1 "$RES/compare-clip.txt"; tail -2 "$RES/compare-clip.txt"
}
step_int8() {  # benchmarks/int8_agreement.py on the emulated Pi 4 core and a Pi 5 core (FDFACE_ARM64_INT8_CPUS)
    mount_root "$BROOT"
    copy_checkout "$BROOT"
    local cpus="${FDFACE_ARM64_INT8_CPUS:-cortex-a72 cortex-a76}" cpu files=()
    [ "${FDFACE_ARM64_SKIP_A76:-0}" = 1 ] && cpus=cortex-a72
    for cpu in $cpus; do
        # the table's first line names the host's CPU: qemu-user shows the x86_64 /proc/cpuinfo to the program
        { echo "emulated by qemu-user as QEMU_CPU=$cpu (the CPU named below is the x86_64 host's /proc/cpuinfo)"
          QEMU_CPU=$cpu in_root "$BROOT" "cd $IN && $VENV/bin/python benchmarks/int8_agreement.py \
            --faces ${FDFACE_ARM64_INT8_FACES:-600}"; } | tee "$RES/int8-$cpu.txt"
        files+=("$RES/int8-$cpu.txt")
    done
    python3 "$REPO/packaging/arm64/compare_results.py" --int8 "${files[@]}"
}
step_sizes() {  # bundle, .deb (as built, and recompressed with xz here, natively), installed size
    local deb tmp
    deb="$(ls "$BROOT$IN"/dist/fdface-attendance_*_arm64.deb)"
    tmp="$(mktemp -d)"
    dpkg-deb -R "$deb" "$tmp/pkg"
    dpkg-deb --root-owner-group -Zxz --build "$tmp/pkg" "$tmp/xz.deb" >/dev/null
    {
        echo "bundle: $(du -sm --apparent-size "$BROOT$IN/dist/fdface-attendance" | cut -f1) MB (apparent)"
        echo ".deb as built (${FDFACE_DEB_COMPRESS:-zstd}): $(( $(stat -c %s "$deb") / 1000000 )) MB"
        echo ".deb recompressed with xz (as a release .deb): $(( $(stat -c %s "$tmp/xz.deb") / 1000000 )) MB"
        echo "installed (dpkg Installed-Size): $(( $(dpkg-deb -f "$deb" Installed-Size) / 1000 )) MB"
        echo "Depends: $(dpkg-deb -f "$deb" Depends)"
        echo "roots: base $(du -smx "$BASE" | cut -f1) MB, build $(du -smx "$BROOT" | cut -f1) MB, run $(du -smx "$RROOT" | cut -f1) MB"
    } | tee "$RES/sizes.txt"
    rm -rf "$tmp"
}

# --- driver ---------------------------------------------------------------------------------------------------------
SUMMARY="$RES/steps.txt"
: > "$SUMMARY.new"
status=0
for s in "${STEPS[@]}"; do
    if [ -n "$ONLY" ]; then [ "$s" = "$ONLY" ] || continue
    elif [ -e "$STATE/$s.done" ]; then echo "== $s: done before ($(cat "$STATE/$s.done"))"; continue; fi
    echo "== $s (log: $LOGS/$s.log)"
    t0=$(date +%s)
    set +e
    ( set -euo pipefail; trap umount_all EXIT; "step_$s" ) > "$LOGS/$s.log" 2>&1
    rc=$?
    set -e
    umount_all
    dt=$(( $(date +%s) - t0 ))
    printf '%-14s %-6s %5d s\n' "$s" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" "$dt" | tee -a "$SUMMARY.new"
    if [ $rc != 0 ]; then
        tail -25 "$LOGS/$s.log" | sed 's/^/    /'
        status=1
        break
    fi
    echo "$dt s, $(date -u +%FT%TZ)" > "$STATE/$s.done"
done
cat "$SUMMARY.new" >> "$SUMMARY"; rm -f "$SUMMARY.new"
echo "== step times (emulated steps are qemu timings, not Raspberry Pi timings): $SUMMARY"
exit $status
