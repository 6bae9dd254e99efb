package kubeapi

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WriteKubeconfig writes a kubeconfig file with cfg's CA and bearer token (or client
// certificate), pointed at server, or at cfg.Host when server is empty.
func WriteKubeconfig(path string, cfg *rest.Config, server string) error {
	if server == "" {
		server = cfg.Host
	}
	caData := cfg.TLSClientConfig.CAData
	if len(caData) == 0 && cfg.TLSClientConfig.CAFile != "" {
		data, err := os.ReadFile(cfg.TLSClientConfig.CAFile)
		if err != nil {
			return fmt.Errorf("kubeconfig %s: reading CA: %w", path, err)
		}
		caData = data
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["herald-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		ClientCertificateData: cfg.TLSClientConfig.CertData,
		ClientKeyData:         cfg.TLSClientConfig.KeyData,
	}
	kc.Contexts["herald-test"] = &clientcmdapi.Context{Cluster: "herald-test", AuthInfo: "user"}
	kc.CurrentContext = "herald-test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}
