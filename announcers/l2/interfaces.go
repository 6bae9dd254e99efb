package l2

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
)

// Interfaces lists the host's interfaces with their addresses; tests replace it.
type Interfaces func() ([]Interface, error)

// Interface is a link and its addresses.
type Interface struct {
	net.Interface
	Prefixes []netip.Prefix
}

// SystemInterfaces reads the host's interfaces.
func SystemInterfaces() ([]Interface, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifis))
	for _, ifi := range ifis {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %s addresses: %w", ifi.Name, err)
		}
		it := Interface{Interface: ifi}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				it.Prefixes = append(it.Prefixes, p)
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// wantedLocked maps each interface to the addresses it should answer for, and reports
// announcements that have nowhere to go.
func (a *Announcer) wantedLocked() (map[string]map[netip.Addr]struct{}, map[string]net.Interface, map[string]string) {
	problems := map[string]string{}
	ifaces, err := a.interfaces()
	if err != nil {
		problems["interfaces"] = err.Error()
		return map[string]map[netip.Addr]struct{}{}, nil, problems
	}
	byName := map[string]net.Interface{}
	for _, it := range ifaces {
		byName[it.Name] = it.Interface
	}
	want := map[string]map[netip.Addr]struct{}{}
	for _, an := range a.table.Announcements() {
		addr := an.Prefix.Addr()
		names, missing := a.linksFor(addr, an.Interfaces, ifaces)
		for _, m := range missing {
			problems["announcement/"+an.Key()+"/"+m] = fmt.Sprintf("announcement %s: interface %q is missing, down or has no usable address", an.Key(), m)
		}
		if len(names) == 0 && len(an.Interfaces) == 0 {
			problems["announcement/"+an.Key()] = fmt.Sprintf("announcement %s: no suitable interface", an.Key())
		}
		for _, n := range names {
			if want[n] == nil {
				want[n] = map[netip.Addr]struct{}{}
			}
			want[n][addr] = struct{}{}
		}
	}
	return want, byName, problems
}

// linksFor picks the interfaces for addr (see the package comment) and names the requested
// interfaces that cannot be used.
func (a *Announcer) linksFor(addr netip.Addr, requested []string, ifaces []Interface) (names, missing []string) {
	usable := map[string]Interface{}
	for _, it := range ifaces {
		if it.Flags&net.FlagUp == 0 || it.Flags&net.FlagLoopback != 0 || len(it.HardwareAddr) != 6 {
			continue
		}
		if slices.ContainsFunc(it.Prefixes, func(p netip.Prefix) bool { return a.driver.Suitable(p.Addr()) }) {
			usable[it.Name] = it
		}
	}
	if len(requested) > 0 {
		for _, r := range requested {
			if _, ok := usable[r]; ok {
				names = append(names, r)
			} else {
				missing = append(missing, r)
			}
		}
		return names, missing
	}
	var all []string
	for name, it := range usable {
		all = append(all, name)
		if slices.ContainsFunc(it.Prefixes, func(p netip.Prefix) bool { return p.Masked().Contains(addr) }) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		names = all
	}
	sort.Strings(names)
	return names, nil
}
