#!/usr/bin/env bash
# Best-effort set-up of the system Chromium that tests/test_app_browser.py drives with Playwright.
#
# Never fails: without a browser the browser test is skipped with its reason shown in the pytest
# summary. Installing needs apt-get and root (or password-less sudo); the Debian package is
# `chromium` (/usr/bin/chromium). Playwright's own browser download is never used.
set -u

found=""
for candidate in "${MAGICANIMATE_CHROMIUM:-}" chromium chromium-browser; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
        found="$(command -v "$candidate")"
        break
    fi
done
if [ -n "$found" ]; then
    echo "browser test: using $found"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser test: no chromium and no apt-get here; install Chromium yourself (or set MAGICANIMATE_CHROMIUM)," \
         "otherwise tests/test_app_browser.py is SKIPPED"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    prefix=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    prefix=(sudo -n)
else
    echo "browser test: chromium is missing and installing it needs root:" \
         "run 'sudo apt-get install -y --no-install-recommends chromium';" \
         "until then tests/test_app_browser.py is SKIPPED"
    exit 0
fi

echo "browser test: installing chromium with apt-get (Debian package 'chromium')"
export DEBIAN_FRONTEND=noninteractive
if "${prefix[@]}" apt-get update -qq && "${prefix[@]}" apt-get install -y -qq --no-install-recommends chromium; then
    echo "browser test: installed $(command -v chromium || echo '(chromium not on PATH?)')"
else
    echo "browser test: apt-get could not install chromium; tests/test_app_browser.py will be SKIPPED"
fi
exit 0
