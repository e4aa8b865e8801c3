# Shared by scripts/test.sh, scripts/demo.sh and scripts/bench/*: install only what is missing.

have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

# install_debian_packages PKG...: apt-get installs the packages whose main command is missing
install_debian_packages() {
  local missing=() pkg cmd
  for pkg in "$@"; do
    case "$pkg" in
      mariadb-server) cmd=mariadbd ;;
      mariadb-client) cmd=mariadb ;;
      awscli) cmd=aws ;;
      *) cmd=$pkg ;;
    esac
    # a pyenv shim named aws is not the Debian awscli; ask dpkg for packages we name
    if ! have_cmd "$cmd" || ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    return 1
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# install_node_modules: npm ci when node_modules does not match the lockfile (also builds dist/)
install_node_modules() {
  if [ ! -f node_modules/.package-lock.json ] || [ ! -d dist ] || ! cmp -s package-lock.json .tmp/installed-lock.json; then
    npm ci --no-audit --no-fund --loglevel=error
    mkdir -p .tmp && cp package-lock.json .tmp/installed-lock.json
  fi
}
