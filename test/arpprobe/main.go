// Command arpprobe times when addresses start answering ARP, for the e2e benchmarks: every
// -interval it sends an ARP request for each address that has not answered yet, and prints
// each address's first reply to one of its requests as "<ip> <mac> <unix nanoseconds>",
// stamped when the reply is read. It prints "ready" once the first requests are out and exits
// when every address answered or at -deadline. With -all it keeps asking and prints every
// reply to its requests until -deadline (or until it is killed), to watch an address move.
//
// arping sends at most one request per second per process, so timing a hundred addresses to
// better than a second took hundreds of staggered processes; one socket probing every 20 ms
// measures finer and loads the machine under test far less.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/arp"
)

func main() {
	iface := flag.String("i", "", "interface to probe on")
	interval := flag.Duration("interval", 20*time.Millisecond, "time between requests for an unanswered address")
	deadline := flag.Duration("deadline", 20*time.Second, "give up after this long")
	all := flag.Bool("all", false, "print every reply, not only each address's first, until the deadline")
	flag.Parse()
	if err := run(*iface, *interval, *deadline, *all, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "arpprobe:", err)
		os.Exit(1)
	}
}

func run(iface string, interval, deadline time.Duration, all bool, args []string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	pending := map[netip.Addr]bool{}
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", a)
		}
		pending[ip] = true
	}
	own, err := firstIPv4(ifi)
	if err != nil {
		return err
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return err
	}
	defer c.Close()
	end := time.Now().Add(deadline)
	if err := c.SetReadDeadline(end); err != nil {
		return err
	}
	var mu sync.Mutex
	go send(c, &mu, pending, interval, end)
	for {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			return nil
		}
		p, _, err := c.Read()
		if err != nil {
			if time.Now().After(end) {
				return nil // the caller sees which addresses never answered
			}
			continue // not an ARP packet
		}
		at := time.Now()
		// Only answers to our own requests count, as with arping: not gratuitous ARP.
		if p.Operation != arp.OperationReply || p.TargetIP != own || p.TargetHardwareAddr.String() != c.HardwareAddr().String() {
			continue
		}
		mu.Lock()
		if pending[p.SenderIP] {
			if !all {
				delete(pending, p.SenderIP)
			}
			fmt.Printf("%s %s %d\n", p.SenderIP, p.SenderHardwareAddr, at.UnixNano())
		}
		mu.Unlock()
	}
}

// send requests every pending address each interval until none is pending or the deadline.
func send(c *arp.Client, mu *sync.Mutex, pending map[netip.Addr]bool, interval time.Duration, end time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; time.Now().Before(end); first = false {
		mu.Lock()
		ips := make([]netip.Addr, 0, len(pending))
		for ip := range pending {
			ips = append(ips, ip)
		}
		mu.Unlock()
		if len(ips) == 0 {
			return
		}
		for _, ip := range ips {
			_ = c.Request(ip) // a lost request is retried next interval
		}
		if first {
			fmt.Println("ready")
		}
		<-t.C
	}
}

// firstIPv4 is the interface's first IPv4 address, the one the ARP client sends from.
func firstIPv4(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address", ifi.Name)
}
