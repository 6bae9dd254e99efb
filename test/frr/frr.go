// Package frr runs FRRouting (Debian's frr package: zebra, bgpd, bfdd) as the router of a
// network lab, inside the lab's router namespace, with its own configuration, pid, log and
// socket directory, and queries it through vtysh's JSON output. Tests use it as the real BGP
// and BFD peer of Herald's BGP announcer. Everything it starts is stopped at test cleanup.
package frr

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Dir is where Debian installs the FRR daemons.
const Dir = "/usr/lib/frr"

// Config is the router's BGP configuration.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// Neighbors are the lab nodes' addresses.
	Neighbors []Neighbor
	// MaximumPaths is the ECMP width for eBGP and iBGP; 0 means 16.
	MaximumPaths int
}

// Neighbor is one BGP neighbor of the router.
type Neighbor struct {
	Address  netip.Addr
	ASN      uint32
	Password string
	// HoldTime and Keepalive set "timers"; zero keeps FRR's defaults.
	HoldTime  time.Duration
	Keepalive time.Duration
	// BFD, when set, turns BFD on for this neighbor with these timers.
	BFD *BFD
}

// BFD is a bfdd profile.
type BFD struct {
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier int
}

// Router is a running FRR.
type Router struct {
	Netns string
	// Dir holds the configuration, pid files, logs and vty sockets.
	Dir  string
	cfg  Config
	cmds map[string]*exec.Cmd // by daemon
}

// daemons in start order (stopped in reverse).
var daemons = []string{"zebra", "bfdd", "bgpd"}

// startDaemon starts one daemon and waits until its vty socket exists.
func (r *Router) startDaemon(d string) error {
	vty := filepath.Join(r.Dir, d+".vty")
	_ = os.Remove(vty)
	args := []string{"netns", "exec", r.Netns, filepath.Join(Dir, d),
		"-u", "frr", "-g", "frr",
		"-f", filepath.Join(r.Dir, d+".conf"),
		"-i", filepath.Join(r.Dir, d+".pid"),
		"-z", filepath.Join(r.Dir, "zserv.api"),
		"--vty_socket", r.Dir, "-A", "127.0.0.1", "-P", "0",
		"--log", "file:" + filepath.Join(r.Dir, d+".log"),
	}
	if d == "bfdd" {
		args = append(args, "--bfdctl", filepath.Join(r.Dir, "bfdd.sock"))
	}
	cmd := exec.Command("ip", args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d, err)
	}
	r.cmds[d] = cmd
	if err := waitFile(vty, 10*time.Second); err != nil {
		return fmt.Errorf("%s did not come up: %w", d, err)
	}
	return nil
}

// Restart stops one daemon (SIGTERM, then SIGKILL after 3 s) and starts it again with the
// same configuration, leaving the others running: restarting "bgpd" ends every BGP session
// while bfdd and zebra stay. It returns when the daemon's vty answers again.
func (r *Router) Restart(daemon string) error {
	c := r.cmds[daemon]
	if c == nil {
		return fmt.Errorf("frr: no %s running", daemon)
	}
	stopCmd(c)
	delete(r.cmds, daemon)
	if err := r.startDaemon(daemon); err != nil {
		return fmt.Errorf("frr: restart: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := r.Vtysh(ctx, "show bgp summary json"); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("frr: %s restarted but vtysh does not answer: %w", daemon, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Start writes the configuration and starts zebra, bfdd and bgpd inside netns, as the frr user
// (zebra and bfdd refuse to run as root without the frrvty group), and waits until vtysh
// answers. It fails the test if FRR is not installed.
func Start(t testing.TB, netns string, cfg Config) *Router {
	t.Helper()
	if _, err := os.Stat(filepath.Join(Dir, "bgpd")); err != nil {
		t.Fatalf("frr: %v (install Debian's frr package)", err)
	}
	dir, err := os.MkdirTemp("", "herald-frr-")
	if err != nil {
		t.Fatalf("frr: %v", err)
	}
	r := &Router{Netns: netns, Dir: dir, cfg: cfg, cmds: map[string]*exec.Cmd{}}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			for _, d := range []string{"bgpd", "bfdd", "zebra"} {
				if b, err := os.ReadFile(filepath.Join(dir, d+".log")); err == nil {
					t.Logf("frr %s.log (last 3000 bytes):\n%s", d, tail(b, 3000))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	files := map[string]string{
		"zebra.conf": "hostname herald-lab-router\n",
		"bfdd.conf":  cfg.bfddConf(),
		"bgpd.conf":  cfg.bgpdConf(),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatalf("frr: %v", err)
		}
	}
	if err := chownFRR(dir); err != nil {
		t.Fatalf("frr: %v", err)
	}
	for _, d := range daemons {
		if err := r.startDaemon(d); err != nil {
			t.Fatalf("frr: %v", err)
		}
	}
	return r
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func chownFRR(dir string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("user frr: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s missing after %s", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Router) stop() {
	for i := len(daemons) - 1; i >= 0; i-- {
		if c := r.cmds[daemons[i]]; c != nil {
			stopCmd(c)
		}
	}
	r.cmds = map[string]*exec.Cmd{}
}

func stopCmd(c *exec.Cmd) {
	_ = c.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (c Config) bfddConf() string {
	var b strings.Builder
	b.WriteString("bfd\n")
	for i, n := range c.Neighbors {
		if n.BFD == nil {
			continue
		}
		fmt.Fprintf(&b, " profile n%d\n", i)
		if n.BFD.ReceiveInterval > 0 {
			fmt.Fprintf(&b, "  receive-interval %d\n", ms(n.BFD.ReceiveInterval))
		}
		if n.BFD.TransmitInterval > 0 {
			fmt.Fprintf(&b, "  transmit-interval %d\n", ms(n.BFD.TransmitInterval))
		}
		if n.BFD.DetectMultiplier > 0 {
			fmt.Fprintf(&b, "  detect-multiplier %d\n", n.BFD.DetectMultiplier)
		}
		b.WriteString(" exit\n")
	}
	b.WriteString("exit\n")
	return b.String()
}

func (c Config) bgpdConf() string {
	paths := c.MaximumPaths
	if paths == 0 {
		paths = 16
	}
	var b strings.Builder
	fmt.Fprintf(&b, "router bgp %d\n", c.ASN)
	if c.RouterID.IsValid() {
		fmt.Fprintf(&b, " bgp router-id %s\n", c.RouterID)
	}
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n bgp bestpath as-path multipath-relax\n")
	for i, n := range c.Neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n", n.Address, n.ASN)
		if n.Password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", n.Address, n.Password)
		}
		if n.HoldTime > 0 {
			ka := n.Keepalive
			if ka == 0 {
				ka = n.HoldTime / 3
			}
			fmt.Fprintf(&b, " neighbor %s timers %d %d\n", n.Address, int(ka.Seconds()), int(n.HoldTime.Seconds()))
		}
		if n.BFD != nil {
			fmt.Fprintf(&b, " neighbor %s bfd\n neighbor %s bfd profile n%d\n", n.Address, n.Address, i)
		}
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		fmt.Fprintf(&b, " address-family %s unicast\n", af)
		fmt.Fprintf(&b, "  maximum-paths %d\n  maximum-paths ibgp %d\n", paths, paths)
		for _, n := range c.Neighbors {
			if n.Address.Is4() == (af == "ipv4") {
				fmt.Fprintf(&b, "  neighbor %s activate\n", n.Address)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("exit\n")
	return b.String()
}
