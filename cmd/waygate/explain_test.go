package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"waygate/filter"
	"waygate/webui"
)

// Without rules the gateway runs no engine; explain still answers as the
// proxy decides: allowed by default, and an invalid target as one.
func TestExplainWithoutPolicy(t *testing.T) {
	var none atomic.Pointer[filter.Engine]
	p := policyExplainer{&none}
	tests := []struct {
		host, action, reason string
	}{
		{"Example.COM.", "allow", "default"},
		{"exa mple.com", "block", "invalid_target"},
	}
	for _, tt := range tests {
		got, err := p.Explain(context.Background(), webui.ExplainRequest{Method: "GET", Host: tt.host, Port: 80, Path: "/", Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if got.Action != tt.action || got.Reason != tt.reason {
			t.Errorf("%q: %s/%s, want %s/%s", tt.host, got.Action, got.Reason, tt.action, tt.reason)
		}
	}
}
