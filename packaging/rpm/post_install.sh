# shoal %post ($1: 1 on install, 2 and more on upgrade): make the agent's directories and
# secrets when missing (never replacing one), and on first install enable the unit without
# starting it: the agent needs a configured group first, see /etc/shoal/agent.yaml.
# POSIX sh and coreutils only. Keep in step with packaging/deb/postinst.

# Secrets are written under umask 077 (mode 0600, owner root), to a temporary name first so a
# half-written file is never taken for a key.
umask 077
[ -d /etc/shoal ] || mkdir -m 0755 /etc/shoal
[ -d /var/lib/shoal ] || mkdir -m 0700 /var/lib/shoal
# The gossip key: base64 of 32 random bytes. Every host of a mesh needs the same one.
if [ ! -e /etc/shoal/gossip.key ]; then
    head -c 32 /dev/urandom | base64 > /etc/shoal/gossip.key.new
    mv /etc/shoal/gossip.key.new /etc/shoal/gossip.key
fi
# The admin token of the status endpoint, as the agent itself makes it: 32 random bytes as
# 64 lowercase hex digits and a newline.
if [ ! -e /var/lib/shoal/admin.token ]; then
    { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo; } \
        > /var/lib/shoal/admin.token.new
    mv /var/lib/shoal/admin.token.new /var/lib/shoal/admin.token
fi
umask 022

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
# `enable` only makes the wants symlink, so it works without a running systemd (in an image).
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload enable shoal.service >/dev/null 2>&1 || :
fi
