#!/bin/sh
# Runs once in the guest (ga-seed.service, as root) from the GASEED disk: installs gateway-agent
# (the .deb, or a bare binary plus the repo's units when no .deb was given), its conf, and the test
# fixtures: the UDP sensor (ga-sender) and the local end of the hub link (ga-hub-proxy).
set -eu
seed=$(dirname "$0")
if ls "$seed"/gateway-agent_*.deb >/dev/null 2>&1; then
  dpkg -i "$seed"/gateway-agent_*.deb
else
  echo "ga-seed: no .deb on the seed: installing the bare binary and units (development mode)"
  getent passwd gateway-agent >/dev/null ||
    useradd --system --user-group --home-dir /var/lib/gateway-agent --no-create-home \
      --shell /usr/sbin/nologin gateway-agent
  install -m 0755 "$seed/bin/gateway-agent" /usr/bin/gateway-agent
  mkdir -p /etc/gateway-agent
  install -m 0644 "$seed"/units/*.service "$seed"/units/*.path /etc/systemd/system/
  if [ -f "$seed/units/gateway-agent-reboot-if-fresh" ]; then
    install -D -m 0755 "$seed/units/gateway-agent-reboot-if-fresh" \
      /usr/libexec/gateway-agent/gateway-agent-reboot-if-fresh
  fi
fi
install -m 0644 "$seed/hub-ca.pem" /etc/gateway-agent/hub-ca.pem
install -m 0640 -o root -g gateway-agent "$seed/gateway-agent.conf" /etc/gateway-agent/gateway-agent.conf
install -m 0755 "$seed/ga-sender" /usr/local/sbin/ga-sender
install -m 0644 "$seed"/ga-sender.service "$seed"/ga-hub-proxy.socket "$seed"/ga-hub-proxy.service \
  /etc/systemd/system/
systemctl daemon-reload
systemctl enable gateway-agent.service gateway-agent-reboot.path ga-sender.service ga-hub-proxy.socket
# --no-block: this runs inside the boot transaction; the starts queue behind it.
systemctl --no-block start ga-hub-proxy.socket gateway-agent-reboot.path gateway-agent.service \
  ga-sender.service
echo "ga-seed: installed $(dpkg-query -W gateway-agent 2>/dev/null || echo 'gateway-agent (bare)')"
