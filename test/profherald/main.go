// Command profherald is `herald` with the Go runtime's profiles served over HTTP, for finding
// where a role's memory or CPU goes in the e2e benchmarks: set $HERALD_PPROF_ADDR (for
// example 127.0.0.1:6060) and fetch /debug/pprof/heap. Without it, it is plain herald.
package main

import (
	"log"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/herald-lb/herald/cmd/herald/app"
)

func main() {
	if addr := os.Getenv("HERALD_PPROF_ADDR"); addr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		go func() {
			// Profiles are a debugging aid: a busy address costs them, not the role.
			if err := http.ListenAndServe(addr, mux); err != nil {
				log.Printf("pprof on %s: %v", addr, err)
			}
		}()
	}
	if err := app.NewHeraldCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
