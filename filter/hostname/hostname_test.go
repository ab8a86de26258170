package hostname_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"waygate/filter/hostname"
)

func TestParseHostIPLiterals(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		in   string
		want netip.Addr
	}{
		// Every spelling of 127.0.0.1.
		{"127.0.0.1", loop},
		{"127.1", loop},
		{"127.0.1", loop},
		{"2130706433", loop},
		{"0x7f000001", loop},
		{"0X7F000001", loop},
		{"0x7f.0.0.1", loop},
		{"0x7F.1", loop},
		{"0177.0.0.1", loop},
		{"017700000001", loop},
		{"0177.1", loop},
		{"0x7f.0.0x0.01", loop},
		{"0x7f.0x0.1", loop},
		{"00000000000000000000177.1", loop},
		{"[::ffff:127.0.0.1]", loop},
		{"::ffff:127.0.0.1", loop},
		{"::ffff:7f00:1", loop},
		{"[::FFFF:7F00:1]", loop},
		{"127.0.0.1.", loop},
		{"127.1.", loop},
		// Other IPv4.
		{"0", netip.MustParseAddr("0.0.0.0")},
		{"0x", netip.MustParseAddr("0.0.0.0")},
		{"0.0.0.0", netip.MustParseAddr("0.0.0.0")},
		{"4294967295", netip.MustParseAddr("255.255.255.255")},
		{"0xffffffff", netip.MustParseAddr("255.255.255.255")},
		{"037777777777", netip.MustParseAddr("255.255.255.255")},
		{"1.16777215", netip.MustParseAddr("1.255.255.255")},
		{"1.2.65535", netip.MustParseAddr("1.2.255.255")},
		{"169.254.169.254", netip.MustParseAddr("169.254.169.254")},
		{"0xa9.0xfe.0xa9.0xfe", netip.MustParseAddr("169.254.169.254")},
		{"10.0.0.010", netip.MustParseAddr("10.0.0.8")},
		// IPv6.
		{"::1", netip.IPv6Loopback()},
		{"[::1]", netip.IPv6Loopback()},
		{"[0:0:0:0:0:0:0:1]", netip.IPv6Loopback()},
		{"[64:ff9b::7f00:1]", netip.MustParseAddr("64:ff9b::7f00:1")},
		{"[64:ff9b::127.0.0.1]", netip.MustParseAddr("64:ff9b::7f00:1")},
		{"[2001:DB8::1]", netip.MustParseAddr("2001:db8::1")},
		{"[::]", netip.IPv6Unspecified()},
	}
	for _, tt := range tests {
		name, ip, isIP, err := hostname.Parse(tt.in)
		if err != nil || !isIP || ip != tt.want || name != tt.want.String() {
			t.Errorf("Parse(%q) = %q, %v, %v, %v; want %q, %v, true, nil", tt.in, name, ip, isIP, err, tt.want.String(), tt.want)
		}
	}
}

func TestParseHostNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"EXAMPLE.COM", "example.com"},
		{"localhost", "localhost"},
		{"a", "a"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"1.2.3.example", "1.2.3.example"},
		{"0x7f.0.0.1.example", "0x7f.0.0.1.example"},
		{"example.1e5", "example.1e5"},
		// Not a number in any base, so a name under the WHATWG rule.
		{"example.0x1g", "example.0x1g"},
		{"0x1g", "0x1g"},
		{"1.2.3.4a", "1.2.3.4a"},
		{"-.-", "-.-"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
		{strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 126) + "a"},  // 253
		{strings.Repeat("a.", 126) + "a.", strings.Repeat("a.", 126) + "a"}, // 253 + trailing dot
	}
	for _, tt := range tests {
		name, ip, isIP, err := hostname.Parse(tt.in)
		if err != nil || isIP || ip.IsValid() || name != tt.want {
			t.Errorf("Parse(%q) = %q, %v, %v, %v; want %q, invalid, false, nil", tt.in, name, ip, isIP, err, tt.want)
		}
	}
}

