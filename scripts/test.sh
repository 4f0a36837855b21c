#!/usr/bin/env bash
# Runs the whole test suite with the race detector, in every module
# (scripts/gotest.sh). When dbus-run-session
# and gnome-keyring-daemon are installed (apt-get install dbus gnome-keyring),
# the keyring tests run against a real, headless Secret Service; without
# them those tests skip, saying so. .ci/run installs both, so in CI they run.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
	# A throwaway keyring directory: the daemon creates a fresh login
	# keyring unlocked with this password, whatever this machine holds.
	keyrings=$(mktemp -d)
	trap 'rm -rf "$keyrings"' EXIT
	XDG_DATA_HOME="$keyrings" dbus-run-session -- sh -c '
		echo -n tokenmgr-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null
		TOKENMGR_TEST_KEYRING=1 bash scripts/gotest.sh'
	exit
fi
echo "scripts/test.sh: dbus-run-session or gnome-keyring-daemon missing: keyring tests will skip (apt-get install dbus gnome-keyring)" >&2
bash scripts/gotest.sh
