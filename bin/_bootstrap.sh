# Sourced by bin/twilio-caller and bin/test: make sure .venv holds the package
# (with the extras named in $TC_EXTRAS) and is current with pyproject.toml.
# The check on later runs is one file comparison; pip runs only when it changes.
TC_ROOT=$(cd "$(dirname "$0")/.." && pwd)
TC_VENV="$TC_ROOT/.venv"
TC_STAMP="$TC_VENV/.installed${TC_EXTRAS:+-$TC_EXTRAS}"

tc_fingerprint() {
    cksum <"$TC_ROOT/pyproject.toml"
}

tc_install() {
    lock="$TC_ROOT/.venv.lock"
    # mkdir is atomic: the first shim installs, the others wait for it.
    tries=0
    while ! mkdir "$lock" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -gt 900 ]; then
            echo "twilio-caller: another install holds $lock; remove it if no install is running" >&2
            exit 1
        fi
        sleep 1
    done
    trap 'rmdir "$lock" 2>/dev/null' EXIT INT TERM
    if [ "$(cat "$TC_STAMP" 2>/dev/null)" != "$(tc_fingerprint)" ]; then
        if [ ! -x "$TC_VENV/bin/python" ]; then
            python=$(command -v python3 || command -v python) || {
                echo "twilio-caller: python3 (3.11 or newer) is needed on PATH" >&2
                exit 1
            }
            "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
                echo "twilio-caller: $python is older than 3.11; install Python 3.11 or newer" >&2
                exit 1
            }
            echo "twilio-caller: creating $TC_VENV (first run only)" >&2
            "$python" -m venv "$TC_VENV" || exit 1
        fi
        echo "twilio-caller: installing dependencies into .venv (first run only)" >&2
        target="$TC_ROOT${TC_EXTRAS:+[$TC_EXTRAS]}"
        "$TC_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            --editable "$target" >&2 || {
            echo "twilio-caller: installing dependencies failed (see above); rerun to retry" >&2
            exit 1
        }
        tc_fingerprint >"$TC_STAMP"
        # An install with extras also satisfies the plain shim.
        tc_fingerprint >"$TC_VENV/.installed"
    fi
    rmdir "$lock" 2>/dev/null
    trap - EXIT INT TERM
}

if [ "$(cat "$TC_STAMP" 2>/dev/null)" != "$(tc_fingerprint)" ]; then
    tc_install
fi
