// Command lab is the shell entry point of package test/lab, used by test/lab/lab.sh and the
// demo: `lab up N` builds a lab that outlives the command, `lab down` removes it, and
// `lab exec HOST CMD...` runs a command in one of its namespaces.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/herald-lb/herald/test/lab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

const usage = "usage: lab up N | lab down | lab exec HOST CMD [ARGS...]"

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "up":
		if len(args) != 2 {
			return errors.New(usage)
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("node count %q: %w", args[1], err)
		}
		l, err := lab.CreateDetached(lab.Options{Nodes: n})
		if err != nil {
			return err
		}
		fmt.Printf("lab %d up in %s; gateway (API server side) %s\n", l.ID, l.SetupTime.Round(1e6), l.Gateway)
		fmt.Printf("%-8s %-16s %-18s %-14s %s\n", "HOST", "NETNS", "MAC", "IPV4", "IPV6")
		for _, h := range l.Hosts() {
			fmt.Printf("%-8s %-16s %-18s %-14s %s\n", h.Name, h.Netns, h.MAC, h.IPv4, h.IPv6)
		}
		return nil
	case "down":
		return lab.DestroyDetached()
	case "exec":
		if len(args) < 3 {
			return errors.New(usage)
		}
		netns, err := lab.DetachedHostNetns(args[1])
		if err != nil {
			return err
		}
		ipPath, err := exec.LookPath("ip")
		if err != nil {
			return err
		}
		return syscall.Exec(ipPath, append([]string{"ip", "netns", "exec", netns}, args[2:]...), os.Environ())
	default:
		return errors.New(usage)
	}
}
