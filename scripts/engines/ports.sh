# Port picking shared by the engine scripts (sourced; they define die first).

# The ports to launch on: RAGENT_ENGINE_PORTS (space-separated, in launch's order) when set,
# so a test can start an engine at an address a client already uses; else free ones.
pick_ports() {
    if [[ -n "${RAGENT_ENGINE_PORTS:-}" ]]; then
        local wanted
        read -r -a wanted <<<"$RAGENT_ENGINE_PORTS"
        ((${#wanted[@]} == $1)) || die "RAGENT_ENGINE_PORTS needs $1 ports, got '$RAGENT_ENGINE_PORTS'"
        printf '%s\n' "${wanted[@]}"
    else
        free_ports "$1"
    fi
}

# Print N distinct TCP ports free on 127.0.0.1, one a line. All sockets stay bound until
# every port is chosen, so the N are distinct; another process may still take one before
# the engine binds it, which `start` answers by trying again with fresh ports.
free_ports() {
    "${PYTHON:-python3}" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}
