package speaker

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/herald-lb/herald/framework"
)

// LocalInterfaces reads the interfaces of the network namespace the speaker runs in (the
// node's, with hostNetwork) in the form the heartbeat publishes: every interface except
// loopback, its state, MAC and on-link prefixes, sorted by name.
func LocalInterfaces() ([]framework.Interface, error) {
	itfs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	out := make([]framework.Interface, 0, len(itfs))
	for _, itf := range itfs {
		if itf.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := itf.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %q: addresses: %w", itf.Name, err)
		}
		fi := framework.Interface{Name: itf.Name, Up: itf.Flags&net.FlagUp != 0, MAC: itf.HardwareAddr.String()}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			fi.Prefixes = append(fi.Prefixes, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
