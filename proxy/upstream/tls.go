package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig returns the client TLS configuration for connections to origins:
// verification against the system roots plus the PEM certificates in
// extraCAFiles, TLS 1.2 at least. A nil or empty extraCAFiles means the
// system roots alone.
func TLSConfig(extraCAFiles []string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(extraCAFiles) == 0 {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range extraCAFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading extra CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("extra CA file %s: no PEM certificate found", f)
		}
	}
	cfg.RootCAs = pool
	return cfg, nil
}
