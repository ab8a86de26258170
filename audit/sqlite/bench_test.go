package sqlite

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"waygate/audit"
)

// BenchmarkRecord measures sustained throughput: b.N realistic events
// (times increasing, as in production) through Record, then Flush
// (everything committed).
func BenchmarkRecord(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "audit.db"), nil)
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		e := *evs[i%len(evs)] // the proxy makes a new event per request
		e.Time = testT0.Add(time.Duration(i) * 20 * time.Microsecond)
		s.Record(&e)
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if st := s.Stats(); st.Spooled != 0 {
		b.Logf("spooled %d", st.Spooled)
	}
}

// BenchmarkRecordParallel is BenchmarkRecord with GOMAXPROCS producers.
func BenchmarkRecordParallel(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "audit.db"), nil)
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e := *evs[i%len(evs)]
			e.Time = time.Now()
			s.Record(&e)
			i++
		}
	})
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// benchEvents are 16384 realistic events: 500 clients, 200 users, 3000
// hosts with a Zipf distribution (a few popular ones), times advancing.
func benchEvents() []*audit.Event {
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.2, 1, 2999)
	evs := make([]*audit.Event, 16384)
	for i := range evs {
		e := testEvent(i)
		e.Time = testT0.Add(time.Duration(i) * time.Millisecond)
		e.Client = fmt.Sprintf("10.1.%d.%d", r.IntN(2), r.IntN(250))
		e.User = fmt.Sprintf("user%03d", r.IntN(200))
		e.Host = fmt.Sprintf("host%04d.example.com", zipf.Uint64())
		e.Path = fmt.Sprintf("/assets/%x/app.js", r.Uint32())
		evs[i] = e
	}
	return evs
}
