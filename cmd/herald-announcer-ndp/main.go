// Command herald-announcer-ndp is Herald's IPv6 L2 announcer, run by the speaker through
// hashicorp/go-plugin (it refuses to run by hand). It answers Neighbor Solicitations for the
// addresses the speaker asks it to announce. It needs CAP_NET_RAW only (one packet socket per
// interface, which also puts the interface in all-multicast mode while it is open), e.g.
// `setcap cap_net_raw+ep herald-announcer-ndp` or the container capability NET_RAW.
package main

import (
	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/ndp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := announcers.NewPluginLogger("ndp")
	impl := ndp.New(log, version)
	defer impl.Close()
	announcers.Serve(impl, log)
}
