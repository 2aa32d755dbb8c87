# shoal %postun ($1: 0 on erase, 1 and more on upgrade): after an upgrade, restart the agent if
# it was running, so it runs the new binary. RPM has no purge: an erase keeps the agent's
# state (/var/lib/shoal), its gossip key and config (/etc/shoal), and says so.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl try-restart shoal.service >/dev/null 2>&1 || :
    fi
else
    echo "shoal: kept /etc/shoal and /var/lib/shoal (state, gossip key, admin token);" \
        "remove them to forget this host's deployments"
fi
