package kubeapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// APIServerBinary returns the kube-apiserver binary to run: $HERALD_KUBE_APISERVER, or the
// one install.sh cached.
func APIServerBinary() (string, error) {
	return cachedBinary("HERALD_KUBE_APISERVER", "kube-apiserver", KubeVersion, "apiserver")
}

// KubeBinary returns a Kubernetes binary of KubeVersion other than kube-apiserver (kubelet,
// kube-proxy, kube-scheduler, kube-controller-manager): $HERALD_<NAME> (upper case, dashes as
// underscores), or the one `install.sh node` cached.
func KubeBinary(name string) (string, error) {
	env := "HERALD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return cachedBinary(env, name, KubeVersion, "node")
}

// EtcdBinary returns the etcd binary to run: $HERALD_ETCD, or the one install.sh cached.
func EtcdBinary() (string, error) {
	return cachedBinary("HERALD_ETCD", "etcd", EtcdVersion, "etcd")
}

// cachedBinary returns $env if set, else $HERALD_CACHE/bin/<name>-v<version>, which
// `install.sh <step>` builds.
func cachedBinary(env, name, version, step string) (string, error) {
	if p := os.Getenv(env); p != "" {
		return p, nil
	}
	cache := os.Getenv("HERALD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locating %s: %w", name, err)
		}
		cache = filepath.Join(home, ".cache", "herald")
	}
	p := filepath.Join(cache, "bin", name+"-v"+version)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s v%s not found at %s (run `bash test/tools/install.sh %s`, or set $%s): %w", name, version, p, step, env, err)
	}
	return p, nil
}
