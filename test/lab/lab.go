package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options describe a lab.
type Options struct {
	// Nodes is the number of node namespaces.
	Nodes int
	// ExtraInterfaces lists, per node index, NICs beyond eth0 (e.g. {1: {"eth1"}}); they
	// join the second bridge with the router's and the client's eth1.
	ExtraInterfaces map[int][]string
}

// Lab is a running set of namespaces. Close (or the test's cleanup) removes it.
type Lab struct {
	// ID is unique among the labs alive on this machine; Prefix ("hl<id>-") starts the name
	// of every namespace and link of the lab.
	ID     int
	Prefix string
	Nodes  []*Host
	Client *Host
	Router *Host
	// Gateway is the root-namespace address node namespaces reach over eth0, for the API
	// server (see kubeapi.Environment.LabServer).
	Gateway netip.Addr
	// Subnet4 and Subnet6 are the data network on eth0; ExtraSubnet4 and ExtraSubnet6 the
	// network of the extra NICs.
	Subnet4, Subnet6           netip.Prefix
	ExtraSubnet4, ExtraSubnet6 netip.Prefix
	// SetupTime is how long Create took.
	SetupTime time.Duration

	st        *state
	closeOnce sync.Once
	closeErr  error
	mu        sync.Mutex
	onClose   []func() error
}

// OnClose registers f to run first when the lab is closed (last registered, first run), also
// when SIGINT or SIGTERM closes it: for what a test put beside the namespaces (mounts,
// cgroups, sysctls) that deleting them does not undo.
func (l *Lab) OnClose(f func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onClose = append(l.onClose, f)
}

// Host is one namespace of the lab.
type Host struct {
	// Name is "router", "client" or "node-<i>".
	Name string
	// Netns is the namespace's name, for `ip netns exec`.
	Netns string
	// Iface, MAC, IPv4 and IPv6 describe eth0, on the data network.
	Iface string
	MAC   net.HardwareAddr
	IPv4  netip.Addr
	IPv6  netip.Addr
	// Interfaces lists every NIC, eth0 first.
	Interfaces []Interface
}

// Interface is one NIC of a host.
type Interface struct {
	Name string
	MAC  net.HardwareAddr
	IPv4 netip.Addr
	IPv6 netip.Addr
}

// Hosts returns the router, the client and the nodes.
func (l *Lab) Hosts() []*Host {
	return append([]*Host{l.Router, l.Client}, l.Nodes...)
}

// New builds a lab and removes it when the test and its subtests finish.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	l, err := Create(opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Logf("lab %d: %d nodes up in %s", l.ID, len(l.Nodes), l.SetupTime.Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab %d cleanup: %v", l.ID, err)
		}
	})
	return l
}

// Create builds a lab owned by this process. On error, whatever was built is removed.
func Create(opts Options) (*Lab, error) { return create(opts, os.Getpid()) }

// CreateDetached builds a lab that outlives this process (for `lab.sh up`); DestroyDetached
// removes it.
func CreateDetached(opts Options) (*Lab, error) { return create(opts, manualOwner) }

func create(opts Options, owner int) (*Lab, error) {
	if opts.Nodes < 0 || opts.Nodes > 50 {
		return nil, fmt.Errorf("options.nodes: %d out of range 0..50", opts.Nodes)
	}
	for i, nics := range opts.ExtraInterfaces {
		if i < 0 || i >= opts.Nodes {
			return nil, fmt.Errorf("options.extraInterfaces[%d]: no such node", i)
		}
		if len(nics) > 3 {
			return nil, fmt.Errorf("options.extraInterfaces[%d]: at most 3 extra NICs", i)
		}
		for _, n := range nics {
			if n == "eth0" || n == "" || len(n) > 15 {
				return nil, fmt.Errorf("options.extraInterfaces[%d]: bad NIC name %q", i, n)
			}
		}
	}
	began := time.Now()
	installSignalHandler()
	st, err := allocate(owner)
	if err != nil {
		return nil, err
	}
	l := &Lab{ID: st.ID, Prefix: prefixOf(st.ID), st: st}
	register(l)
	if err := l.build(opts); err != nil {
		return nil, errors.Join(fmt.Errorf("lab %d: %w", l.ID, err), l.Close())
	}
	l.SetupTime = time.Since(began)
	return l, nil
}

// Close removes every namespace and link of the lab and its state. It refuses to delete a
// namespace that is not the one the lab created.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		unregister(l)
		l.mu.Lock()
		fs := l.onClose
		l.mu.Unlock()
		var errs []error
		for i := len(fs) - 1; i >= 0; i-- {
			errs = append(errs, fs[i]())
		}
		l.closeErr = errors.Join(append(errs, l.st.destroy())...)
	})
	return l.closeErr
}