func TestParseHostErrors(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "empty host"},
		{".", "empty host"},
		{"..", "empty label"},
		{"a..b", "empty label"},
		{".a", "empty label"},
		{"a.b..", "empty label"},
		{"127.0.0.1..", "empty label"},
		{"256.0.0.1", "invalid IPv4 address"},
		{"1.2.3.4.5", "invalid IPv4 address"},
		{"1.2.3.4.5.", "invalid IPv4 address"},
		{"0x100000000", "invalid IPv4 address"},
		{"4294967296", "invalid IPv4 address"},
		{"99999999999999999999999999", "invalid IPv4 address"},
		{"1.2.3.256", "invalid IPv4 address"},
		{"1.2.65536", "invalid IPv4 address"},
		{"1.16777216", "invalid IPv4 address"},
		{"0x1g.1", "invalid IPv4 address"},
		{"08", "invalid IPv4 address"},
		{"example.09", "invalid IPv4 address"},
		{"example.123", "invalid IPv4 address"},
		{"example.0x7f", "invalid IPv4 address"},
		{"foo.0x", "invalid IPv4 address"},
		{"[fe80::1%eth0]", "IPv6 zone not allowed"},
		{"[fe80::1%25eth0]", "IPv6 zone not allowed"},
		{"fe80::1%eth0", "IPv6 zone not allowed"},
		{"[::1", "unbalanced brackets"},
		{"[", "unbalanced brackets"},
		{"[]", "brackets around something other than an IPv6 address"},
		{"[127.0.0.1]", "brackets around something other than an IPv6 address"},
		{"[::1].", "unbalanced brackets"},
		{"::1.", "invalid IPv6 address"},
		{"example.com:80", "invalid IPv6 address"},
		{"[::ffff:1.2.3]", "invalid IPv6 address"},
		{"[1:2:3:4:5:6:7:8:9]", "invalid IPv6 address"},
		{strings.Repeat("a", 64) + ".com", "label longer than 63 bytes"},
		{strings.Repeat("a.", 126) + "ab", "name longer than 253 bytes"},
		{strings.Repeat("a", 300), "name longer than 253 bytes"},
		{"exa mple.com", `invalid character ' '`},
		{"example.com/", `invalid character '/'`},
		{"user@example.com", `invalid character '@'`},
		{"exa*mple.com", `invalid character '*'`},
		{"a\x00b", `invalid character '\x00'`},
		{"bücher.example", "non-ASCII host (convert IDNs to A-labels first)"},
		{"ｅxample.com", "non-ASCII host (convert IDNs to A-labels first)"},
		{"127\u30020\u30020\u30021", "non-ASCII host (convert IDNs to A-labels first)"},
	}
	for _, tt := range tests {
		name, ip, isIP, err := hostname.Parse(tt.in)
		var he *hostname.Error
		if !errors.As(err, &he) || he.Reason != tt.reason {
			t.Errorf("Parse(%q) error = %v; want reason %q", tt.in, err, tt.reason)
			continue
		}
		if name != "" || ip.IsValid() || isIP {
			t.Errorf("Parse(%q) = %q, %v, %v with an error", tt.in, name, ip, isIP)
		}
	}
}

func TestParseHostErrorMessage(t *testing.T) {
	_, _, _, err := hostname.Parse("1.2.3.4.5")
	if got, want := err.Error(), `invalid host "1.2.3.4.5": invalid IPv4 address`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	_, _, _, err = hostname.Parse(strings.Repeat("x", 1000))
	if n := len(err.(*hostname.Error).Host); n > 260 {
		t.Errorf("error Host is %d bytes; want it cut", n)
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0x7F.1",
		"0177.0.0.1", "017700000001", "[::ffff:127.0.0.1]", "::ffff:7f00:1", "127.0.0.1.",
		"256.0.0.1", "1.2.3.4.5", "0x100000000", "0x1g.1", "example.0x1g", "Example.COM.",
		"fe80::1%eth0", "", ".", "a..b", "bücher.example", "[64:ff9b::1.2.3.4]", "0x", "08",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		name, ip, isIP, err := hostname.Parse(host)
		if err != nil {
			if name != "" || isIP || ip.IsValid() {
				t.Fatalf("Parse(%q) = %q, %v, %v with error %v", host, name, ip, isIP, err)
			}
			return
		}
		if name == "" {
			t.Fatalf("Parse(%q) returned an empty name", host)
		}
		if isIP != ip.IsValid() {
			t.Fatalf("Parse(%q): isIP=%v but ip=%v", host, isIP, ip)
		}
		if isIP {
			if ip.Is4In6() || ip.Zone() != "" {
				t.Fatalf("Parse(%q) = %v; want unmapped, no zone", host, ip)
			}
			if name != ip.String() {
				t.Fatalf("Parse(%q) name %q != ip %v", host, name, ip)
			}
			_, ip2, isIP2, err := hostname.Parse(ip.String())
			if err != nil || !isIP2 || ip2 != ip {
				t.Fatalf("Parse(%q) = %v, %v, %v; want %v", ip.String(), ip2, isIP2, err, ip)
			}
		} else {
			if len(name) > 253 {
				t.Fatalf("Parse(%q) = %d-byte name", host, len(name))
			}
			if _, err := netip.ParseAddr(name); err == nil {
				t.Fatalf("Parse(%q) = name %q that netip parses as an address", host, name)
			}
		}
		name2, ip2, isIP2, err := hostname.Parse(name)
		if err != nil || name2 != name || ip2 != ip || isIP2 != isIP {
			t.Fatalf("not idempotent: Parse(%q) = %q, %v, %v, %v; Parse(%q) = %q, %v, %v, %v",
				host, name, ip, isIP, nil, name, name2, ip2, isIP2, err)
		}
	})
}
