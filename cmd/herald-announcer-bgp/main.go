// Command herald-announcer-bgp is Herald's BGP announcer, run by the speaker through
// hashicorp/go-plugin (it refuses to run by hand). It embeds GoBGP, connects out to the
// configured peers (it never listens on port 179, so it needs no capability) and advertises
// the addresses the speaker asks for. BFD listens on UDP 3784.
package main

import (
	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/bgp"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := announcers.NewPluginLogger("bgp")
	impl := bgp.New(log, version)
	defer impl.Close()
	announcers.Serve(impl, log)
}