// DestroyDetached removes every lab made by CreateDetached.
func DestroyDetached() error {
	var errs []error
	err := withLock(func() error {
		for _, id := range stateIDs() {
			if st, err := loadState(id); err == nil && st.Owner == manualOwner {
				errs = append(errs, st.destroy())
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// DetachedHostNetns returns the namespace of host (e.g. "node-0") in the lab made by
// CreateDetached.
func DetachedHostNetns(host string) (string, error) {
	for _, id := range stateIDs() {
		st, err := loadState(id)
		if err != nil || st.Owner != manualOwner {
			continue
		}
		for _, h := range st.Hosts {
			if h.Name == host {
				return h.Netns, nil
			}
		}
		return "", fmt.Errorf("lab %d has no host %q", id, host)
	}
	return "", errors.New("no lab is up (run `lab.sh up N`)")
}

// Live labs of this process, removed on SIGINT/SIGTERM.
var live = struct {
	sync.Mutex
	labs map[*Lab]bool
	once sync.Once
}{labs: map[*Lab]bool{}}

func register(l *Lab) {
	live.Lock()
	defer live.Unlock()
	live.labs[l] = true
}

func unregister(l *Lab) {
	live.Lock()
	defer live.Unlock()
	delete(live.labs, l)
}

func installSignalHandler() {
	live.once.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			live.Lock()
			labs := make([]*Lab, 0, len(live.labs))
			for l := range live.labs {
				labs = append(labs, l)
			}
			live.Unlock()
			for _, l := range labs {
				if l.st.Owner != manualOwner {
					l.Close()
				}
			}
			fmt.Fprintf(os.Stderr, "lab: %v: removed %d lab(s)\n", sig, len(labs))
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
}

func (l *Lab) build(opts Options) error {
	id := l.ID
	l.Gateway = netip.AddrFrom4([4]byte{203, 0, 113, byte(id)})
	l.Subnet4 = netip.MustParsePrefix("192.0.2.0/24")
	l.Subnet6 = netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/64", id))
	l.ExtraSubnet4 = netip.MustParsePrefix("198.51.100.0/24")
	l.ExtraSubnet6 = netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:1::/64", id))

	br0 := l.Prefix + "br0"
	if err := l.addBridge(br0); err != nil {
		return err
	}
	if err := ip("addr", "add", l.Gateway.String()+"/32", "dev", br0); err != nil {
		return err
	}
	table := fmt.Sprint(20000 + id)
	rule := fmt.Sprintf("from %s/32 lookup %s priority %s", l.Gateway, table, table)
	if err := ip(append([]string{"rule", "add"}, strings.Fields(rule)...)...); err != nil {
		return err
	}
	if err := l.record(func() { l.st.Rules = append(l.st.Rules, rule) }); err != nil {
		return err
	}
	if err := ip("route", "add", l.Subnet4.String(), "dev", br0, "table", table); err != nil {
		return err
	}
	extra := len(opts.ExtraInterfaces) > 0
	br1 := l.Prefix + "br1"
	if extra {
		if err := l.addBridge(br1); err != nil {
			return err
		}
	}

	var err error
	if l.Router, err = l.addHost("router", "r", 1, extra, nil); err != nil {
		return err
	}
	if l.Client, err = l.addHost("client", "c", 2, extra, nil); err != nil {
		return err
	}
	for i := range opts.Nodes {
		h, err := l.addHost(fmt.Sprintf("node-%d", i), fmt.Sprintf("n%d", i), 10+i, false, opts.ExtraInterfaces[i])
		if err != nil {
			return err
		}
		l.Nodes = append(l.Nodes, h)
	}
	return nil
}

// record applies f to the state and saves it.
func (l *Lab) record(f func()) error {
	f()
	return l.st.save()
}

func (l *Lab) addBridge(name string) error {
	// No multicast snooping: NDP's solicited-node multicast must reach every port at once.
	if err := ip("link", "add", name, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	if err := l.record(func() { l.st.Links = append(l.st.Links, name) }); err != nil {
		return err
	}
	sysctlRoot("net.ipv6.conf."+name+".disable_ipv6", "1")
	// The root namespace may own lab addresses itself (this machine's eth0 has 192.0.2.2):
	// answer ARP on the bridge only for the gateway address, and source the root's own ARP
	// requests from it, so no host learns the bridge's MAC for a lab address.
	sysctlRoot("net.ipv4.conf."+name+".arp_ignore", "1")
	sysctlRoot("net.ipv4.conf."+name+".arp_announce", "2")
	return ip("link", "set", name, "up")
}

// addHost creates namespace <prefix><name> with eth0 on br0 at host number num, and extra
// NICs on br1: eth1 for the router and the client when withEth1, else the names in extras.
func (l *Lab) addHost(name, short string, num int, withEth1 bool, extras []string) (*Host, error) {
	netns := l.Prefix + name
	if err := ip("netns", "add", netns); err != nil {
		return nil, err
	}
	ino, err := netnsInode(netns)
	if err != nil {
		return nil, err
	}
	marker := fmt.Sprintf("herald-lab-%d-%s", l.ID, randomHex(8))
	// Recorded before the marker is set: a failure in between leaves a namespace that
	// cleanup refuses (no marker) rather than one nobody knows of.
	if err := l.record(func() { l.st.Namespaces = append(l.st.Namespaces, namespace{Name: netns, Inode: ino, Marker: marker}) }); err != nil {
		return nil, err
	}
	if err := ip("-n", netns, "link", "set", "dev", "lo", "alias", marker); err != nil {
		return nil, err
	}
	h := &Host{Name: name, Netns: netns, Iface: "eth0"}
	sysctls := []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"}
	switch {
	case name == "client":
		sysctls = append(sysctls, "net.ipv4.conf.all.arp_accept=1", "net.ipv4.conf.default.arp_accept=1")
	case strings.HasPrefix(name, "node-"):
		sysctls = append(sysctls, "net.ipv6.ip_nonlocal_bind=1")
	}
	if _, err := h.output("sysctl", append([]string{"-qw"}, sysctls...)...); err != nil {
		return nil, err
	}
	if err := ip("-n", netns, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}

	nics := []string{"eth0"}
	if withEth1 {
		nics = append(nics, "eth1")
	}
	nics = append(nics, extras...)
	for k, nic := range nics {
		num4 := num
		subnet4, subnet6, bridge := l.Subnet4, l.Subnet6, l.Prefix+"br0"
		if k > 0 {
			subnet4, subnet6, bridge = l.ExtraSubnet4, l.ExtraSubnet6, l.Prefix+"br1"
			if len(extras) > 0 {
				num4 = num + 64*(k-1)
			}
		}
		nicInfo, err := l.addNIC(h, short, k, nic, bridge, num4, subnet4, subnet6)
		if err != nil {
			return nil, err
		}
		h.Interfaces = append(h.Interfaces, nicInfo)
	}
	h.MAC, h.IPv4, h.IPv6 = h.Interfaces[0].MAC, h.Interfaces[0].IPv4, h.Interfaces[0].IPv6
	if strings.HasPrefix(name, "node-") {
		if err := ip("-n", netns, "route", "add", l.Gateway.String()+"/32", "dev", "eth0"); err != nil {
			return nil, err
		}
	}
	err = l.record(func() {
		l.st.Hosts = append(l.st.Hosts, hostRecord{Name: name, Netns: netns, IPv4: h.IPv4.String(), IPv6: h.IPv6.String()})
	})
	return h, err
}

func (l *Lab) addNIC(h *Host, short string, k int, nic, bridge string, num int, subnet4, subnet6 netip.Prefix) (Interface, error) {
	if num > 254 {
		return Interface{}, fmt.Errorf("host %s NIC %s: host number %d exceeds the /24", h.Name, nic, num)
	}
	peer := fmt.Sprintf("%s%s-%d", l.Prefix, short, k)
	if err := ip("link", "add", peer, "type", "veth", "peer", "name", nic, "netns", h.Netns); err != nil {
		return Interface{}, err
	}
	if err := l.record(func() { l.st.Links = append(l.st.Links, peer) }); err != nil {
		return Interface{}, err
	}
	sysctlRoot("net.ipv6.conf."+peer+".disable_ipv6", "1")
	if err := ip("link", "set", peer, "master", bridge, "up"); err != nil {
		return Interface{}, err
	}
	mac := net.HardwareAddr{0x02, 0x48, 0x4c, byte(l.ID), byte(num), byte(k)}
	a4 := subnet4.Addr().As4()
	a4[3] = byte(num)
	a16 := subnet6.Addr().As16()
	a16[15] = byte(num)
	nicInfo := Interface{Name: nic, MAC: mac, IPv4: netip.AddrFrom4(a4), IPv6: netip.AddrFrom16(a16)}
	steps := [][]string{
		{"-n", h.Netns, "link", "set", nic, "address", mac.String(), "up"},
		{"-n", h.Netns, "addr", "add", fmt.Sprintf("%s/%d", nicInfo.IPv4, subnet4.Bits()), "dev", nic},
		{"-n", h.Netns, "addr", "add", fmt.Sprintf("%s/%d", nicInfo.IPv6, subnet6.Bits()), "dev", nic, "nodad"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return Interface{}, err
		}
	}
	return nicInfo, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sysctlRoot(key, value string) {
	os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value), 0o644)
}

// output runs a command in the host's namespace and returns its combined output.
func (h *Host) output(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.Netns, name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
