# shoal %preun ($1: 0 on erase, 1 and more on upgrade): on erase, stop and disable the agent.
# The applications its hooks started keep running (the unit's KillMode=process).
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload disable --now shoal.service >/dev/null 2>&1 || :
fi
