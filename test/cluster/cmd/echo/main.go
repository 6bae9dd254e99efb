// Command echo is the test bed's backend: an HTTP server on :8080 that answers every request
// with the pod's and the node's names, so a test sees which pod served it.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	pod, node := os.Getenv("POD_NAME"), os.Getenv("NODE_NAME")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod=%s node=%s\n", pod, node)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
