#!/usr/bin/env bash
# Vendors the web console's JavaScript libraries (docs/CONSOLE.md): pinned packages from the npm registry, unpacked
# with `npm pack` into deployments/console/static/vendor/, licence files included. Run it when a pin changes and
# commit the result: installing the project never runs npm, and the console never loads anything from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=deployments/console/static/vendor
LEAFLET_VERSION=1.9.4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "leaflet@${LEAFLET_VERSION}" >/dev/null && tar -xzf "leaflet-${LEAFLET_VERSION}.tgz")

rm -rf "$VENDOR/leaflet"
mkdir -p "$VENDOR/leaflet"
# The ES module build (the console is plain ES modules), its stylesheet and the licence; no images: the console
# draws circles, not the default marker icons.
cp "$work/package/dist/leaflet-src.esm.js" "$VENDOR/leaflet/leaflet-src.esm.js"
cp "$work/package/dist/leaflet.css" "$VENDOR/leaflet/leaflet.css"
cp "$work/package/LICENSE" "$VENDOR/leaflet/LICENSE"
printf 'leaflet %s (npm pack leaflet@%s; scripts/vendor_console.sh)\n' "$LEAFLET_VERSION" "$LEAFLET_VERSION" \
  > "$VENDOR/leaflet/VERSION"
echo "vendored leaflet ${LEAFLET_VERSION} into $VENDOR/leaflet"
