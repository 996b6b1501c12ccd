#!/usr/bin/env bash
# A headless Chromium for the report's browser test (tests/test_browser_report.py, `make test-report`).
#
#   tests/browser/chromium.sh install   install Debian's chromium when no Chromium is on PATH (root: apt-get)
#   tests/browser/chromium.sh status    exit 0 when a Chromium is on PATH, printing its version
#
# Only the browser: the test drives it over the DevTools pipe, so chromedriver is not needed, and
# --no-install-recommends keeps the download small (a font still comes: fontconfig depends on fonts-dejavu-core).
set -euo pipefail
log() { echo "[chromium.sh $(date +%T)] $*" >&2; }

find_browser() {
  local name
  for name in ${CHROMIUM:-} chromium chromium-browser google-chrome chrome; do
    command -v "$name" 2>/dev/null && return 0
  done
  return 1
}

case "${1:-}" in
  install)
    if found=$(find_browser); then log "found $found"; exit 0; fi
    [ "$(id -u)" = 0 ] || { log "no Chromium on PATH (run as root to install Debian's chromium)"; exit 1; }
    log "installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    log "installed $(find_browser)"
    ;;
  status)
    found=$(find_browser) || { echo "no Chromium on PATH"; exit 1; }
    "$found" --version 2>/dev/null | tail -1; echo
    ;;
  *)
    echo "usage: $0 install|status" >&2; exit 2
    ;;
esac
