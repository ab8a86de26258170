// Package dnstest runs a real DNS server (miekg/dns) on loopback for tests:
// it answers A and AAAA from a table, NXDOMAIN for names it does not know,
// and counts the queries it gets.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on 127.0.0.1, UDP and TCP on the same port.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string

	mu      sync.Mutex
	records map[string][]netip.Addr
	ttl     uint32
	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// Start starts a server that answers from records (names without the
// trailing dot, any case) with TTL 60, and stops it when the test ends.
func Start(t testing.TB, records map[string][]string) *Server {
	t.Helper()
	s := &Server{records: map[string][]netip.Addr{}, ttl: 60}
	for name, addrs := range records {
		for _, a := range addrs {
			s.Set(name, netip.MustParseAddr(a))
		}
	}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// The UDP port the kernel picks may be taken for TCP (by any local
	// connection's ephemeral port): try a few.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	var ready sync.WaitGroup
	ready.Add(2)
	s.udp.NotifyStartedFunc = ready.Done
	s.tcp.NotifyStartedFunc = ready.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	ready.Wait()
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// Set adds an address to name's answers.
func (s *Server) Set(name string, addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := dns.Fqdn(strings.ToLower(name))
	s.records[key] = append(s.records[key], addr)
}

// Queries returns how many queries the server has answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	s.mu.Lock()
	addrs, ok := s.records[strings.ToLower(q.Name)]
	s.mu.Unlock()
	if !ok {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.ttl}
	for _, a := range addrs {
		switch {
		case q.Qtype == dns.TypeA && a.Is4():
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		case q.Qtype == dns.TypeAAAA && a.Is6():
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	w.WriteMsg(m)
}
