package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"waygate/audit"
)

// BenchmarkRecord measures sustained throughput: b.N realistic events
// through Record, then Flush (everything committed).
func BenchmarkRecord(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "audit.db"), nil)
	evs := make([]*audit.Event, 4096)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s.Record(evs[i%len(evs)])
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
	evs := make([]*audit.Event, 4096)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Record(evs[i%len(evs)])
			i++
		}
	})
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
