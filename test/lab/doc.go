// Package lab builds a network lab of Linux network namespaces for end-to-end tests: N
// nodes, a client and a router on one bridge, optionally extra NICs on a second bridge, and
// a route from every node to the API server of package test/kubeapi. It must run as root.
//
// Topology of lab <id> (id is 1..250, unique among the labs alive on the machine):
//
//	namespaces  hl<id>-router, hl<id>-client, hl<id>-node-0 … hl<id>-node-<N-1>
//	eth0        in each namespace, a veth whose root-side peer (hl<id>-r-0, hl<id>-c-0,
//	            hl<id>-n<i>-0) is a port of bridge hl<id>-br0
//	            IPv4 192.0.2.0/24: router .1, client .2, node i .(10+i)
//	            IPv6 2001:db8:<id>::/64 (id in hex): the same host numbers (node 0 is ::a)
//	eth1…       extra NICs of Options.ExtraInterfaces, ports of bridge hl<id>-br1 together
//	            with the router's and the client's eth1: 198.51.100.0/24 and
//	            2001:db8:<id>:1::/64, router .1, client .2, node i's k-th extra NIC .(10+i+64k)
//	MACs        02:48:4c:<id>:<host number>:<NIC index>
//	gateway     203.0.113.<id>/32 on hl<id>-br0 in the root namespace. Node namespaces have
//	            a host route to it over eth0 and no default route. The root namespace sends
//	            replies back through a policy rule "from 203.0.113.<id> lookup <20000+id>"
//	            whose table routes 192.0.2.0/24 to hl<id>-br0, so concurrent labs with the
//	            same 192.0.2.0/24 never mix. kubeapi binds 0.0.0.0 and its certificate
//	            covers 203.0.113.0/24: kubeapi.Environment.LabServer(lab.Gateway) is the
//	            URL for processes inside a node.
//	sysctls     lo up everywhere; IPv6 duplicate address detection off (addresses usable at
//	            once); net.ipv6.ip_nonlocal_bind=1 in nodes; net.ipv4.conf.*.arp_accept=1 in
//	            the client.
//
// Safety: every namespace and link carries the prefix hl<id>- and is recorded, right after
// it is created, in /run/herald-lab/<id>/state.json with the owning PID. Cleanup removes
// only what that file lists, and only a namespace whose inode is the one recorded: a
// namespace someone else created under the same name is left alone. Cleanup runs on
// t.Cleanup (also after a failed test), on SIGINT/SIGTERM (the process cleans up and exits),
// and a lab whose owner died (a panic, a -timeout) is reaped by the next New. Processes left
// in a namespace are killed before it is deleted.
package lab
