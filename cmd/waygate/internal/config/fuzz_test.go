package config_test

import (
	"errors"
	"strings"
	"testing"

	"waygate/cmd/waygate/internal/config"
)

func FuzzParse(f *testing.F) {
	f.Add(config.DefaultYAML)
	for _, s := range []string{
		"",
		"schema_version: 1\n",
		"schema_version: 2\n",
		"- a\n",
		"schema_version: 1\nproxy: {allow_clients: [10.0.0.1/8, ::1, '::ffff:1.2.3.4'], connect_ports: [0, 443, 443]}\n",
		"schema_version: 1\nproxy:\n  listen: ':1'\n bad: 2\n",
		"schema_version: 1\nlog: &a {level: *a}\nadmin: *a\n",
		"schema_version: 1\nproxy:\n  limits: {max_connections: 1, max_tunnels_per_client: 99999999999999999999}\n",
		"schema_version: 1\ndns: {servers: ['[fe80::1%eth0]:53', 1.1.1.1], min_ttl: 2h, max_ttl: 0}\n",
		"schema_version: 1\nproxy:\n  auth:\n    users: [{name: a}, null, [x]]\n",
		"schema_version: 1\n---\n",
		"schema_version: 1\nx: !!binary aGVsbG8=\n",
		"schema_version: 1\nreverse:\n  listen: ':8080'\n  tls: {listen: ':8443', certificates: [{cert: a.pem, key: a.key}]}\n" +
			"  compression: {algorithms: [br, gzip], levels: {gzip: 9}, types: [text/*]}\n  routes:\n" +
			"    - {name: a, hosts: [A.example, '*.b.example'], headers: {x-a: '*'}, balance: hash, hash_on: 'cookie:s',\n" +
			"       backends: [http://h, {url: 'https://[::1]:8443', weight: 2}], health: {path: /h, expect_status: '200-299'},\n" +
			"       rate_limit: {requests_per_second: 0.5}, security_headers: {hsts: ''}}\n" +
			"    - {name: a, backends: ['10.0.0.1:80', http://h, http://H:80], backend_tls: {cert_file: c}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned both a Config and an error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty *config.Error", err, err)
			}
			for _, p := range ce.Problems {
				if p.File != "fuzz.yaml" || p.Msg == "" {
					t.Fatalf("problem lacks file or message: %#v", p)
				}
				if p.Line < 1 && !strings.HasPrefix(p.Msg, "too many errors") {
					t.Fatalf("problem lacks a line: %#v", p)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("Parse returned neither a Config nor an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects:\n%v\ninput:\n%s", err, data)
		}
	})
}
