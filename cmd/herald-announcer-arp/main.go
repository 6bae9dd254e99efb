// Command herald-announcer-arp is Herald's IPv4 L2 announcer, run by the speaker through
// hashicorp/go-plugin (it refuses to run by hand). It answers ARP for the addresses the speaker
// asks it to announce. It needs CAP_NET_RAW only (raw packet sockets), e.g.
// `setcap cap_net_raw+ep herald-announcer-arp` or the container capability NET_RAW.
package main

import (
	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/arp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := announcers.NewPluginLogger("arp")
	impl := arp.New(log, version)
	defer impl.Close()
	announcers.Serve(impl, log)
}
