#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is present for tests/test_report_browser.py.
# Installs the `chromium` package with apt-get when /usr/bin/chromium is missing and we are
# root. Never fails the caller: when it cannot install, it says why and exits 0 (the browser
# test then skips on a developer machine, and fails in CI where CI=true).
set -u

if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: not root, cannot install the Debian package 'chromium'" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get on this machine, install Chromium by hand" >&2
  exit 0
fi
log=$(mktemp)
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 &&
   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$log" 2>&1; then
  echo "ensure-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
else
  echo "ensure-chromium: apt-get could not install chromium; last lines:" >&2
  tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
