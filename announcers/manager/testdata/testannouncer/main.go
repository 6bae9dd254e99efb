// Command testannouncer is an in-memory announcer for the manager's tests: it holds the
// desired set in an announcers.Table and announces nothing on any network. An announcement
// whose ID starts with "conflict" makes it publish a conflict event for its address, so tests
// can see events cross the plugin boundary. TESTANNOUNCER_KIND sets the kind it reports.
// TESTANNOUNCER_HANG names a method (Apply, Status) that blocks forever ignoring its context,
// as a deadlocked announcer would, while the process and its gRPC server keep running.
package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/herald-lb/herald/announcers"
)

type memory struct {
	mu     sync.Mutex
	table  *announcers.Table
	config announcers.Config
	events announcers.EventHub
}

func (m *memory) Info(context.Context) (announcers.Info, error) {
	kind := os.Getenv("TESTANNOUNCER_KIND")
	if kind == "" {
		kind = "test"
	}
	return announcers.Info{ProtocolVersion: announcers.ProtocolVersion, Kind: kind, Version: "test",
		Capabilities: []announcers.Capability{announcers.CapabilityIPv4, announcers.CapabilityIPv6}}, nil
}

func (m *memory) Configure(_ context.Context, c announcers.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.config = c
	return nil
}

func (m *memory) SetDesired(_ context.Context, s announcers.DesiredSet) (announcers.ApplyResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.emit(s.Announcements)
	return m.table.SetDesired(s), nil
}

// hang blocks forever when method is the one TESTANNOUNCER_HANG names.
func hang(method string) {
	if os.Getenv("TESTANNOUNCER_HANG") == method {
		select {}
	}
}

func (m *memory) Apply(_ context.Context, d announcers.Delta) (announcers.ApplyResult, error) {
	hang("Apply")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.emit(d.Upserts)
	return m.table.Apply(d)
}

func (m *memory) emit(as []announcers.Announcement) {
	for _, a := range as {
		if strings.HasPrefix(a.ID, "conflict") {
			m.events.Publish(announcers.Event{Time: time.Now(), Conflict: &announcers.Conflict{
				Address: a.Prefix.Addr(), Interface: "test0", ForeignMAC: "02:00:00:00:00:99", Detail: "test"}})
		}
	}
}

// Status reports the held set as announced; the message carries the configured refresh
// interval so tests can see the configuration was replayed.
func (m *memory) Status(context.Context) (announcers.Status, error) {
	hang("Status")
	m.mu.Lock()
	defer m.mu.Unlock()
	st := announcers.Status{Generation: m.table.Generation(), Health: announcers.HealthHealthy}
	if m.config.L2 != nil {
		st.Message = "refresh=" + m.config.L2.RefreshInterval.String()
	}
	for _, a := range m.table.Announcements() {
		st.Announced = append(st.Announced, announcers.AnnouncedPrefix{Prefix: a.Prefix})
	}
	return st, nil
}

func (m *memory) Events(ctx context.Context) (<-chan announcers.Event, error) {
	return m.events.Subscribe(ctx), nil
}

func (m *memory) Drain(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table.Clear(), nil
}

func main() {
	announcers.Serve(&memory{table: announcers.NewTable(nil)}, announcers.NewPluginLogger("testannouncer"))
}
