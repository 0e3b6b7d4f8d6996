#!/usr/bin/env bash
# Installs the Debian packages callscope's demo and tests need, when they are missing.
set -euo pipefail

packages=()
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)
# the browser tests drive Debian's Chromium; the emoji font draws the sentiment faces
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || packages+=(fonts-noto-color-emoji)
# the test suite runs a second time against a private PostgreSQL server, and the distributed
# worker tests start Redis
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
command -v redis-server >/dev/null || packages+=(redis-server)
# the single sign-on tests run an OpenID provider (oidc-provider, from npm) on Node
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages: ${packages[*]} (run as root or install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
fi
