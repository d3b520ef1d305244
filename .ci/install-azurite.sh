#!/usr/bin/env bash
# Installs the pinned Azurite into <repo>/.tools, where internal/azurite
# finds it. Does nothing when that version is already there.
set -euo pipefail

version=3.35.0 # keep in step with azurite.Version in internal/azurite
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/node_modules/.bin/azurite-blob"
pkg="$root/.tools/node_modules/azurite/package.json"

if [[ -x "$bin" && -f "$pkg" ]] && grep -q "\"version\": \"$version\"" "$pkg"; then
	echo "azurite $version already installed in .tools"
	exit 0
fi

command -v npm >/dev/null || { echo "install-azurite: npm is required (apt-get install -y npm)" >&2; exit 1; }
npm install --prefix "$root/.tools" --no-audit --no-fund "azurite@$version"
"$bin" --version
