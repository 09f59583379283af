#!/usr/bin/env bash
# Build the small OpenCV the bundle ships instead of OpenCV's wheel (74 MB cv2 + 41 MB of vendored libraries):
# only the modules the app calls (core, imgproc, imgcodecs, videoio; OpenCV 5 adds flann and geometry, which imgproc
# needs) and the Python bindings, with a minimal
# FFmpeg (video decoders and demuxers for camera/video files, no encoders, no network) as shared libraries named
# lib*_fdface.so so that they never clash with a system FFmpeg. No LAPACK, no OpenCL, no IPP, no GUI.
#
#   packaging/build_opencv_small.sh PYTHON [OUT]
#
# PYTHON is the interpreter the bundle is built with (its NumPy headers and libpython are used); OUT defaults to
# build/opencv-small-ARCH. Result: OUT/python/cv2/ (the importable package, as OpenCV's own install lays it out)
# and OUT/lib/ (FFmpeg). packaging/build.sh uses it when it exists (or builds it with --small-opencv). The sources
# come from Debian's archive (FFmpeg 5.1) and PyPI (opencv-python-headless's sdist, which holds OpenCV's source),
# both checked against pinned SHA-256 sums and kept in build/opencv-small-src/. Took 17 minutes on 2 cores (AMD EPYC).
# Needs cmake, a C/C++ compiler, pkg-config and, on x86, nasm (FFmpeg's hand-written assembly, on which its H.264 and
# HEVC decoders rely for speed: the script stops rather than build without it; the difference was not measured).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:?usage: build_opencv_small.sh PYTHON [OUT]}"
case "$PY" in /*) ;; *) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # the build changes folders
ARCH="$(uname -m)"
OUT="${2:-$REPO/build/opencv-small-$ARCH}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
SRC="$REPO/build/opencv-small-src"
JOBS="$(nproc 2>/dev/null || echo 2)"

FFMPEG_VERSION=5.1.9
FFMPEG_URL="http://deb.debian.org/debian/pool/main/f/ffmpeg/ffmpeg_${FFMPEG_VERSION}.orig.tar.xz"
FFMPEG_SHA256=d9b593bb2ba93d4b50f74177e0cdcd41747e708596367deed0c30348a71dd176
OPENCV_VERSION=5.0.0.93  # the version of the wheel pip installs for the source install: the same OpenCV either way
OPENCV_URL="https://files.pythonhosted.org/packages/1d/99/76b7c80252aa83c1af16393454aafd125a0287101afe8deb0a6821af0e30/opencv_python_headless-${OPENCV_VERSION}.tar.gz"
OPENCV_SHA256=b82f9831daab90b725c7c1ee1b36cb5732c367096ac76d119e64e14eb70d5f3c

# packaging/build.sh --small-opencv installs these first (apt-get); run alone, this script only names what is missing
tools=(cmake make cc c++ pkg-config curl xz sha256sum)
case "$ARCH" in x86_64|i?86) tools+=(nasm) ;; esac  # FFmpeg's assembly: its H.264 and HEVC decoders rely on it
missing=()
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "build_opencv_small.sh: ${missing[*]} not found; packaging/build.sh --small-opencv installs them, or:" \
         "sudo apt-get install -y $(printf '%s\n' "${missing[@]}" | sed 's/^cc$/gcc/; s/^c++$/g++/; s/^xz$/xz-utils/;
         s/^sha256sum$/coreutils/' | paste -sd ' ')" >&2
    exit 4
fi

fetch() {  # URL SHA256 FILE
    if [ ! -f "$3" ] || ! echo "$2  $3" | sha256sum -c --status; then
        echo "== downloading $1"
        curl -fsSL --retry 3 -o "$3.part" "$1"
        echo "$2  $3.part" | sha256sum -c --status || { echo "build_opencv_small.sh: checksum mismatch for $1" >&2; exit 1; }
        mv "$3.part" "$3"
    fi
}
mkdir -p "$SRC"
fetch "$FFMPEG_URL" "$FFMPEG_SHA256" "$SRC/ffmpeg-$FFMPEG_VERSION.tar.xz"
fetch "$OPENCV_URL" "$OPENCV_SHA256" "$SRC/opencv_python_headless-$OPENCV_VERSION.tar.gz"

WORK="$OUT.work"
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"
tar -xf "$SRC/ffmpeg-$FFMPEG_VERSION.tar.xz" -C "$WORK"
tar -xzf "$SRC/opencv_python_headless-$OPENCV_VERSION.tar.gz" -C "$WORK"
OCV_SRC="$(ls -d "$WORK"/opencv*headless-"$OPENCV_VERSION"/opencv)"

echo "== FFmpeg $FFMPEG_VERSION (decoders and demuxers only)"
(cd "$WORK/ffmpeg-$FFMPEG_VERSION" && ./configure --prefix="$OUT/ffmpeg" --libdir="$OUT/lib" \
    --enable-shared --disable-static --enable-pic --build-suffix=_fdface \
    --disable-programs --disable-doc --disable-everything --disable-autodetect --disable-network --enable-pthreads \
    --disable-avdevice --disable-avfilter --disable-postproc --enable-swscale --enable-swresample \
    --enable-decoder=h264,hevc,mpeg4,h263,msmpeg4v2,msmpeg4v3,mjpeg,mpeg1video,mpeg2video,vp8,vp9,rawvideo,wmv1,wmv2,wmv3,vc1 \
    --enable-demuxer=mov,matroska,avi,mpegts,mpegps,asf,h264,hevc,m4v,mjpeg,rawvideo \
    --enable-parser=h264,hevc,mpeg4video,mpegvideo,mjpeg,vp8,vp9,vc1,h263 \
    --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,mpeg4_unpack_bframes --enable-protocol=file \
    > "$WORK/ffmpeg-configure.log" && make -j"$JOBS" > "$WORK/ffmpeg-make.log" 2>&1 &&
    make install >> "$WORK/ffmpeg-make.log" 2>&1) || { echo "build_opencv_small.sh: the FFmpeg build failed; logs in $WORK" >&2; exit 1; }
# OpenCV looks for libavcodec.pc etc.; the suffixed build names them libavcodec_fdface.pc
mkdir -p "$WORK/pc"
for f in "$OUT"/lib/pkgconfig/*_fdface.pc; do
    sed '/^Requires/s/_fdface//g' "$f" > "$WORK/pc/$(basename "$f" _fdface.pc).pc"
done

echo "== OpenCV $OPENCV_VERSION (core, imgproc, imgcodecs, videoio, python3)"
PYINC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
PYLIB="$("$PY" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("LDLIBRARY")))')"
NPINC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
mkdir -p "$WORK/opencv-build"
(cd "$WORK/opencv-build" && PYTHON3_LIBRARY="$PYLIB" PYTHON3_INCLUDE_DIR="$PYINC" \
    PKG_CONFIG_PATH="$WORK/pc" PKG_CONFIG_LIBDIR="$WORK/pc" cmake \
    "$OCV_SRC" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$WORK/install" \
    -DBUILD_LIST=core,imgproc,imgcodecs,videoio,python3,python_bindings_generator -DBUILD_SHARED_LIBS=OFF \
    -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_DOCS=OFF -DBUILD_opencv_apps=OFF \
    -DBUILD_JAVA=OFF -DBUILD_opencv_python2=OFF -DBUILD_opencv_python3=ON \
    -DPYTHON3_EXECUTABLE="$PY" -DPYTHON3_LIBRARY="$PYLIB" -DPYTHON3_INCLUDE_DIR="$PYINC" \
    -DPYTHON3_NUMPY_INCLUDE_DIRS="$NPINC" -DOPENCV_PYTHON3_INSTALL_PATH="$OUT/python" \
    -DCMAKE_INSTALL_RPATH='$ORIGIN/../../../lib' \
    -DWITH_FFMPEG=ON -DWITH_V4L=ON -DWITH_GSTREAMER=OFF -DWITH_GTK=OFF -DWITH_QT=OFF -DWITH_OPENCL=OFF -DWITH_IPP=OFF \
    -DWITH_LAPACK=OFF -DWITH_EIGEN=OFF -DWITH_OPENEXR=OFF -DWITH_JASPER=OFF -DWITH_OPENJPEG=OFF -DWITH_AVIF=OFF \
    -DWITH_JPEGXL=OFF -DWITH_VA=OFF -DWITH_VA_INTEL=OFF -DWITH_OBSENSOR=OFF -DWITH_ADE=OFF -DWITH_ITT=OFF \
    -DWITH_1394=OFF -DWITH_PROTOBUF=OFF -DWITH_TBB=OFF -DWITH_OPENMP=OFF -DWITH_PTHREADS_PF=ON -DWITH_GDAL=OFF \
    -DWITH_GDCM=OFF -DWITH_IMGCODEC_HDR=OFF -DWITH_IMGCODEC_SUNRASTER=OFF -DWITH_IMGCODEC_PFM=OFF -DWITH_SPNG=OFF \
    -DBUILD_JPEG=ON -DBUILD_PNG=ON -DBUILD_ZLIB=ON -DBUILD_TIFF=ON -DBUILD_WEBP=ON -DWITH_WEBP=ON -DWITH_TIFF=ON \
    -DOPENCV_GENERATE_PKGCONFIG=OFF > "$WORK/opencv-cmake.log" &&
    grep -q "To be built:.*python3" "$WORK/opencv-cmake.log" &&
    make -j"$JOBS" > "$WORK/opencv-make.log" 2>&1 && make install >> "$WORK/opencv-make.log" 2>&1) || {
    echo "build_opencv_small.sh: the OpenCV build failed; logs in $WORK" >&2; exit 1; }
rm -rf "$OUT/ffmpeg" "$OUT/lib/pkgconfig"
# OpenCV writes its loader's search paths as absolute build paths; make them relative to the package (LOADER_DIR),
# so that the package works where it is copied to (PyInstaller's bundle). FFmpeg is found through the RUNPATH.
printf "BINARIES_PATHS = [] + BINARIES_PATHS\n" > "$OUT/python/cv2/config.py"
printf "import os\n\nPYTHON_EXTENSIONS_PATHS = [\n    os.path.join(LOADER_DIR, 'python-%s')\n] + PYTHON_EXTENSIONS_PATHS\n" \
    "$PYVER" > "$OUT/python/cv2/config-$PYVER.py"
find "$OUT/lib" -name '*.so' -type l -delete  # the unversioned development links
strip --strip-unneeded "$OUT"/lib/*.so.* "$OUT/python/cv2/python-$PYVER"/*.so 2>/dev/null || true
PYTHONPATH="$OUT/python" "$PY" - <<EOF
import cv2, numpy as np
info = cv2.getBuildInformation()
assert "FFMPEG:                      YES" in info, "no FFmpeg in the small OpenCV"
ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
assert ok and cv2.imdecode(buf, cv2.IMREAD_COLOR).shape == (8, 8, 3)
print("== small OpenCV", cv2.__version__, "at", cv2.__file__)
EOF
rm -rf "$WORK"
du -sh "$OUT"
