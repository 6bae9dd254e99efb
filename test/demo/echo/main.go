// Command echo is the demo's backend: a tiny HTTP server that replies with the name of the
// node it runs on, so `curl` from the client shows which node the load-balancer IP reached.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("listen", ":80", "address to listen on")
	node := flag.String("node", "", "node name to reply with")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", *node)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
