#!/bin/bash
# Captures keepalived 2.2.7's VRRPv3-over-IPv6 adverts and unsolicited NAs in namespaces.
set -e
P=lbdv6cap
D=${1:-/tmp/v6cap}; mkdir -p $D
cleanup() { for n in sw lk01 lk02 cl; do ip netns del $P-$n 2>/dev/null || true; done; }
cleanup
trap cleanup EXIT
ip netns add $P-sw
ip -n $P-sw link add br0 type bridge
ip -n $P-sw link set br0 up
i=0
for h in lk01 lk02 cl; do
  i=$((i+1))
  ip netns add $P-$h
  ip -n $P-$h link add eth0 address 02:00:00:00:00:0$i type veth peer name p$i netns $P-sw
  ip -n $P-sw link set p$i master br0 up
  ip -n $P-$h link set lo up
  ip -n $P-$h link set eth0 up
done
ip -n $P-cl addr add 2001:db8:10::50/64 dev eth0
for prio in "lk01 100 MASTER" "lk02 90 BACKUP"; do
  set -- $prio
  cat > $D/$1.conf <<C
global_defs {
    router_id $1
    vrrp_version 3
}
vrrp_instance VI_6 {
    state $3
    interface eth0
    virtual_router_id 1
    priority $2
    advert_int 1
    virtual_ipaddress {
        2001:db8:10::100/64
    }
}
C
done
sleep 3  # link-local DAD
ip netns exec $P-cl tcpdump -i eth0 --immediate-mode -U -w $D/keepalived_v6.pcap 'ip6 proto 112 or icmp6' 2>$D/tcpdump.log &
TD=$!
sleep 1
ip netns exec $P-lk01 keepalived --vrrp --dont-fork --log-console --no-syslog --use-file $D/lk01.conf --pid $D/lk01.pid --vrrp_pid $D/lk01-vrrp.pid > $D/lk01.log 2>&1 &
K1=$!
sleep 1
ip netns exec $P-lk02 keepalived --vrrp --dont-fork --log-console --no-syslog --use-file $D/lk02.conf --pid $D/lk02.pid --vrrp_pid $D/lk02-vrrp.pid > $D/lk02.log 2>&1 &
K2=$!
sleep 6
ip netns exec $P-cl ip -6 neigh show dev eth0 > $D/neigh-before.txt || true
kill -TERM $K1; wait $K1 || true
sleep 5
ip netns exec $P-cl ip -6 neigh show dev eth0 > $D/neigh-after.txt || true
ip netns exec $P-lk01 ip -6 addr show dev eth0 > $D/lk01-addr.txt
ip netns exec $P-lk02 ip -6 addr show dev eth0 > $D/lk02-addr.txt
kill -TERM $K2; wait $K2 || true
sleep 1
kill -INT $TD; wait $TD || true
