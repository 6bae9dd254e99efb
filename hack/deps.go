//go:build tools

// Package hack pins Herald's core dependency set in go.mod while the packages that use each
// of them are still being written; it is never built.
package hack

import (
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/mdlayher/arp"
	_ "github.com/mdlayher/ndp"
	_ "github.com/osrg/gobgp/v4/pkg/server"
	_ "github.com/spf13/cobra"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
	_ "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/leaderelection"
	_ "k8s.io/component-base/logs"
	_ "k8s.io/component-base/metrics"
	_ "sigs.k8s.io/yaml"
)
