package proxy_test

import (
	"io"
	"testing"
)

// BenchmarkForwardSmall is a keep-alive GET of a small body through the
// proxy, with origin and client in the same process. Compare runs of it
// with each other; ../shared/bench/peers.sh compares with other proxies.
func BenchmarkForwardSmall(b *testing.B) {
	e := newEnv(b)
	c := e.client()
	url := e.origin.URL + "/"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
